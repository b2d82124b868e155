package pipeline

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func writePNG(t *testing.T, path string, w, h int, v uint8) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
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

func TestLoadImagesReadsFoldersAndNPY(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "b.png"), 32, 32, 255)
	writePNG(t, filepath.Join(dir, "a.png"), 32, 32, 0)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	im, err := LoadImages(dir, 1, 32, 0)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 2 || im.Names[0] != "a" || im.Image(0)[0] != -1 || im.Image(1)[5] != 1 {
		t.Fatalf("folder: N %d, names %v, pixels %v %v", im.N, im.Names, im.Image(0)[0], im.Image(1)[5])
	}
	rgb, err := LoadImages(dir, 3, 32, 1)
	if err != nil || rgb.N != 1 || rgb.C != 3 || len(rgb.Pixels) != 3*32*32 {
		t.Fatalf("folder as RGB: %v %+v", err, rgb)
	}
	arr := filepath.Join(t.TempDir(), "x.npy")
	if err := npy.Write(arr, tensors.FromFlatDataAndDimensions(make([]float32, 3*16*16), 3, 16, 16)); err != nil {
		t.Fatal(err)
	}
	if im, err := LoadImages(arr, 1, 16, 2); err != nil || im.N != 2 || im.C != 1 || im.Names[1] != "x-00001" {
		t.Fatalf("npy: %v %+v", err, im)
	}
}

func TestLoadImagesErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), 32, 32, 0)
	writePNG(t, filepath.Join(dir, "b.png"), 28, 32, 0)
	bad := filepath.Join(t.TempDir(), "bad.npy")
	big := make([]float32, 16*16)
	big[7] = 255
	if err := npy.Write(bad, tensors.FromFlatDataAndDimensions(big, 1, 16, 16)); err != nil {
		t.Fatal(err)
	}
	one := t.TempDir()
	writePNG(t, filepath.Join(one, "a.png"), 64, 64, 0)
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "x.png"), []byte("not a png"), 0o644)
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "b.png is 28×32"},
		{bad, "outside [-1, 1]"},
		{one, "64×64 images, but the prior takes 32×32"},
		{broken, "x.png"},
		{t.TempDir(), "no .png, .jpg or .jpeg files"},
	} {
		_, err := LoadImages(c.path, 1, 32, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadImages(%s): error %v, want one containing %q", c.path, err, c.want)
		}
	}
}

func TestViewOfUpscalesSmallMeasurements(t *testing.T) {
	im := &Images{N: 1, C: 1, H: 4, W: 4, Pixels: make([]float32, 16), Names: []string{"x"}}
	m := &Measurement{Shape: []int{1, 1, 2, 2}, Y: []float32{-1, 0.5, 0.25, 1}}
	v := viewOf(m, im)
	want := []float32{-1, -1, 0.5, 0.5, -1, -1, 0.5, 0.5, 0.25, 0.25, 1, 1, 0.25, 0.25, 1, 1}
	for i, p := range v.Pixels {
		if p != want[i] {
			t.Fatalf("view %v, want %v", v.Pixels, want)
		}
	}
}
