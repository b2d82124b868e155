package kernel

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestImageResultIsPNG(t *testing.T) {
	s := NewSession()
	res, _, err := runCell(t, s, "", `import ("image"; "image/color")
img := image.NewRGBA(image.Rect(0, 0, 4, 3))
img.Set(1, 1, color.RGBA{255, 0, 0, 255})
img`)
	if err != nil {
		t.Fatal(err)
	}
	b64, ok := res.Data["image/png"].(string)
	if !ok {
		t.Fatalf("result bundle %v has no image/png", keys(res.Data))
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Errorf("image/png is not a base64 PNG (%v)", err)
	}
	if res.Data["text/plain"] != "<image 4x3>" {
		t.Errorf("text/plain %q", res.Data["text/plain"])
	}
}

func TestDisplayCalls(t *testing.T) {
	s := NewSession()
	_, rec, err := runCell(t, s, "", `import ("fmt"; "image")
fmt.Println("before")
display.HTML("<b>hi</b>")
display.SVG("<svg xmlns='http://www.w3.org/2000/svg'/>")
display.Markdown("# title")
display.Table([]string{"name", "psnr"}, [][]string{{"dps", "25.1"}, {"mcg", "22.0"}})
display.Image(image.NewGray(image.Rect(0, 0, 2, 2)))
display.PNG([]byte("\x89PNG fake"))
p := display.NewProgress("steps", 10)
for i := 1; i <= 10; i++ { p.Set(i) }
p.Done()`)
	if err != nil {
		t.Fatal(err)
	}
	if rec.stdout.String() != "before\n" {
		t.Errorf("stdout %q", rec.stdout.String())
	}
	wantMIME := []string{"text/html", "image/svg+xml", "text/markdown", "text/markdown", "image/png", "image/png"}
	if len(rec.displays) < len(wantMIME)+2 {
		t.Fatalf("%d displays", len(rec.displays))
	}
	for i, m := range wantMIME {
		if _, ok := rec.displays[i].Data[m]; !ok {
			t.Errorf("display %d: %v, want %s", i, keys(rec.displays[i].Data), m)
		}
		if _, ok := rec.displays[i].Data["text/plain"]; !ok {
			t.Errorf("display %d has no text/plain", i)
		}
	}
	table := rec.displays[3].Data
	if md := table["text/markdown"].(string); !strings.Contains(md, "| dps | 25.1 |") {
		t.Errorf("table markdown:\n%s", md)
	}
	if txt := table["text/plain"].(string); !strings.Contains(txt, "mcg   22.0") {
		t.Errorf("table text:\n%s", txt)
	}
	// The progress bar: one display with an id, then updates of that id, the last one full.
	prog := rec.displays[len(wantMIME):]
	if prog[0].ID == "" || prog[0].Update {
		t.Fatalf("progress starts with %+v", prog[0])
	}
	for _, d := range prog[1:] {
		if !d.Update || d.ID != prog[0].ID {
			t.Errorf("progress update %+v", d)
		}
	}
	if last := prog[len(prog)-1].Data["text/plain"].(string); !strings.Contains(last, "10/10") {
		t.Errorf("last progress %q", last)
	}
	if len(prog) > 6 {
		t.Errorf("%d progress messages for a fast loop: updates are not rate-limited", len(prog))
	}
}

func TestPrintCallsShowNoValue(t *testing.T) {
	s := NewSession()
	res, _, err := runCell(t, s, "", "import \"fmt\"\nfmt.Println(\"x\")")
	if err != nil || res.Data != nil {
		t.Errorf("fmt.Println shows %v (err %v)", res.Data, err)
	}
	res, _, err = runCell(t, s, "", "func nop() {}\nnop()")
	if err != nil || res.Data != nil {
		t.Errorf("a call without results shows %v (err %v)", res.Data, err)
	}
	res, _, err = runCell(t, s, "", "fmt.Sprint(42)")
	if err != nil || res.Data["text/plain"] != "42" {
		t.Errorf("fmt.Sprint(42) shows %v (err %v)", res.Data, err)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
