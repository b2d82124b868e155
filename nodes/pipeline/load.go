package pipeline

import (
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decodes .jpg/.jpeg image folders
	_ "image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// LoadMNIST returns test (or train) digits [start, start+n) as 1×32×32 images.
func LoadMNIST(split string, start, n int) (*Images, error) {
	set, err := mnist.LoadSplit("", split)
	if err != nil {
		return nil, err
	}
	if start < 0 || n < 1 || start+n > set.N {
		return nil, fmt.Errorf("mnist: images [%d, %d) are outside the %s split's %d images", start, start+n, split, set.N)
	}
	_, rest := set.Split(start)
	part, _ := rest.Split(n)
	im := &Images{N: n, C: 1, H: mnist.Size, W: mnist.Size, Pixels: slices.Clone(part.Images)}
	for i := range n {
		im.Names = append(im.Names, fmt.Sprintf("mnist-%s-%05d", split, start+i))
		im.Labels = append(im.Labels, int(part.Labels[i]))
	}
	return im, nil
}

// LoadImages reads ground-truth images for a prior of the given channels (1: grey, 3: RGB)
// and size: a folder of PNG/JPEG files (sorted by name), a single PNG/JPEG file, or a .npy
// array [N, C, H, W] or [N, H, W] (float in [-1, 1], or uint8 in [0, 255]). n > 0 keeps the
// first n, and is an error when there are fewer. Errors name the file and what does not fit.
//
// Nothing is converted silently: a colour image (R, G, B not all equal) for a grey prior
// is refused, as the right conversion is the user's choice; an RGB prior takes grey images
// as R = G = B. Transparent pixels are composited on black, the background of MNIST
// digits (a pixel of alpha a and colour c reads as a·c).
func LoadImages(path string, channels, size, n int) (*Images, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	var im *Images
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case fi.IsDir():
		im, err = loadFolder(path, channels, n)
	case ext == ".png" || ext == ".jpg" || ext == ".jpeg":
		im, err = loadFiles(filepath.Dir(path), []string{filepath.Base(path)}, channels, n)
	default:
		im, err = loadNPY(path, channels, n)
	}
	if err != nil {
		return nil, err
	}
	if im.H != size || im.W != size {
		return nil, fmt.Errorf("images: %s holds %d×%d images, but the prior takes %d×%d (resize them first)", path, im.H, im.W, size, size)
	}
	// Checked last, so that a bad file among the few there are is named first.
	if n > im.N {
		return nil, fmt.Errorf("images: %s holds %d image(s), fewer than the %d asked for (--n): ask for %d or fewer", path, im.N, n, im.N)
	}
	return im, nil
}

func loadFolder(dir string, channels, n int) (*Images, error) {
	names, err := imageNames(dir)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return loadFiles(dir, names, channels, n)
}

// loadFiles decodes dir/names (already sorted); n > 0 keeps the first n.
func loadFiles(dir string, names []string, channels, n int) (*Images, error) {
	if n > 0 && n < len(names) {
		names = names[:n]
	}
	im := &Images{N: len(names), C: channels}
	for i, name := range names {
		path := filepath.Join(dir, name)
		img, err := decodeImage(path)
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		if i == 0 {
			im.H, im.W = b.Dy(), b.Dx()
			im.Pixels = make([]float32, 0, len(names)*channels*im.H*im.W)
		} else if b.Dx() != im.W || b.Dy() != im.H {
			return nil, fmt.Errorf("images: %s is %d×%d, but %s is %d×%d: all images must have one size", path, b.Dx(), b.Dy(), names[0], im.W, im.H)
		}
		if channels == 1 {
			if x, y, ok := colourPixel(img); ok {
				r, g, bl, _ := img.At(x, y).RGBA()
				return nil, fmt.Errorf("images: %s is a colour image (pixel (%d, %d) is R, G, B = %d, %d, %d), but the prior takes grey images: convert it to greyscale first (dpsflow does not pick a conversion for you)",
					path, x-b.Min.X, y-b.Min.Y, r>>8, g>>8, bl>>8)
			}
		}
		im.Pixels = appendPixels(im.Pixels, img, channels)
		im.Names = append(im.Names, strings.TrimSuffix(name, filepath.Ext(name)))
	}
	return im, nil
}

func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("images: decoding %s: %w", path, err)
	}
	return img, nil
}

// colourTolerance is how far (of 255) R, G and B may differ in a grey image: JPEG's chroma
// rounding leaves ±1–2 in images that were grey.
const colourTolerance = 2

// colourPixel finds a pixel whose R, G and B differ (alpha-premultiplied, 8-bit), if any.
func colourPixel(img image.Image) (x, y int, ok bool) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			lo, hi := min(r, g, bl)>>8, max(r, g, bl)>>8
			if hi-lo > colourTolerance {
				return x, y, true
			}
		}
	}
	return 0, 0, false
}

// appendPixels appends img's planes (grey luminance, or R, G, B) mapped 0…255 → −1…1.
// Both read the alpha-premultiplied colour, i.e. transparency composited on black.
func appendPixels(dst []float32, img image.Image, channels int) []float32 {
	b := img.Bounds()
	for c := range channels {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				var v uint8
				if channels == 1 {
					v = color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
				} else {
					r, g, bl, _ := img.At(x, y).RGBA()
					v = uint8([3]uint32{r, g, bl}[c] >> 8)
				}
				dst = append(dst, float32(v)/127.5-1)
			}
		}
	}
	return dst
}

func loadNPY(path string, channels, n int) (*Images, error) {
	t, err := npy.Read(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	dims := t.Shape().Dimensions
	if len(dims) == 3 {
		dims = []int{dims[0], 1, dims[1], dims[2]}
	}
	if len(dims) != 4 || dims[1] != channels {
		return nil, fmt.Errorf("images: %s has shape %v; want [N, %d, H, W] (or [N, H, W] for grey)", path, t.Shape().Dimensions, channels)
	}
	var px []float32
	switch t.DType() {
	case dtypes.Float32:
		px = tensors.MustCopyFlatData[float32](t)
	case dtypes.Float64:
		for _, v := range tensors.MustCopyFlatData[float64](t) {
			px = append(px, float32(v))
		}
	case dtypes.Uint8:
		for _, v := range tensors.MustCopyFlatData[uint8](t) {
			px = append(px, float32(v)/127.5-1)
		}
	default:
		return nil, fmt.Errorf("images: %s has dtype %s; .npy images must be float32 or float64 in [-1, 1], or uint8 in [0, 255]", path, t.DType())
	}
	for i, v := range px {
		if !(v >= -1.0001 && v <= 1.0001) {
			return nil, fmt.Errorf("images: %s: value %v at flat index %d is outside [-1, 1] (float arrays must be scaled to [-1, 1])", path, v, i)
		}
	}
	im := &Images{N: dims[0], C: dims[1], H: dims[2], W: dims[3], Pixels: px}
	if n > 0 && n < im.N {
		im.N, im.Pixels = n, im.Pixels[:n*im.Size()]
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	for i := range im.N {
		im.Names = append(im.Names, fmt.Sprintf("%s-%05d", base, i))
	}
	return im, nil
}
