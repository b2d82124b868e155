package plot

import (
	"fmt"
	"image"
	"image/color"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Points is a named cloud of 2-D points (samples of a distribution).
type Points struct {
	Name string
	X, Y []float64
}

// Scatter draws point clouds in one square panel with a legend, one colour and marker per
// cloud, on equal axes when square is true (for 2-D distributions). Errors name the cloud.
func Scatter(title, xLabel, yLabel string, clouds []Points, square bool) (image.Image, error) {
	if len(clouds) == 0 {
		return nil, fmt.Errorf("plot: no points to draw")
	}
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	lo, hi := 0.0, 0.0
	for i, c := range clouds {
		if len(c.X) != len(c.Y) || len(c.X) == 0 {
			return nil, fmt.Errorf("plot: points %q have %d x and %d y values", c.Name, len(c.X), len(c.Y))
		}
		xys := make(plotter.XYs, len(c.X))
		for k := range c.X {
			xys[k].X, xys[k].Y = c.X[k], c.Y[k]
			lo, hi = min(lo, c.X[k], c.Y[k]), max(hi, c.X[k], c.Y[k])
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, fmt.Errorf("plot: points %q: %w", c.Name, err)
		}
		col := plotutil.Color(i).(color.RGBA)
		col.A = 160 // see overlaps
		sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(1.6), Shape: plotutil.Shape(i)}
		p.Add(sc)
		p.Legend.Add(c.Name, sc)
	}
	if square {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi
	}
	canvas := vgimg.New(5*vg.Inch, 5*vg.Inch)
	p.Draw(draw.New(canvas))
	return canvas.Image(), nil
}
