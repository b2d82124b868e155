package plot

import (
	_ "embed"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"html"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// EChartsVersion is the version of the Apache ECharts script embedded in this package
// (npm's echarts@5.6.0, dist/echarts.min.js, Apache-2.0: see assets/ECHARTS-LICENSE).
const EChartsVersion = "5.6.0"

// EChartsFile is the name of the ECharts script that WriteAssets writes and Dir pages load.
const EChartsFile = "echarts.min.js"

//go:embed assets/echarts.min.js
var echartsJS string

// Assets says where a CurvesHTML page gets the ECharts script from. It never comes from
// a CDN: either Inline (the zero value) or Dir.
type Assets struct {
	dir      string
	external bool
}

// Inline puts the whole embedded ECharts script (about 1 MB) into the page, which is then
// self-contained: right for Jupyter outputs and for files that travel alone. The script
// is wrapped so that it defines the global echarts even where an AMD loader (require.js,
// as in the classic Jupyter Notebook) is present.
var Inline = Assets{}

// Dir makes the page load the script with <script src="rel/echarts.min.js">, where rel
// is a path relative to the page (or site-absolute, "/static"); "" or "." mean the page's
// own folder. Copy the script there with WriteAssets. rel must not be a URL.
func Dir(rel string) Assets { return Assets{dir: rel, external: true} }

// WriteAssets writes the embedded ECharts script to dir/echarts.min.js (creating dir,
// writing atomically), for pages made with Dir.
func WriteAssets(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	target := filepath.Join(dir, EChartsFile)
	return atomicfile.Write(target, []byte(echartsJS), 0o644)
}

// scriptTag is the <script> element that loads or holds ECharts.
func (a Assets) scriptTag() (string, error) {
	if !a.external {
		// The wrapper hides an AMD loader (require.js in the classic Jupyter Notebook), so
		// ECharts' UMD header always defines the global echarts that the chart script uses.
		return "<script>\n(function (define, exports, module) {\n" + echartsJS + "\n}).call(window);\n</script>", nil
	}
	if strings.Contains(a.dir, "://") || strings.HasPrefix(a.dir, "//") || strings.Contains(a.dir, ":") {
		return "", fmt.Errorf("plot: assets folder %q is a URL; dpsflow never loads ECharts from the network (use a relative path and WriteAssets)", a.dir)
	}
	src := path.Join(filepath.ToSlash(a.dir), EChartsFile)
	return `<script src="` + html.EscapeString(src) + `"></script>`, nil
}

// CurvesHTML writes an interactive HTML page with a go-echarts line chart of series: a
// value x axis, one line per series, tooltip on the axis, legend (click to hide a
// series), and data zoom (mouse wheel and a slider). The ECharts script is embedded in
// this package and is either inlined or loaded from a local folder, as assets says; the
// page references no CDN. It takes the same checks on series as CurvesPNG.
func CurvesHTML(w io.Writer, title, xLabel, yLabel string, series []Series, assets Assets) error {
	if err := checkSeries(series, false); err != nil {
		return err
	}
	script, err := assets.scriptTag()
	if err != nil {
		return err
	}
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "500px", PageTitle: title}),
		charts.WithTitleOpts(opts.Title{Title: title, Left: "center"}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Top: "28"}),
		charts.WithDataZoomOpts(
			opts.DataZoom{Type: "inside", XAxisIndex: []int{0}},
			opts.DataZoom{Type: "slider", XAxisIndex: []int{0}},
		),
		charts.WithXAxisOpts(opts.XAxis{Name: xLabel, Type: "value", NameLocation: "middle", NameGap: 28, Scale: opts.Bool(true)}),
		charts.WithYAxisOpts(opts.YAxis{Name: yLabel, Type: "value", Scale: opts.Bool(true)}),
		charts.WithGridOpts(opts.Grid{Top: "70", Bottom: "80"}),
	)
	for _, s := range series {
		data := make([]opts.LineData, len(s.X))
		for k := range s.X {
			data[k] = opts.LineData{Value: []float64{s.X[k], s.Y[k]}}
		}
		line.AddSeries(s.Name, data, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(len(s.X) <= 50)}))
	}
	snippet := line.RenderSnippet()
	body, err := safeScript(snippet.Script)
	if err != nil {
		return err
	}
	page := "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>" + html.EscapeString(title) + "</title>\n" +
		script + "\n</head>\n<body>\n" + snippet.Element + "\n" + body + "\n</body>\n</html>\n"
	_, err = io.WriteString(w, page)
	return err
}

// safeScript re-wraps go-echarts' chart script so that user text in the option JSON
// (titles, series names) cannot close the <script> element: inside the script, "</" is
// written "<\/" and "<!--" is written "<\!--", which JavaScript strings read unchanged.
func safeScript(s string) (string, error) {
	s = strings.TrimSpace(s)
	open := strings.Index(s, ">")
	end := strings.LastIndex(s, "</script>")
	if !strings.HasPrefix(s, "<script") || open < 0 || end < open {
		return "", fmt.Errorf("plot: unexpected go-echarts script snippet")
	}
	inner := s[open+1 : end]
	inner = strings.ReplaceAll(inner, "</", `<\/`)
	inner = strings.ReplaceAll(inner, "<!--", `<\!--`)
	return s[:open+1] + inner + "</script>", nil
}
