package metrics

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func randomImage(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*rng.Float64() - 1)
	}
	return v
}

func TestPSNRConstantOffset(t *testing.T) {
	// Multiples of 2⁻¹⁰ in [-0.875, 0.875]: adding d = 0.125 is exact in float32, so the
	// MSE is d² exactly.
	rng := rand.New(rand.NewPCG(1, 2))
	truth, est := make([]float32, 3*8*8), make([]float32, 3*8*8)
	const d = 0.125
	for i := range truth {
		truth[i] = float32(rng.IntN(1793)-896) / 1024
		est[i] = truth[i] + d
	}
	want := 10 * math.Log10(4/(d*d)) // 20·log10(2/0.125) = 24.08 dB
	if got := PSNR(est, truth, 2); math.Abs(got-want) > 1e-9 {
		t.Fatalf("PSNR = %v, want %v", got, want)
	}
	if got := PSNR(truth, truth, 2); !math.IsInf(got, 1) {
		t.Fatalf("PSNR of identical images = %v, want +Inf", got)
	}
	if got := PSNR(truth[:3], truth, 2); !math.IsNaN(got) {
		t.Fatalf("PSNR of mismatched lengths = %v, want NaN", got)
	}
}

func TestSSIMClosedForms(t *testing.T) {
	truncate, sigma := ssimTruncate, ssimSigma
	if r := int(truncate*sigma + 0.5); r != ssimRadius {
		t.Fatalf("radius int(3.5·1.5+0.5) = %d, constant says %d", r, ssimRadius)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const c, h, w = 3, 16, 13
	x, y := randomImage(rng, c*h*w), randomImage(rng, c*h*w)
	same, err := SSIM(x, x, c, h, w, 2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(same-1) > 1e-12 {
		t.Fatalf("SSIM(x, x) = %v, want 1", same)
	}
	a, err := SSIM(x, y, c, h, w, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SSIM(y, x, c, h, w, 2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(a-b) > 1e-12 || a >= 0.5 {
		t.Fatalf("SSIM(x, y) = %v, SSIM(y, x) = %v: want equal and small for independent noise", a, b)
	}
	// A constant image against itself shifted: means differ, variances vanish, so SSIM is
	// the luminance term (2·μx·μy + C1)/(μx² + μy² + C1) everywhere.
	u, v := make([]float32, h*w), make([]float32, h*w)
	for i := range u {
		u[i], v[i] = 0.5, -0.25
	}
	got, err := SSIM(u, v, 1, h, w, 2)
	if err != nil {
		t.Fatal(err)
	}
	c1 := (0.01 * 2) * (0.01 * 2)
	want := (2*0.5*-0.25 + c1) / (0.25 + 0.0625 + c1)
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("SSIM of constants = %v, want %v", got, want)
	}
}

func TestSSIMErrors(t *testing.T) {
	img := make([]float32, 3*12*12)
	for _, c := range []struct {
		name       string
		est, truth []float32
		c, h, w    int
		want       string
	}{
		{"size mismatch", img, img[:10], 3, 12, 12, "needs 432 values"},
		{"shape mismatch", img, img, 1, 12, 12, "needs 144 values"},
		{"too small", img[:10*12], img[:10*12], 1, 10, 12, "smaller than the 11×11"},
		{"zero dims", nil, nil, 0, 12, 12, "not positive"},
	} {
		_, err := SSIM(c.est, c.truth, c.c, c.h, c.w, 2)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	if _, err := SSIM(img, img, 3, 12, 12, 0); err == nil {
		t.Error("data range 0 was accepted")
	}
}

func TestReflectIsHalfSampleSymmetric(t *testing.T) {
	// n = 4: … c d | d c b a | a b c d | d c b a | a b …
	want := map[int]int{-5: 3, -4: 3, -3: 2, -2: 1, -1: 0, 0: 0, 3: 3, 4: 3, 5: 2, 7: 0, 8: 0, 9: 1}
	for i, w := range want {
		if got := reflect(i, 4); got != w {
			t.Errorf("reflect(%d, 4) = %d, want %d", i, got, w)
		}
	}
}

func TestResidualAndMeanStd(t *testing.T) {
	if got := Residual([]float32{1, 2, 3}, []float32{1, -1, -1}); math.Abs(got-5) > 1e-12 {
		t.Fatalf("Residual = %v, want 5", got)
	}
	if got := Residual([]float32{1}, nil); !math.IsNaN(got) {
		t.Fatalf("Residual of mismatched lengths = %v, want NaN", got)
	}
	m, s := MeanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || s != 2 {
		t.Fatalf("MeanStd = %v, %v; want 5, 2 (population std)", m, s)
	}
	if m, s := MeanStd(nil); !math.IsNaN(m) || !math.IsNaN(s) {
		t.Fatalf("MeanStd(nil) = %v, %v; want NaN, NaN", m, s)
	}
}

// skimageScript reads little-endian float32 images, converts them to float64 (so skimage
// computes in float64, like this package) and prints SSIM and PSNR as JSON. The float32
// results are printed too, for information.
const skimageScript = `
import json, sys
import numpy as np
from skimage.metrics import structural_similarity, peak_signal_noise_ratio
c, h, w = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
est32 = np.fromfile(sys.argv[1], dtype="<f4").reshape(c, h, w)
truth32 = np.fromfile(sys.argv[2], dtype="<f4").reshape(c, h, w)
def ssim(truth, est):
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0)
    if c == 1:
        return float(structural_similarity(truth[0], est[0], **kw))
    return float(structural_similarity(truth, est, channel_axis=0, **kw))
est, truth = est32.astype(np.float64), truth32.astype(np.float64)
print(json.dumps({
    "ssim": ssim(truth, est),
    "psnr": float(peak_signal_noise_ratio(truth, est, data_range=2.0)),
    "ssim32": ssim(truth32, est32),
}))
`

func TestAgainstScikitImage(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import skimage.metrics, scipy.ndimage").CombinedOutput(); err != nil {
		t.Fatalf("this test compares against scikit-image, which is missing (%v: %s); "+
			"install it with: apt-get install python3-skimage", err, bytes.TrimSpace(out))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	smooth := func(c, h, w int, phase float64) []float32 {
		v := make([]float32, c*h*w)
		for ch := range c {
			for i := range h {
				for j := range w {
					v[(ch*h+i)*w+j] = float32(0.8 * math.Sin(0.3*float64(i)+0.2*float64(j)+phase+float64(ch)) *
						math.Cos(0.17*float64(j*(ch+1))))
				}
			}
		}
		return v
	}
	noisy := func(truth []float32, sd float64) []float32 {
		v := make([]float32, len(truth))
		for i, x := range truth {
			v[i] = float32(float64(x) + sd*rng.NormFloat64())
		}
		return v
	}
	type pair struct {
		name       string
		c, h, w    int
		est, truth []float32
	}
	var pairs []pair
	for _, s := range [][3]int{{1, 32, 32}, {3, 24, 20}} {
		c, h, w := s[0], s[1], s[2]
		n := c * h * w
		a := randomImage(rng, n)
		sm := smooth(c, h, w, 0)
		pairs = append(pairs,
			pair{"random", c, h, w, randomImage(rng, n), a},
			pair{"random+noise", c, h, w, noisy(a, 0.2), a},
			pair{"smooth", c, h, w, smooth(c, h, w, 0.4), sm},
			pair{"smooth+noise", c, h, w, noisy(sm, 0.05), sm},
		)
	}
	dir := t.TempDir()
	write := func(name string, v []float32) string {
		path := filepath.Join(dir, name)
		var buf bytes.Buffer
		if err := binary.Write(&buf, binary.LittleEndian, v); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var maxSSIM, maxPSNR float64
	for k, p := range pairs {
		estPath := write(fmt.Sprintf("%d-est.f32", k), p.est)
		truthPath := write(fmt.Sprintf("%d-truth.f32", k), p.truth)
		cmd := exec.Command(python, "-c", skimageScript, estPath, truthPath,
			fmt.Sprint(p.c), fmt.Sprint(p.h), fmt.Sprint(p.w))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: python: %v\n%s", p.name, err, stderr.String())
		}
		var ref struct{ SSIM, PSNR, SSIM32 float64 }
		if err := json.Unmarshal(out, &ref); err != nil {
			t.Fatalf("%s: %v in %q", p.name, err, out)
		}
		ssim, err := SSIM(p.est, p.truth, p.c, p.h, p.w, 2)
		if err != nil {
			t.Fatal(err)
		}
		psnr := PSNR(p.est, p.truth, 2)
		dS, dP := math.Abs(ssim-ref.SSIM), math.Abs(psnr-ref.PSNR)
		maxSSIM, maxPSNR = math.Max(maxSSIM, dS), math.Max(maxPSNR, dP)
		t.Logf("%d %-13s c=%d %dx%d: SSIM %.12f (skimage %.12f, |Δ| %.1e; float32 skimage %.9f)  PSNR %.9f (skimage %.9f, |Δ| %.1e)",
			k, p.name, p.c, p.h, p.w, ssim, ref.SSIM, dS, ref.SSIM32, psnr, ref.PSNR, dP)
		if dS > 1e-6*math.Abs(ref.SSIM) {
			t.Errorf("%s c=%d: SSIM %v, skimage %v", p.name, p.c, ssim, ref.SSIM)
		}
		if dP > 1e-6*math.Abs(ref.PSNR) {
			t.Errorf("%s c=%d: PSNR %v, skimage %v", p.name, p.c, psnr, ref.PSNR)
		}
	}
	t.Logf("max |Δ| against skimage: SSIM %.2e, PSNR %.2e", maxSSIM, maxPSNR)
}
