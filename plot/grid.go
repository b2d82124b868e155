package plot

import (
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Grid lays out a batch of NCHW images in [-1, 1] (1 channel: gray, 3: RGB) in rows of
// cols, with a 2-pixel white border between them. Values outside [-1, 1] are clipped.
func Grid(batch *tensors.Tensor, cols int) (image.Image, error) {
	d := batch.Shape().Dimensions
	if len(d) != 4 || (d[1] != 1 && d[1] != 3) {
		return nil, fmt.Errorf("plot: want images [N, 1 or 3, H, W], got %v", d)
	}
	n, c, h, w := d[0], d[1], d[2], d[3]
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	rows := (n + cols - 1) / cols
	const pad = 2
	img := image.NewRGBA(image.Rect(0, 0, cols*(w+pad)+pad, rows*(h+pad)+pad))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	values := floats(batch)
	level := func(v float64) uint8 {
		return uint8(math.Round(255 * (math.Max(-1, math.Min(1, v)) + 1) / 2))
	}
	for k := range n {
		x0, y0 := pad+(k%cols)*(w+pad), pad+(k/cols)*(h+pad)
		for y := range h {
			for x := range w {
				at := func(ch int) uint8 { return level(values[((k*c+ch)*h+y)*w+x]) }
				px := color.RGBA{at(0), at(0), at(0), 255}
				if c == 3 {
					px = color.RGBA{at(0), at(1), at(2), 255}
				}
				img.SetRGBA(x0+x, y0+y, px)
			}
		}
	}
	return img, nil
}

// SavePNG writes img to path atomically (temporary file, then rename).
func SavePNG(path string, img image.Image) error {
	if err := atomicfile.WriteWith(path, 0o644, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func floats(t *tensors.Tensor) []float64 {
	var out []float64
	t.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float32:
			out = make([]float64, len(v))
			for i, x := range v {
				out[i] = float64(x)
			}
		case []float64:
			out = append(out, v...)
		}
	})
	return out
}

// Upscale enlarges img k times with nearest-neighbour sampling, so small images (MNIST's
// 32×32) stay crisp on screen.
func Upscale(img image.Image, k int) image.Image {
	if k <= 1 {
		return img
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx()*k, b.Dy()*k))
	for y := range b.Dy() * k {
		for x := range b.Dx() * k {
			out.Set(x, y, img.At(b.Min.X+x/k, b.Min.Y+y/k))
		}
	}
	return out
}
