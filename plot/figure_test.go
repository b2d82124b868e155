package plot

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

func TestImageOfMapsAndClips(t *testing.T) {
	gray := ImageOf([]float32{-1, 0, 1, 2, -3, float32(math.NaN())}, 1, 2, 3)
	g, ok := gray.(*image.Gray)
	if !ok || g.Bounds() != image.Rect(0, 0, 3, 2) {
		t.Fatalf("gray image %T %v", gray, gray.Bounds())
	}
	for i, want := range []uint8{0, 128, 255, 255, 0, 0} {
		if got := g.GrayAt(i%3, i/3).Y; got != want {
			t.Errorf("gray pixel %d = %d, want %d", i, got, want)
		}
	}
	// 3×1×2 CHW: R plane, G plane, B plane.
	rgb := ImageOf([]float32{1, -1, 0, 1, -1, 0.5}, 3, 1, 2)
	if rgb.Bounds() != image.Rect(0, 0, 2, 1) {
		t.Fatalf("rgb bounds %v", rgb.Bounds())
	}
	if got, want := color.RGBAModel.Convert(rgb.At(0, 0)), (color.RGBA{255, 128, 0, 255}); got != want {
		t.Errorf("rgb (0,0) = %v, want %v", got, want)
	}
	if got, want := color.RGBAModel.Convert(rgb.At(1, 0)), (color.RGBA{0, 255, 191, 255}); got != want {
		t.Errorf("rgb (1,0) = %v, want %v", got, want)
	}
	for _, bad := range []struct{ n, c, h, w int }{{6, 2, 1, 3}, {5, 1, 2, 3}, {0, 1, 0, 0}} {
		if img := ImageOf(make([]float32, bad.n), bad.c, bad.h, bad.w); img != nil {
			t.Errorf("ImageOf(%d values, %d, %d, %d) = %v, want nil", bad.n, bad.c, bad.h, bad.w, img.Bounds())
		}
	}
}

// solid is a w×h image of one colour with a white pixel at (wx, wy).
func solid(w, h int, c color.RGBA, wx, wy int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	img.SetRGBA(wx, wy, color.RGBA{255, 255, 255, 255})
	return img
}

// find returns the bounding box and count of the pixels of img equal to c.
func find(img image.Image, c color.RGBA) (image.Rectangle, int) {
	var box image.Rectangle
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == c {
				box = box.Union(image.Rect(x, y, x+1, y+1))
				n++
			}
		}
	}
	return box, n
}

// dark counts pixels in r darker than mid-gray: text.
func dark(img image.Image, r image.Rectangle) int {
	n := 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if g := color.GrayModel.Convert(img.At(x, y)).(color.Gray); g.Y < 128 {
				n++
			}
		}
	}
	return n
}

