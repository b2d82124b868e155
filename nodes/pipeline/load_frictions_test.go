package pipeline

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// writeNRGBA writes a 32×32 PNG filled with c (non-premultiplied, so alpha is kept).
func writeNRGBA(t *testing.T, path string, c color.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for y := range 32 {
		for x := range 32 {
			img.SetNRGBA(x, y, c)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestLoadImagesRefusesColourForAGreyPrior(t *testing.T) {
	dir := t.TempDir()
	writeNRGBA(t, filepath.Join(dir, "a.png"), color.NRGBA{200, 200, 200, 255}) // grey stored as RGB
	writeNRGBA(t, filepath.Join(dir, "b.png"), color.NRGBA{255, 0, 0, 255})
	_, err := LoadImages(dir, 1, 32, 0)
	if err == nil || !strings.Contains(err.Error(), "b.png is a colour image") || !strings.Contains(err.Error(), "255, 0, 0") {
		t.Fatalf("colour PNG for a grey prior: error %v, want one naming b.png and its pixel", err)
	}
	// Grey stored as RGB is grey: accepted, with its value.
	im, err := LoadImages(dir, 1, 32, 1)
	if err != nil || im.N != 1 || im.Pixels[0] != float32(200)/127.5-1 {
		t.Fatalf("RGB-encoded grey: %v %+v", err, im)
	}
	// An RGB prior takes the colour image as it is.
	rgb, err := LoadImages(filepath.Join(dir, "b.png"), 3, 32, 0)
	if err != nil || rgb.Pixels[0] != 1 || rgb.Pixels[32*32] != -1 {
		t.Fatalf("colour PNG for an RGB prior: %v", err)
	}
}

func TestLoadImagesCompositesAlphaOnBlack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "half.png")
	writeNRGBA(t, path, color.NRGBA{255, 255, 255, 102}) // white at 40 % opacity
	want := float32(102)/127.5 - 1                       // 0.4 · white over black
	for _, channels := range []int{1, 3} {
		im, err := LoadImages(path, channels, 32, 0)
		if err != nil {
			t.Fatal(err)
		}
		for c := range channels {
			if got := im.Pixels[c*32*32]; got != want {
				t.Errorf("%d channel(s), channel %d: pixel %v, want %v (composited on black)", channels, c, got, want)
			}
		}
	}
}

func TestLoadImagesRefusesMoreThanThereAre(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.png", "b.png", "c.png", "d.png"} {
		writePNG(t, filepath.Join(dir, name), 32, 32, 0)
	}
	arr := filepath.Join(t.TempDir(), "x.npy")
	if err := npy.Write(arr, tensors.FromFlatDataAndDimensions(make([]float32, 3*32*32), 3, 32, 32)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path    string
		n, have int
	}{{dir, 8, 4}, {arr, 5, 3}, {filepath.Join(dir, "a.png"), 2, 1}} {
		_, err := LoadImages(c.path, 1, 32, c.n)
		if err == nil {
			t.Errorf("LoadImages(%s, n=%d): no error", c.path, c.n)
			continue
		}
		for _, want := range []string{c.path, "holds " + itoa(c.have) + " image", "the " + itoa(c.n) + " asked for (--n)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("LoadImages(%s, n=%d): error %q lacks %q", c.path, c.n, err, want)
			}
		}
	}
}

func TestLoadImagesTakesASingleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seven.PNG")
	writePNG(t, path, 32, 32, 255)
	im, err := LoadImages(path, 1, 32, 0)
	if err != nil || im.N != 1 || im.Names[0] != "seven" || im.Pixels[0] != 1 {
		t.Fatalf("single PNG: %v %+v", err, im)
	}
	bad := filepath.Join(t.TempDir(), "x.png")
	os.WriteFile(bad, []byte("not a png"), 0o644)
	if _, err := LoadImages(bad, 1, 32, 0); err == nil || !strings.Contains(err.Error(), "decoding "+bad) {
		t.Errorf("broken single PNG: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
