package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
)

// writeDigits writes MNIST test digits start… as grey PNGs 0000.png… into dir, each pixel
// moved by noise(i, k) grey levels (clamped).
func writeDigits(t *testing.T, dir string, start, n int, noise func(i, k int) int) {
	t.Helper()
	im, err := pipeline.LoadMNIST("test", start, n)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.MkdirAll(dir, 0o755))
	for i := range n {
		g := image.NewGray(image.Rect(0, 0, im.W, im.H))
		for k, v := range im.Image(i) {
			p := int(math.Round((float64(v)+1)*127.5)) + noise(i, k)
			g.Pix[k] = uint8(max(0, min(255, p)))
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%04d.png", i)))
		must(t, err)
		must(t, png.Encode(f, g))
		must(t, f.Close())
	}
}

// psnr255 is the PSNR of two 8-bit grey PNGs, computed here on 0…255 (independently of
// nodes/metrics, which works on [-1, 1]).
func psnr255(t *testing.T, a, b string) float64 {
	t.Helper()
	read := func(p string) *image.Gray {
		f, err := os.Open(p)
		must(t, err)
		defer f.Close()
		img, err := png.Decode(f)
		must(t, err)
		g := image.NewGray(img.Bounds())
		for y := range img.Bounds().Dy() {
			for x := range img.Bounds().Dx() {
				g.Set(x, y, color.GrayModel.Convert(img.At(x, y)))
			}
		}
		return g
	}
	ga, gb := read(a), read(b)
	var se float64
	for k := range ga.Pix {
		d := float64(ga.Pix[k]) - float64(gb.Pix[k])
		se += d * d
	}
	return 10 * math.Log10(255*255/(se/float64(len(ga.Pix))))
}

type scoreJSON struct {
	Images []struct {
		Name string   `json:"name"`
		PSNR *float64 `json:"psnr"`
		SSIM float64  `json:"ssim"`
	} `json:"images"`
	Mean     map[string]*float64 `json:"mean"`
	Std      map[string]*float64 `json:"std"`
	Features string              `json:"features"`
	FID, KID *float64
	KIDStd   *float64 `json:"kid_std"`
	Accuracy *float64 `json:"accuracy"`
}

func TestScoreFolders(t *testing.T) {
	dir := t.TempDir()
	ref, pred := filepath.Join(dir, "ref"), filepath.Join(dir, "pred")
	writeDigits(t, ref, 0, 4, func(int, int) int { return 0 })
	writeDigits(t, pred, 0, 4, func(i, k int) int { return (k*7+i*13)%41 - 20 })

	out, code, err := runCLI(t, "score", "--pred", pred, "--ref", ref, "--json", "--fid", "mnist", "--kid-subsets", "3")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	var s scoreJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(s.Images) != 4 || s.FID == nil || s.KID == nil || s.KIDStd == nil || s.Accuracy == nil || s.Features != "mnist" {
		t.Fatalf("score JSON lacks fields:\n%s", out)
	}
	var sum float64
	for _, im := range s.Images {
		want := psnr255(t, filepath.Join(pred, im.Name), filepath.Join(ref, im.Name))
		// Pixels are float32 in [-1, 1]: agreement to float32 rounding.
		if im.PSNR == nil || math.Abs(*im.PSNR-want) > 1e-5 {
			t.Errorf("%s: psnr %v, want %v (computed on 0…255)", im.Name, deref(im.PSNR), want)
		}
		if im.SSIM <= 0 || im.SSIM >= 1 {
			t.Errorf("%s: ssim %v of a noisy copy", im.Name, im.SSIM)
		}
		sum += want
	}
	if m := s.Mean["psnr"]; m == nil || math.Abs(*m-sum/4) > 1e-5 {
		t.Errorf("mean psnr %v, want %v", deref(m), sum/4)
	}
	// Mild noise keeps every digit recognisable.
	if *s.Accuracy != 1 || *s.FID <= 0 {
		t.Errorf("accuracy %v, FD %v of noisy copies", *s.Accuracy, *s.FID)
	}

	// A folder against itself: infinite PSNR (null), SSIM 1, FD 0, accuracy 1.
	out, code, err = runCLI(t, "score", "--pred", ref, "--ref", ref, "--json", "--fid", "mnist")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	s = scoreJSON{}
	must(t, json.Unmarshal([]byte(out), &s))
	if s.Images[0].PSNR != nil || s.Mean["psnr"] != nil || s.Images[0].SSIM != 1 || math.Abs(*s.FID) > 1e-6 || *s.Accuracy != 1 {
		t.Errorf("self-score: %s", out)
	}
}

