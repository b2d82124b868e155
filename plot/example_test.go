package plot_test

import (
	"bytes"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpsflow/dpsflow/plot"
)

// ring is a 1×16×16 test image in [-1, 1].
func ring(r float64) []float32 {
	v := make([]float32, 16*16)
	for y := range 16 {
		for x := range 16 {
			d := math.Hypot(float64(x)-7.5, float64(y)-7.5)
			v[y*16+x] = float32(math.Cos(d - r))
		}
	}
	return v
}

func ExampleComparisonGrid() {
	truth := plot.ImageOf(ring(0), 1, 16, 16)
	estimate := plot.ImageOf(ring(0.3), 1, 16, 16)
	measured := plot.ImageOf(ring(1), 1, 16, 16)
	fig, err := plot.ComparisonGridWith([]plot.Panel{
		{Title: "measurement", Images: []image.Image{measured, measured}},
		{Title: "DPS", Images: []image.Image{estimate, estimate}},
		{Title: "truth", Images: []image.Image{truth, truth}},
	}, plot.GridOptions{Scale: 4, RowLabels: []string{"sample 1", "sample 2"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, _ := os.MkdirTemp("", "dpsflow-example")
	defer os.RemoveAll(dir)
	fmt.Println(plot.SavePNG(filepath.Join(dir, "comparison.png"), fig))
	fmt.Println(fig.Bounds().Dx() > 3*64, fig.Bounds().Dy() > 2*64)
	// Output:
	// <nil>
	// true true
}

func ExampleSnapshots() {
	var frames []plot.Frame
	for _, step := range []int{999, 750, 500, 250, 0} {
		r := float64(step) / 250
		frames = append(frames, plot.Frame{
			Step: step,
			Xt:   plot.ImageOf(ring(r), 1, 16, 16),
			X0:   plot.ImageOf(ring(r/2), 1, 16, 16),
		})
	}
	fig, err := plot.Snapshots(frames, 3)
	fmt.Println(err, fig.Bounds().Dx() > 5*48)
	// Output: <nil> true
}

func ExampleCurvesPNG() {
	dir, _ := os.MkdirTemp("", "dpsflow-example")
	defer os.RemoveAll(dir)
	steps := []float64{0, 250, 500, 750, 1000}
	err := plot.CurvesPNG(filepath.Join(dir, "residual.png"), "‖y − A(x̂0)‖ during sampling", "step", "residual",
		[]plot.Series{
			{Name: "DPS", X: steps, Y: []float64{40, 9, 3, 1.2, 0.9}},
			{Name: "MCG", X: steps, Y: []float64{40, 12, 6, 3, 2.5}},
		}, true)
	fmt.Println(err)
	// Output: <nil>
}

func ExampleCurvesHTML() {
	// A page that loads ECharts from a folder beside it; plot.Inline makes a
	// self-contained page instead (for Jupyter).
	dir, _ := os.MkdirTemp("", "dpsflow-example")
	defer os.RemoveAll(dir)
	var page bytes.Buffer
	err := plot.CurvesHTML(&page, "PSNR", "step", "dB",
		[]plot.Series{{Name: "DPS", X: []float64{0, 1000}, Y: []float64{12, 28}}}, plot.Dir("js"))
	if err == nil {
		err = plot.WriteAssets(filepath.Join(dir, "js"))
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "psnr.html"), page.Bytes(), 0o644)
	}
	fmt.Println(err, strings.Contains(page.String(), `<script src="js/echarts.min.js"></script>`))
	// Output: <nil> true
}
