package mnist

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The full sets are read once: gunzipping 70000 images takes a moment.
var train, test *Set

func TestMain(m *testing.M) {
	var err error
	if train, test, err = Load(""); err != nil {
		println(err.Error())
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestCountsAndLabels(t *testing.T) {
	if train.N != 60000 || test.N != 10000 {
		t.Fatalf("got %d train and %d test images, want 60000 and 10000", train.N, test.N)
	}
	if len(train.Images) != 60000*Size*Size || len(test.Labels) != 10000 {
		t.Fatalf("bad lengths: %d pixels, %d labels", len(train.Images), len(test.Labels))
	}
	if test.Labels[0] != 7 || train.Labels[0] != 5 {
		t.Errorf("first labels: test %d (want 7), train %d (want 5)", test.Labels[0], train.Labels[0])
	}
	if ts := test.Tensor(); ts.Shape().String() != "(Float32)[10000 1 32 32]" {
		t.Errorf("tensor shape %s", ts.Shape())
	}
}

func TestRangeAndBorder(t *testing.T) {
	for _, s := range []*Set{train, test} {
		lo, hi := float32(2), float32(-2)
		for _, v := range s.Images {
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo != -1 || hi != 1 {
			t.Errorf("values in [%g, %g], want exactly [-1, 1]", lo, hi)
		}
		for i := range s.N {
			img := s.Image(i)
			for y := range Size {
				for x := range Size {
					inside := x >= Pad && x < Size-Pad && y >= Pad && y < Size-Pad
					if !inside && img[y*Size+x] != -1 {
						t.Fatalf("image %d pixel (%d, %d) = %g, want -1 on the border", i, x, y, img[y*Size+x])
					}
				}
			}
		}
	}
	// The centre of the first test digit (a 7) has ink somewhere.
	ink := 0
	for _, v := range test.Image(0) {
		if v > 0 {
			ink++
		}
	}
	if ink < 50 {
		t.Errorf("first test image has %d bright pixels", ink)
	}
}

func TestDirOverrideError(t *testing.T) {
	_, err := LoadSplit(t.TempDir(), "train")
	if err == nil {
		t.Fatal("no error for an empty directory")
	}
	if _, err := LoadSplit("", "validation"); err == nil || !strings.Contains(err.Error(), "unknown split") {
		t.Errorf("bad split: %v", err)
	}
	dir, err := Dir()
	if err != nil || filepath.Base(dir) != "data" {
		t.Errorf("Dir() = %q, %v", dir, err)
	}
}

func TestEscapePath(t *testing.T) {
	got, _ := escapePath(ModulePath)
	if got != "github.com/petar/!go!m!n!i!s!t" {
		t.Errorf("escapePath = %q", got)
	}
}

func writePNG(t *testing.T, name string, img image.Image) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPNGFolder(t *testing.T) {
	dir := t.TempDir()
	small := image.NewGray(image.Rect(0, 0, 28, 28))
	small.SetGray(0, 0, color.Gray{255})
	writePNG(t, filepath.Join(dir, "a.png"), small)
	big := image.NewRGBA(image.Rect(0, 0, 32, 32))
	big.Set(0, 0, color.White)
	writePNG(t, filepath.Join(dir, "b.png"), big)

	s, err := LoadPNGFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 2 || s.Labels != nil || s.Names[1] != "b.png" {
		t.Fatalf("got %d images, labels %v, names %v", s.N, s.Labels, s.Names)
	}
	if a := s.Image(0); a[0] != -1 || a[Pad*Size+Pad] != 1 || a[Pad*Size+Pad+1] != -1 {
		t.Errorf("28×28 image not padded: %v", a[:3*Size])
	}
	if b := s.Image(1); b[0] != 1 || b[1] != -1 {
		t.Errorf("32×32 image: %v", b[:3])
	}

	writePNG(t, filepath.Join(dir, "c.png"), image.NewGray(image.Rect(0, 0, 30, 30)))
	if _, err := LoadPNGFolder(dir); err == nil || !strings.Contains(err.Error(), "c.png") {
		t.Errorf("wrong size not reported by name: %v", err)
	}
	if _, err := LoadPNGFolder(t.TempDir()); err == nil {
		t.Error("empty folder accepted")
	}
}
