package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	vgdraw "gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Panel is one column of a comparison figure: a title drawn as the column header
// ("measurement", "DPS", "truth", …) and its images, one per row.
type Panel struct {
	Title  string
	Images []image.Image
}

// GridOptions configures ComparisonGridWith.
type GridOptions struct {
	// Scale enlarges every image by this integer factor with nearest-neighbour sampling;
	// values below 1 mean 1.
	Scale int
	// RowLabels, when not empty, holds one label per row, drawn left of the row.
	RowLabels []string
}

// Figure layout, in pixels (the canvas is drawn at 72 dpi, so a point is a pixel).
const (
	figMargin   = 8
	figGap      = 6
	figFontSize = 12
	figDPI      = 72
)

// ImageOf converts one CHW image in [-1, 1] to 8 bits: gray (*image.Gray) for c = 1, opaque
// RGB (*image.RGBA) for c = 3. A value v maps to round(255·(v+1)/2); values outside
// [-1, 1] are clipped and NaN shows as black. It returns nil when c is not 1 or 3, a side
// is not positive, or len(pixels) is not c·h·w (ComparisonGrid and Snapshots reject nil
// images with an error).
func ImageOf(pixels []float32, c, h, w int) image.Image {
	if (c != 1 && c != 3) || h <= 0 || w <= 0 || len(pixels) != c*h*w {
		return nil
	}
	level := func(v float32) uint8 {
		x := float64(v)
		if math.IsNaN(x) {
			return 0
		}
		return uint8(math.Round(255 * (math.Max(-1, math.Min(1, x)) + 1) / 2))
	}
	if c == 1 {
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i, v := range pixels {
			img.Pix[i] = level(v)
		}
		return img
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	plane := h * w
	for i := range plane {
		img.Pix[4*i] = level(pixels[i])
		img.Pix[4*i+1] = level(pixels[plane+i])
		img.Pix[4*i+2] = level(pixels[2*plane+i])
		img.Pix[4*i+3] = 255
	}
	return img
}

// ComparisonGrid draws panels side by side: one column per panel with its title as the
// column header, one row per image, each image enlarged scale times (nearest neighbour)
// on a white background. All panels must hold the same number of images, none nil.
// Images of different sizes are allowed; each is centred in its cell.
func ComparisonGrid(panels []Panel, scale int) (image.Image, error) {
	return ComparisonGridWith(panels, GridOptions{Scale: scale})
}

// ComparisonGridWith is ComparisonGrid with options (row labels).
func ComparisonGridWith(panels []Panel, opts GridOptions) (image.Image, error) {
	if len(panels) == 0 {
		return nil, fmt.Errorf("plot: comparison grid: no panels")
	}
	rows := len(panels[0].Images)
	if rows == 0 {
		return nil, fmt.Errorf("plot: comparison grid: panel %q has no images", panels[0].Title)
	}
	titles := make([]string, len(panels))
	for j, p := range panels {
		titles[j] = p.Title
		if len(p.Images) != rows {
			return nil, fmt.Errorf("plot: comparison grid: panel %q has %d images, panel %q has %d",
				p.Title, len(p.Images), panels[0].Title, rows)
		}
		for i, img := range p.Images {
			if img == nil {
				return nil, fmt.Errorf("plot: comparison grid: panel %q image %d is nil", p.Title, i)
			}
		}
	}
	if len(opts.RowLabels) != 0 && len(opts.RowLabels) != rows {
		return nil, fmt.Errorf("plot: comparison grid: %d row labels for %d rows", len(opts.RowLabels), rows)
	}
	cells := make([][]image.Image, rows)
	for i := range cells {
		cells[i] = make([]image.Image, len(panels))
		for j, p := range panels {
			cells[i][j] = p.Images[i]
		}
	}
	return figTable(cells, titles, opts.RowLabels, opts.Scale), nil
}

// figTable draws a grid of images (cells[row][col], none nil) with column titles and
// optional row labels, using gonum/plot's vgimg canvas. Images are enlarged to whole
// pixels beforehand and drawn 1:1 at whole-pixel positions, so their pixels are exact.
func figTable(cells [][]image.Image, titles, rowLabels []string, scale int) image.Image {
	if scale < 1 {
		scale = 1
	}
	rows, cols := len(cells), len(titles)
	style := vgdraw.TextStyle{
		Color:   color.Black,
		Font:    font.From(gplot.DefaultFont, figFontSize),
		Handler: gplot.DefaultTextHandler,
	}
	big := make([][]*image.RGBA, rows)
	colW, rowH := make([]int, cols), make([]int, rows)
	for i := range rows {
		big[i] = make([]*image.RGBA, cols)
		for j := range cols {
			b := figEnlarge(cells[i][j], scale)
			big[i][j] = b
			colW[j] = max(colW[j], b.Bounds().Dx())
			rowH[i] = max(rowH[i], b.Bounds().Dy())
		}
	}
	headerH := 0
	for j, t := range titles {
		if t == "" {
			continue
		}
		headerH = max(headerH, figCeil(style.Height(t))+figGap)
		colW[j] = max(colW[j], figCeil(style.Width(t)))
	}
	labelW := 0
	for i, l := range rowLabels {
		if l == "" {
			continue
		}
		labelW = max(labelW, figCeil(style.Width(l))+figGap)
		rowH[i] = max(rowH[i], figCeil(style.Height(l)))
	}
	width := 2*figMargin + labelW + figSum(colW) + figGap*(cols-1)
	height := 2*figMargin + headerH + figSum(rowH) + figGap*(rows-1)

	canvas := vgimg.NewWith(vgimg.UseWH(vg.Length(width), vg.Length(height)), vgimg.UseDPI(figDPI))
	dc := vgdraw.New(canvas)
	// vg's y axis points up; flip converts a distance from the top into a vg y.
	flip := func(y int) vg.Length { return vg.Length(height - y) }

	x := figMargin + labelW
	colX := make([]int, cols)
	for j := range cols {
		colX[j] = x
		if titles[j] != "" {
			s := style
			s.XAlign, s.YAlign = vgdraw.XCenter, vgdraw.YTop
			dc.FillText(s, vg.Point{X: vg.Length(x) + vg.Length(colW[j])/2, Y: flip(figMargin)}, titles[j])
		}
		x += colW[j] + figGap
	}
	y := figMargin + headerH
	for i := range rows {
		if i < len(rowLabels) && rowLabels[i] != "" {
			s := style
			s.XAlign, s.YAlign = vgdraw.XRight, vgdraw.YCenter
			dc.FillText(s, vg.Point{X: vg.Length(figMargin + labelW - figGap), Y: flip(y) - vg.Length(rowH[i])/2}, rowLabels[i])
		}
		for j := range cols {
			b := big[i][j].Bounds()
			x0 := colX[j] + (colW[j]-b.Dx())/2
			y0 := y + (rowH[i]-b.Dy())/2
			dc.DrawImage(vg.Rectangle{
				Min: vg.Point{X: vg.Length(x0), Y: flip(y0 + b.Dy())},
				Max: vg.Point{X: vg.Length(x0 + b.Dx()), Y: flip(y0)},
			}, big[i][j])
		}
		y += rowH[i] + figGap
	}
	return canvas.Image()
}

// figEnlarge returns img enlarged k times (nearest neighbour) as an RGBA image at the origin.
func figEnlarge(img image.Image, k int) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	if k == 1 {
		draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
		return out
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			px := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
			for dy := range k {
				for dx := range k {
					out.SetRGBA(x*k+dx, y*k+dy, px)
				}
			}
		}
	}
	return out
}

func figCeil(l vg.Length) int { return int(math.Ceil(float64(l))) }

func figSum(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}