func TestComparisonGridLayout(t *testing.T) {
	// Two rows × three panels of 5×4 images, each a unique saturated colour (never produced
	// by black text on white) with one white pixel at a known place.
	const w, h, scale = 5, 4, 3
	colors := [2][3]color.RGBA{
		{{200, 0, 0, 255}, {0, 200, 0, 255}, {0, 0, 200, 255}},
		{{200, 200, 0, 255}, {0, 200, 200, 255}, {200, 0, 200, 255}},
	}
	white := [2][3]image.Point{{{0, 0}, {4, 3}, {2, 1}}, {{1, 2}, {3, 0}, {4, 1}}}
	titles := []string{"measurement", "DPS", "truth"}
	panels := make([]Panel, 3)
	for j := range panels {
		panels[j].Title = titles[j]
		for i := range 2 {
			panels[j].Images = append(panels[j].Images, solid(w, h, colors[i][j], white[i][j].X, white[i][j].Y))
		}
	}
	for _, labels := range [][]string{nil, {"digit 3", "digit 7"}} {
		img, err := ComparisonGridWith(panels, GridOptions{Scale: scale, RowLabels: labels})
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		if b.Dx() < 3*w*scale || b.Dx() > 3*w*scale+400 || b.Dy() < 2*h*scale+10 || b.Dy() > 2*h*scale+100 {
			t.Fatalf("figure is %v for 2 rows × 3 columns of %d×%d images", b, w*scale, h*scale)
		}
		var boxes [2][3]image.Rectangle
		for i := range 2 {
			for j := range 3 {
				box, n := find(img, colors[i][j])
				// Exact nearest-neighbour copy: the colour fills the enlarged image but one
				// enlarged white pixel, with no blending at the edges.
				if box.Dx() != w*scale || box.Dy() != h*scale || n != (w*h-1)*scale*scale {
					t.Fatalf("labels %v: image (%d,%d) found at %v with %d pixels, want %d×%d with %d",
						labels, i, j, box, n, w*scale, h*scale, (w*h-1)*scale*scale)
				}
				at := box.Min.Add(white[i][j].Mul(scale))
				whiteBlock := image.Rectangle{Min: at, Max: at.Add(image.Pt(scale, scale))}
				for y := whiteBlock.Min.Y; y < whiteBlock.Max.Y; y++ {
					for x := whiteBlock.Min.X; x < whiteBlock.Max.X; x++ {
						if got := color.RGBAModel.Convert(img.At(x, y)); got != (color.RGBA{255, 255, 255, 255}) {
							t.Fatalf("image (%d,%d): pixel (%d,%d) = %v, want white", i, j, x, y, got)
						}
					}
				}
				boxes[i][j] = box
			}
		}
		for i := range 2 {
			for j := range 3 {
				if j > 0 && (boxes[i][j].Min.X <= boxes[i][j-1].Max.X || boxes[i][j].Min.Y != boxes[i][j-1].Min.Y) {
					t.Errorf("row %d: column %d at %v is not right of column %d at %v", i, j, boxes[i][j], j-1, boxes[i][j-1])
				}
				if i > 0 && (boxes[i][j].Min.Y <= boxes[i-1][j].Max.Y || boxes[i][j].Min.X != boxes[i-1][j].Min.X) {
					t.Errorf("column %d: row %d at %v is not below row %d at %v", j, i, boxes[i][j], i-1, boxes[i-1][j])
				}
			}
		}
		// Column headers: text above each first-row image, none under the last row.
		for j := range 3 {
			head := image.Rect(boxes[0][j].Min.X-20, 0, boxes[0][j].Max.X+20, boxes[0][j].Min.Y)
			if dark(img, head) == 0 {
				t.Errorf("no title above column %d (%s)", j, titles[j])
			}
		}
		if n := dark(img, image.Rect(boxes[1][0].Min.X, boxes[1][0].Max.Y, b.Max.X, b.Max.Y)); n != 0 {
			t.Errorf("%d dark pixels below the last row", n)
		}
		left := dark(img, image.Rect(0, boxes[0][0].Min.Y, boxes[0][0].Min.X, boxes[1][0].Max.Y))
		if (labels != nil) != (left > 0) {
			t.Errorf("row labels %v, but %d dark pixels left of the images", labels, left)
		}
	}
}

