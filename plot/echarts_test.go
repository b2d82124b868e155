package plot

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var testSeries = []Series{
	{"DPS", []float64{0, 500, 1000}, []float64{12.5, 24.25, 28.125}},
	{"MCG", []float64{0, 500, 1000}, []float64{11.5, 19.75, 22.375}},
}

// scriptSrc finds the src of every <script> element.
var scriptSrc = regexp.MustCompile(`(?i)<script[^>]*\bsrc\s*=\s*["']?([^"' >]*)`)

func TestCurvesHTMLHasDataAndNoCDN(t *testing.T) {
	for _, c := range []struct {
		name    string
		assets  Assets
		wantSrc []string
	}{
		{"inline", Inline, nil},
		{"dir", Dir("static/js"), []string{"static/js/echarts.min.js"}},
		{"here", Dir(""), []string{"echarts.min.js"}},
	} {
		var buf bytes.Buffer
		if err := CurvesHTML(&buf, "PSNR during sampling", "step", "PSNR (dB)", testSeries, c.assets); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		for _, want := range []string{"DPS", "MCG", `"value":[500,24.25]`, `"value":[1000,22.375]`,
			"PSNR during sampling", `"name":"step"`, `"trigger":"axis"`, `"dataZoom"`, `"legend"`} {
			if !strings.Contains(page, want) {
				t.Errorf("%s: page lacks %s", c.name, want)
			}
		}
		var srcs []string
		for _, m := range scriptSrc.FindAllStringSubmatch(page, -1) {
			srcs = append(srcs, m[1])
		}
		if strings.Join(srcs, " ") != strings.Join(c.wantSrc, " ") {
			t.Errorf("%s: script sources %q, want %q", c.name, srcs, c.wantSrc)
		}
		for _, src := range srcs {
			if strings.Contains(src, "//") || strings.Contains(src, ":") {
				t.Errorf("%s: script loaded from the network: %s", c.name, src)
			}
		}
		if strings.Contains(page, "go-echarts.github.io") || strings.Contains(page, "cdn") {
			t.Errorf("%s: page mentions a CDN", c.name)
		}
		inlined := strings.Contains(page, "t.version=\""+EChartsVersion+"\"")
		if inlined != (c.name == "inline") {
			t.Errorf("%s: ECharts inlined = %v", c.name, inlined)
		}
		if n := strings.Count(page, "</script>"); n != 2 {
			t.Errorf("%s: %d </script> tags, want 2 (ECharts and the chart)", c.name, n)
		}
	}
}

func TestCurvesHTMLEscapesUserText(t *testing.T) {
	var buf bytes.Buffer
	series := []Series{{"</script><script>alert(1)</script>", []float64{0}, []float64{1}}}
	if err := CurvesHTML(&buf, "<b>title</b>", "x", "y", series, Dir("js")); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Inside the chart script "</" is written "<\/", so the series name stays a string and
	// only ECharts' and the chart's own </script> tags end scripts.
	if strings.Contains(page, "</script><script>") || strings.Count(page, "</script>") != 2 ||
		!strings.Contains(page, "<title>&lt;b&gt;title&lt;/b&gt;</title>") {
		t.Errorf("user text escaped the script or title:\n%s", page)
	}
}

func TestCurvesHTMLRefusesURLs(t *testing.T) {
	for _, dir := range []string{"https://cdn.jsdelivr.net/npm/echarts", "//cdn.example/x", "http://localhost/js"} {
		var buf bytes.Buffer
		if err := CurvesHTML(&buf, "t", "x", "y", testSeries, Dir(dir)); err == nil {
			t.Errorf("Dir(%q) accepted", dir)
		}
	}
}

func TestEmbeddedEChartsVersion(t *testing.T) {
	if EChartsVersion != "5.6.0" {
		t.Fatalf("EChartsVersion = %s", EChartsVersion)
	}
	head := echartsJS[:min(len(echartsJS), 2000)]
	if !strings.Contains(head, "Licensed to the Apache Software Foundation") {
		t.Errorf("embedded echarts.min.js lacks its Apache license header")
	}
	// The minified file's header comment carries no version; ECharts sets it on its export
	// object (echarts.version), once.
	if n := strings.Count(echartsJS, `t.version="`+EChartsVersion+`"`); n != 1 {
		t.Errorf("embedded echarts.min.js sets version %s %d times, want once", EChartsVersion, n)
	}
	if len(echartsJS) < 500_000 {
		t.Errorf("embedded echarts.min.js is only %d bytes", len(echartsJS))
	}
	if strings.Contains(echartsJS, "</script") {
		t.Errorf("echarts.min.js contains </script, which breaks inlining")
	}
}

func TestWriteAssets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "static", "js")
	if err := WriteAssets(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, EChartsFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != echartsJS {
		t.Error("written echarts.min.js differs from the embedded one")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the assets folder, want 1", len(entries))
	}
}
