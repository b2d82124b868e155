package pipeline

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/metrics/fid"
)

// ScoreOptions are what `dpsflow score` compares and with which metrics.
type ScoreOptions struct {
	Pred, Ref string     // folders of PNG/JPEG images, matched by file name
	LPIPS     *LPIPSSpec // nil: no LPIPS
	// FID: "" (none), FIDMNIST or FIDInception (with FIDWeights).
	FID, FIDWeights string
	KID             fid.KIDOptions
	Backend         string
}

// ImageScore is one image's scores in score.json.
type ImageScore struct {
	Name  string   `json:"name"`
	PSNR  Number   `json:"psnr"` // +Inf (identical images) is written as null
	SSIM  float64  `json:"ssim"`
	LPIPS *float64 `json:"lpips,omitempty"`
}

// ScoreReport is what `dpsflow score --json` prints. FID is the Fréchet distance on the
// Features network's features (Inception's: the FID; the MNIST classifier's: its FD).
// Accuracy is the fraction of predictions the MNIST classifier puts in the class it gives
// the reference (folders carry no labels).
type ScoreReport struct {
	Images   []ImageScore      `json:"images"`
	Mean     map[string]Number `json:"mean"`
	Std      map[string]Number `json:"std"`
	Features string            `json:"features,omitempty"`
	FID      *float64          `json:"fid,omitempty"`
	KID      *float64          `json:"kid,omitempty"`
	KIDStd   *float64          `json:"kid_std,omitempty"`
	Accuracy *float64          `json:"accuracy,omitempty"`
}

// ScoreFolders scores the images of o.Pred against those of the same names in o.Ref.
// Every image is read as it is (grey, or RGB if any image of either folder has colour,
// 0…255 → −1…1); names present in one folder only, and images of different sizes, are
// errors listing them all.
func ScoreFolders(o ScoreOptions) (*ScoreReport, error) {
	names, err := matchedNames(o.Pred, o.Ref)
	if err != nil {
		return nil, err
	}
	pred, ref, err := loadPairs(o.Pred, o.Ref, names)
	if err != nil {
		return nil, err
	}
	rep := &ScoreReport{Mean: map[string]Number{}, Std: map[string]Number{}}
	cols := map[string][]float64{}
	for i, name := range names {
		psnr := metrics.PSNR(pred.Image(i), ref.Image(i), 2)
		s := ImageScore{Name: name, PSNR: Number(psnr)}
		if s.SSIM, err = metrics.SSIM(pred.Image(i), ref.Image(i), pred.C, pred.H, pred.W, 2); err != nil {
			return nil, fmt.Errorf("SSIM of %s: %w", name, err)
		}
		cols["psnr"] = append(cols["psnr"], psnr)
		cols["ssim"] = append(cols["ssim"], s.SSIM)
		rep.Images = append(rep.Images, s)
	}
	if o.LPIPS != nil {
		d, err := LPIPSScores(*o.LPIPS, o.Backend, pred, ref)
		if err != nil {
			return nil, err
		}
		for i := range rep.Images {
			rep.Images[i].LPIPS = &d[i]
		}
		cols["lpips"] = d
	}
	for k, xs := range cols {
		mean, std := metrics.MeanStd(xs)
		rep.Mean[k], rep.Std[k] = Number(mean), Number(std)
	}
	if o.FID != "" {
		fp, err := ComputeFeatures(o.FID, o.FIDWeights, o.Backend, pred)
		if err != nil {
			return nil, fmt.Errorf("--pred: %w", err)
		}
		fr, err := ComputeFeatures(o.FID, o.FIDWeights, o.Backend, ref)
		if err != nil {
			return nil, fmt.Errorf("--ref: %w", err)
		}
		s, err := CompareFeatures(fp, fr, o.KID)
		if err != nil {
			return nil, err
		}
		rep.Features, rep.FID, rep.KID, rep.KIDStd = o.FID, &s.FD, &s.KID, &s.KIDStd
		if s.Correct != nil {
			acc := s.Accuracy().Mean
			rep.Accuracy = &acc
		}
	}
	return rep, nil
}

// imageNames lists the PNG/JPEG files of a folder by name, sorted; none is an error.
func imageNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no .png, .jpg or .jpeg files in %s", dir)
	}
	slices.Sort(names)
	return names, nil
}

// matchedNames are the file names both folders hold; any name in one only is an error.
func matchedNames(pred, ref string) ([]string, error) {
	a, err := imageNames(pred)
	if err != nil {
		return nil, fmt.Errorf("--pred: %w", err)
	}
	b, err := imageNames(ref)
	if err != nil {
		return nil, fmt.Errorf("--ref: %w", err)
	}
	var onlyA, onlyB []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			onlyA = append(onlyA, n)
		}
	}
	for _, n := range b {
		if !slices.Contains(a, n) {
			onlyB = append(onlyB, n)
		}
	}
	if len(onlyA)+len(onlyB) > 0 {
		var parts []string
		if len(onlyA) > 0 {
			parts = append(parts, fmt.Sprintf("only in %s: %s", pred, strings.Join(onlyA, ", ")))
		}
		if len(onlyB) > 0 {
			parts = append(parts, fmt.Sprintf("only in %s: %s", ref, strings.Join(onlyB, ", ")))
		}
		return nil, fmt.Errorf("the folders' images are matched by file name; %s", strings.Join(parts, "; "))
	}
	return a, nil
}

// loadPairs decodes the named images of both folders with one channel count and checks
// that they all have one size, listing every image that differs.
func loadPairs(predDir, refDir string, names []string) (*Images, *Images, error) {
	var imgs [2][]image.Image
	colour := false
	for k, dir := range []string{predDir, refDir} {
		for _, n := range names {
			img, err := decodeImage(filepath.Join(dir, n))
			if err != nil {
				return nil, nil, err
			}
			colour = colour || hasColour(img)
			imgs[k] = append(imgs[k], img)
		}
	}
	size := imgs[1][0].Bounds().Size()
	var wrong []string
	for k, dir := range []string{predDir, refDir} {
		for i, img := range imgs[k] {
			if s := img.Bounds().Size(); s != size {
				wrong = append(wrong, fmt.Sprintf("%s is %d×%d", filepath.Join(dir, names[i]), s.X, s.Y))
			}
		}
	}
	if len(wrong) > 0 {
		return nil, nil, fmt.Errorf("images of another size than %s's %d×%d: %s", filepath.Join(refDir, names[0]), size.X, size.Y, strings.Join(wrong, "; "))
	}
	c := 1
	if colour {
		c = 3
	}
	var out [2]*Images
	for k := range out {
		im := &Images{N: len(names), C: c, H: size.Y, W: size.X}
		for i, img := range imgs[k] {
			im.Pixels = appendPixels(im.Pixels, img, c)
			im.Names = append(im.Names, strings.TrimSuffix(names[i], filepath.Ext(names[i])))
		}
		out[k] = im
	}
	return out[0], out[1], nil
}

// hasColour says whether any pixel of img has R, G, B not all equal.
func hasColour(img image.Image) bool {
	switch img.(type) {
	case *image.Gray, *image.Gray16:
		return false
	}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if c.R != c.G || c.G != c.B {
				return true
			}
		}
	}
	return false
}

// Number is a float64 that JSON writes as null when it is not finite (JSON has no Inf or
// NaN): the PSNR of identical images is +Inf.
type Number float64

// MarshalJSON writes the number, or null.
func (x Number) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(x))
}
