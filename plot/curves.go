package plot

import (
	"fmt"
	"image"
	"math"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one named curve: Y[i] plotted against X[i] (a metric against the step, the
// loss against the epoch, PSNR against the noise level, …).
type Series struct {
	Name string
	X, Y []float64
}

// Size of CurvesPNG's figure.
const (
	curvesWidth  = 6 * vg.Inch
	curvesHeight = 4 * vg.Inch
)

// CurvesPNG draws series as lines with gonum/plot, one colour and dash pattern per series
// with a legend right of the plot, and writes the figure to path as PNG atomically (temporary file in the
// same folder, then rename). With logY the y axis is logarithmic, and every Y must then be
// positive. Errors name the offending series: no series, X and Y of different lengths, no
// points, NaN or ±Inf values.
func CurvesPNG(path, title, xLabel, yLabel string, series []Series, logY bool) error {
	img, err := Curves(title, xLabel, yLabel, series, logY)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return SavePNG(path, img)
}

// Curves is CurvesPNG's figure as an image (for notebooks).
func Curves(title, xLabel, yLabel string, series []Series, logY bool) (image.Image, error) {
	if err := checkSeries(series, logY); err != nil {
		return nil, err
	}
	p := gplot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	if logY {
		p.Y.Scale = gplot.LogScale{}
		p.Y.Tick.Marker = gplot.LogTicks{Prec: -1}
	}
	legend := gplot.NewLegend()
	legend.Top, legend.Left = true, true
	legend.Padding = vg.Points(2)
	var legendW vg.Length
	for i, s := range series {
		xys := make(plotter.XYs, len(s.X))
		for k := range s.X {
			xys[k].X, xys[k].Y = s.X[k], s.Y[k]
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("series %q: %w", s.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		legend.Add(s.Name, line)
		legendW = max(legendW, legend.ThumbnailWidth+legend.TextStyle.Width(" "+s.Name))
	}
	// The legend gets its own strip right of the plot, so it never hides a curve.
	const pad = vg.Length(10)
	legendW += 2 * pad
	canvas := vgimg.New(curvesWidth+legendW, curvesHeight)
	dc := vgdraw.New(canvas)
	p.Draw(vgdraw.Crop(dc, 0, -legendW, 0, 0))
	legend.Draw(vgdraw.Crop(dc, curvesWidth+pad, -pad, 0, -2*pad))
	return canvas.Image(), nil
}

// checkSeries validates curves for CurvesPNG and CurvesHTML.
func checkSeries(series []Series, logY bool) error {
	if len(series) == 0 {
		return fmt.Errorf("plot: no series to draw")
	}
	for _, s := range series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plot: series %q has %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
		if len(s.X) == 0 {
			return fmt.Errorf("plot: series %q has no points", s.Name)
		}
		for k := range s.X {
			x, y := s.X[k], s.Y[k]
			if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
				return fmt.Errorf("plot: series %q point %d is (%v, %v), not finite", s.Name, k, x, y)
			}
			if logY && y <= 0 {
				return fmt.Errorf("plot: series %q point %d has y = %v, which a log axis cannot show", s.Name, k, y)
			}
		}
	}
	return nil
}
