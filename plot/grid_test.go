package plot

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestGridPlacesAndScalesPixels(t *testing.T) {
	// Two 1×2×3 gray images: −1 (black), 1 (white), 0 (mid-gray) and a value beyond 1.
	v := []float32{-1, 1, 0, 2, -1, 1, 0, 0, 0, 0, 0, 0}
	img, err := Grid(tensors.FromFlatDataAndDimensions(v, 2, 1, 2, 3), 2)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 2*(3+2)+2 || b.Dy() != 2+2+2 {
		t.Fatalf("bounds %v", b)
	}
	for _, c := range []struct{ x, y, want int }{{2, 2, 0}, {3, 2, 255}, {4, 2, 128}, {2, 3, 255}, {0, 0, 255}, {7, 2, 128}} {
		r, _, _, _ := img.At(c.x, c.y).RGBA()
		if int(r>>8) != c.want {
			t.Errorf("pixel (%d,%d) = %d, want %d", c.x, c.y, r>>8, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "g.png")
	if err := SavePNG(path, img); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatal(err)
	}
	if _, err := Grid(tensors.FromFlatDataAndDimensions(v, 12), 2); err == nil {
		t.Fatal("a rank-1 tensor was accepted")
	}
}

func TestUpscaleRepeatsPixels(t *testing.T) {
	img, err := Grid(tensors.FromFlatDataAndDimensions([]float32{-1, 1}, 1, 1, 1, 2), 1)
	if err != nil {
		t.Fatal(err)
	}
	big := Upscale(img, 3)
	if b := big.Bounds(); b.Dx() != 3*img.Bounds().Dx() || b.Dy() != 3*img.Bounds().Dy() {
		t.Fatalf("bounds %v", b)
	}
	for _, c := range []struct{ x, y, sx, sy int }{{6, 6, 2, 2}, {8, 8, 2, 2}, {9, 7, 3, 2}} {
		if big.At(c.x, c.y) != img.At(c.sx, c.sy) {
			t.Errorf("pixel (%d,%d) is not source pixel (%d,%d)", c.x, c.y, c.sx, c.sy)
		}
	}
}
