package plot

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCurvesPNGWritesAPNG(t *testing.T) {
	dir := t.TempDir()
	series := []Series{
		{"DPS", []float64{0, 250, 500, 750, 1000}, []float64{12, 18, 24, 27, 28}},
		{"MCG", []float64{0, 250, 500, 750, 1000}, []float64{11, 15, 19, 21, 22}},
	}
	for _, logY := range []bool{false, true} {
		path := filepath.Join(dir, "psnr.png")
		if err := CurvesPNG(path, "PSNR during sampling", "step", "PSNR (dB)", series, logY); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
			t.Errorf("figure is only %v", b)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("folder holds %d files, want only psnr.png (no temporary left)", len(entries))
	}
}

func TestCurvesRejectBadSeries(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name   string
		series []Series
		logY   bool
		want   string
	}{
		{"none", nil, false, "no series"},
		{"lengths", []Series{{"a", []float64{1, 2}, []float64{1}}}, false, `"a" has 2 x values and 1 y values`},
		{"empty", []Series{{"a", nil, nil}}, false, `"a" has no points`},
		{"nan", []Series{{"loss", []float64{1, 2}, []float64{1, math.NaN()}}}, false, `"loss" point 1`},
		{"log", []Series{{"res", []float64{1, 2}, []float64{1, 0}}}, true, "log axis"},
	} {
		path := filepath.Join(dir, c.name+".png")
		err := CurvesPNG(path, "t", "x", "y", c.series, c.logY)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s: a file was written despite the error", c.name)
		}
	}
}

func TestScatterDrawsEveryCloud(t *testing.T) {
	img, err := Scatter("samples", "x1", "x2", []Points{{Name: "prior", X: []float64{-1, 0, 1}, Y: []float64{0, 1, 0}}, {Name: "posterior", X: []float64{0.5}, Y: []float64{0.5}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
		t.Fatalf("figure is %v", b)
	}
	if _, err := Scatter("bad", "", "", []Points{{Name: "broken", X: []float64{1}, Y: nil}}, false); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("mismatched cloud: %v", err)
	}
}