func TestScoreRefusesWhatCannotBeMatched(t *testing.T) {
	dir := t.TempDir()
	ref, pred := filepath.Join(dir, "ref"), filepath.Join(dir, "pred")
	writeDigits(t, ref, 0, 3, func(int, int) int { return 0 })
	writeDigits(t, pred, 0, 3, func(int, int) int { return 0 })
	must(t, os.Rename(filepath.Join(pred, "0002.png"), filepath.Join(pred, "extra.png")))
	_, code, err := runCLI(t, "score", "--pred", pred, "--ref", ref)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "extra.png") || !strings.Contains(err.Error(), "0002.png") {
		t.Errorf("names in one folder only: exit %d, %v; want 2 naming extra.png and 0002.png", code, err)
	}
	must(t, os.Rename(filepath.Join(pred, "extra.png"), filepath.Join(pred, "0002.png")))
	writeGrayPNG(t, filepath.Join(pred, "0001.png"), 20, 20)
	_, code, err = runCLI(t, "score", "--pred", pred, "--ref", ref)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "0001.png is 20×20") {
		t.Errorf("another size: exit %d, %v; want 2 naming 0001.png", code, err)
	}
	for _, args := range [][]string{
		{"--lpips", "alex"},
		{"--lpips", "resnet", "--lpips-backbone", "a", "--lpips-lin", "b"},
		{"--fid", "inception"},
		{"--fid", "clip"},
		{"--lpips-lin", "b"},
	} {
		_, code, err := runCLI(t, append([]string{"score", "--pred", ref, "--ref", ref}, args...)...)
		if code != 2 || err == nil {
			t.Errorf("%v: exit %d, %v; want 2", args, code, err)
		}
	}
}

func TestTableCommand(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.yaml")
	must(t, os.WriteFile(spec, []byte("tasks: [sr4, inpaint-box]\nsolvers: [pinv, wiener]\nn: 3\nmetrics: {kid-subsets: 5}\n"), 0o644))
	out := filepath.Join(dir, "out")
	text, code, err := runCLI(t, "table", spec, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	for _, f := range []string{pipeline.TableMarkdown, pipeline.TableCSV, pipeline.TableJSON, pipeline.TableDAG, "grid-sr4.png", "grid-inpaint-box.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	var rows []pipeline.TableRow
	data, err := os.ReadFile(filepath.Join(out, pipeline.TableJSON))
	must(t, err)
	must(t, json.Unmarshal(data, &rows))
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		for _, k := range []string{"psnr", "ssim", "fd", "kid", "accuracy", "residual"} {
			if _, ok := r.Metrics[k]; !ok {
				t.Errorf("%s/%s lacks %s", r.Task, r.Solver, k)
			}
		}
	}
	// Again into the same folder: resumes (everything cached), same table.
	text2, code, err := runCLI(t, "table", spec, "--out", out)
	if code != 0 {
		t.Fatalf("rerun: exit %d: %v", code, err)
	}
	again, _ := os.ReadFile(filepath.Join(out, pipeline.TableJSON))
	var rows2 []pipeline.TableRow
	must(t, json.Unmarshal(again, &rows2))
	if rows2[0].Metrics["psnr"] != rows[0].Metrics["psnr"] || rows2[0].Metrics["fd"] != rows[0].Metrics["fd"] {
		t.Errorf("rerun changed the table:\n%s\n%s", text, text2)
	}
	// Another spec into that folder: the table is rewritten (the cache kept); a folder that
	// holds something else is refused, and so is a bad spec, with its line.
	must(t, os.WriteFile(spec, []byte("tasks: [sr4]\nsolvers: [pinv]\nn: 3\nmetrics: {kid-subsets: 5}\n"), 0o644))
	if _, code, err := runCLI(t, "table", spec, "--out", out); code != 0 {
		t.Errorf("a smaller table into the folder: exit %d, %v", code, err)
	}
	data, err = os.ReadFile(filepath.Join(out, pipeline.TableJSON))
	must(t, err)
	rows = nil
	must(t, json.Unmarshal(data, &rows))
	if len(rows) != 1 || rows[0].Metrics["psnr"] != rows2[0].Metrics["psnr"] {
		t.Errorf("rewritten table: %+v", rows)
	}
	if _, err := os.Stat(filepath.Join(out, "grid-inpaint-box.png")); !os.IsNotExist(err) {
		t.Errorf("the grid of a task no longer in the spec is left: %v", err)
	}
	other := filepath.Join(dir, "other")
	must(t, os.MkdirAll(other, 0o755))
	must(t, os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o644))
	if _, code, err := runCLI(t, "table", spec, "--out", other); code != 2 || !strings.Contains(err.Error(), "no table") {
		t.Errorf("a folder that holds no table: exit %d, %v", code, err)
	}
	must(t, os.WriteFile(spec, []byte("tasks: [sr4]\nsolvers: [pinv]\nstepz: 3\n"), 0o644))
	if _, code, err := runCLI(t, "table", spec, "--out", filepath.Join(dir, "new")); code != 2 || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("bad spec: exit %d, %v", code, err)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