func TestComparisonGridRejectsBadInput(t *testing.T) {
	img := solid(2, 2, color.RGBA{1, 2, 3, 255}, 0, 0)
	for _, c := range []struct {
		name   string
		panels []Panel
		opts   GridOptions
		want   string
	}{
		{"no panels", nil, GridOptions{}, "no panels"},
		{"counts", []Panel{{"a", []image.Image{img, img}}, {"b", []image.Image{img}}}, GridOptions{}, `panel "b" has 1 images`},
		{"nil", []Panel{{"a", []image.Image{img}}, {"b", []image.Image{nil}}}, GridOptions{}, `panel "b" image 0 is nil`},
		{"empty", []Panel{{"a", nil}}, GridOptions{}, "no images"},
		{"labels", []Panel{{"a", []image.Image{img}}}, GridOptions{RowLabels: []string{"x", "y"}}, "2 row labels for 1 rows"},
	} {
		_, err := ComparisonGridWith(c.panels, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestSnapshotsLayout(t *testing.T) {
	const w, h, scale = 4, 4, 2
	var frames []Frame
	colors := []color.RGBA{{200, 0, 0, 255}, {0, 200, 0, 255}, {0, 0, 200, 255}, {200, 200, 0, 255}}
	for k, step := range []int{999, 500, 0} {
		frames = append(frames, Frame{Step: step, Xt: solid(w, h, colors[k], 0, 0), X0: solid(w, h, colors[3], 3, 3)})
	}
	img, err := Snapshots(frames, scale)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if b.Dx() < 3*w*scale || b.Dx() > 3*w*scale+400 || b.Dy() < 2*h*scale+10 || b.Dy() > 2*h*scale+100 {
		t.Fatalf("figure is %v", b)
	}
	var prev image.Rectangle
	for k := range frames {
		box, n := find(img, colors[k])
		if box.Dx() != w*scale || box.Dy() != h*scale || n != (w*h-1)*scale*scale {
			t.Fatalf("x_t of frame %d at %v with %d pixels", k, box, n)
		}
		if k > 0 && (box.Min.X <= prev.Max.X || box.Min.Y != prev.Min.Y) {
			t.Errorf("frame %d at %v not right of frame %d at %v", k, box, k-1, prev)
		}
		prev = box
	}
	// The three x̂0 images share a colour: they fill one row below the x_t row.
	box, n := find(img, colors[3])
	if n != 3*(w*h-1)*scale*scale || box.Min.Y <= prev.Max.Y || box.Dy() != h*scale {
		t.Errorf("x̂0 row at %v with %d pixels, x_t row ends at y=%d", box, n, prev.Max.Y)
	}
	if _, err := Snapshots(nil, 2); err == nil {
		t.Error("no frames accepted")
	}
	if _, err := Snapshots([]Frame{{Step: 3, Xt: frames[0].Xt}}, 2); err == nil || !strings.Contains(err.Error(), "step 3") {
		t.Errorf("nil x̂0: error %v", err)
	}
}

func TestComparisonGridCopiesGrayPixelsExactly(t *testing.T) {
	// A 1×6×7 image with a black frame and a gray ramp inside, taken as a sub-image so its
	// bounds do not start at the origin. With an empty title nothing else is drawn, so the
	// non-white pixels are the enlarged image.
	const c, h, w, scale = 1, 6, 7, 3
	v := make([]float32, c*h*w)
	for y := range h {
		for x := range w {
			v[y*w+x] = -1
			if x > 0 && y > 0 && x < w-1 && y < h-1 {
				v[y*w+x] = float32(x*h+y)/float32(w*h) - 0.1
			}
		}
	}
	full := ImageOf(v, c, h, w).(*image.Gray)
	sub := full.SubImage(image.Rect(1, 0, w, h)) // drop the first column
	img, err := ComparisonGrid([]Panel{{Images: []image.Image{sub}}}, scale)
	if err != nil {
		t.Fatal(err)
	}
	var box image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) != (color.RGBA{255, 255, 255, 255}) {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	if box.Dx() != (w-1)*scale || box.Dy() != h*scale {
		t.Fatalf("image drawn at %v, want %d×%d", box, (w-1)*scale, h*scale)
	}
	for y := range box.Dy() {
		for x := range box.Dx() {
			want := full.GrayAt(1+x/scale, y/scale).Y
			if got := color.GrayModel.Convert(img.At(box.Min.X+x, box.Min.Y+y)).(color.Gray).Y; got != want {
				t.Fatalf("pixel (%d,%d) of the enlarged image = %d, want %d", x, y, got, want)
			}
		}
	}
}
