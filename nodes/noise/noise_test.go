package noise

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

var backendOnce = sync.OnceValues(func() (backends.Backend, error) { return xla.New("embedded") })

func backend(t *testing.T) backends.Backend {
	t.Helper()
	b, err := backendOnce()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func full(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func measure(t *testing.T, m Model, ax []float64, seed uint64, dims ...int) []float64 {
	t.Helper()
	y, err := m.Measure(tensors.FromFlatDataAndDimensions(ax, dims...), seed)
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](y)
}

// The noise y − ax has mean 0 and std σ. With n = 200 000 draws, the standard errors are
// σ/√n for the mean and σ/√(2n) for the std; the test allows 5 of them.
func TestGaussianMoments(t *testing.T) {
	const n, sigma = 200_000, 0.05
	m, err := NewGaussian(sigma)
	if err != nil {
		t.Fatal(err)
	}
	y := measure(t, m, full(n, 0.3), 7, 8, n/8)
	var sum, sq float64
	for _, v := range y {
		sum += v - 0.3
		sq += (v - 0.3) * (v - 0.3)
	}
	mean := sum / n
	std := math.Sqrt(sq/n - mean*mean)
	if math.Abs(mean) > 5*sigma/math.Sqrt(n) {
		t.Errorf("noise mean %g, want 0 ± %g", mean, 5*sigma/math.Sqrt(n))
	}
	if math.Abs(std-sigma) > 5*sigma/math.Sqrt(2*n) {
		t.Errorf("noise std %g, want %g ± %g", std, sigma, 5*sigma/math.Sqrt(2*n))
	}
}

func TestSeeding(t *testing.T) {
	g, _ := NewGaussian(0.05)
	p, _ := NewPoisson(1)
	ax := make([]float64, 1000)
	for i := range ax {
		ax[i] = math.Sin(float64(i))
	}
	for _, m := range []Model{g, p} {
		bytesOf := func(seed uint64) []byte {
			var buf bytes.Buffer
			_ = binary.Write(&buf, binary.LittleEndian, measure(t, m, ax, seed, 10, 100))
			return buf.Bytes()
		}
		if !bytes.Equal(bytesOf(42), bytesOf(42)) {
			t.Errorf("%s: same seed gave different bytes", m.Name())
		}
		if bytes.Equal(bytesOf(42), bytesOf(43)) {
			t.Errorf("%s: seeds 42 and 43 gave the same measurement", m.Name())
		}
	}
	// float32 measurements are the float64 ones rounded: same draws for either dtype.
	ax32 := make([]float32, len(ax))
	for i, v := range ax {
		ax32[i] = float32(v)
	}
	y32, err := g.Measure(tensors.FromFlatDataAndDimensions(ax32, 10, 100), 5)
	if err != nil {
		t.Fatal(err)
	}
	y64 := measure(t, g, ax, 5, 10, 100)
	for i, v := range tensors.MustCopyFlatData[float32](y32) {
		if math.Abs(float64(v)-y64[i]) > 1e-6 {
			t.Fatalf("float32 y[%d] = %g, float64 %g", i, v, y64[i])
		}
	}
}

// Counts k = (y+1)/2·255·λ must be integers with mean and variance 255·λ·I. With n draws the
// standard error of the mean is √(m/n) and that of the sample variance √((m + 2m²)/n)
// (Poisson fourth central moment m + 3m²); the test allows 5 of them. P(k = 0) = e^{−m} at a
// small mean checks the distribution's shape (5 binomial standard errors), not just moments.
func TestPoissonCounts(t *testing.T) {
	const n = 100_000
	for _, c := range []struct{ rate, intensity float64 }{
		{1, 0.01},  // m = 2.55: inversion branch
		{1, 0.2},   // m = 51: PTRS branch
		{1, 0.5},   // m = 127.5
		{0.1, 0.3}, // m = 7.65
	} {
		m, err := NewPoisson(c.rate)
		if err != nil {
			t.Fatal(err)
		}
		mean := 255 * c.rate * c.intensity
		y := measure(t, m, full(n, 2*c.intensity-1), 11, n)
		var sum, sq float64
		zeros := 0
		for _, v := range y {
			kf := (v + 1) / 2 * 255 * c.rate
			k := math.Round(kf)
			if math.Abs(kf-k) > 1e-9 {
				t.Fatalf("rate %g: y = %g is not an integer count (%g)", c.rate, v, kf)
			}
			sum += k
			sq += k * k
			if k == 0 {
				zeros++
			}
		}
		gotMean := sum / n
		gotVar := sq/n - gotMean*gotMean
		if tol := 5 * math.Sqrt(mean/n); math.Abs(gotMean-mean) > tol {
			t.Errorf("rate %g, I %g: mean count %g, want %g ± %g", c.rate, c.intensity, gotMean, mean, tol)
		}
		if tol := 5 * math.Sqrt((mean+2*mean*mean)/n); math.Abs(gotVar-mean) > tol {
			t.Errorf("rate %g, I %g: count variance %g, want %g ± %g", c.rate, c.intensity, gotVar, mean, tol)
		}
		p0 := math.Exp(-mean)
		if tol := 5 * math.Sqrt(p0*(1-p0)/n); math.Abs(float64(zeros)/n-p0) > tol {
			t.Errorf("rate %g, I %g: P(k=0) = %g, want %g ± %g", c.rate, c.intensity, float64(zeros)/n, p0, tol)
		}
	}
}

// Out-of-range ax is clipped to intensity [0, 1], and y to [-1, 1].
func TestPoissonClipping(t *testing.T) {
	m, _ := NewPoisson(1)
	y := measure(t, m, []float64{-3, -1, 1, 5}, 3, 4)
	if y[0] != -1 || y[1] != -1 {
		t.Errorf("dark pixels: y = %v, want -1", y[:2])
	}
	for _, v := range y {
		if v < -1 || v > 1 {
			t.Errorf("y = %g outside [-1, 1]", v)
		}
	}
}

func distance(t *testing.T, m Model, y, ax []float64, dims ...int) []float64 {
	t.Helper()
	exec, err := graph.NewExec(backend(t), m.Distance)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(y, dims...), tensors.FromFlatDataAndDimensions(ax, dims...))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](out)
}

func TestDistanceValues(t *testing.T) {
	g, _ := NewGaussian(0.05)
	// Sample 0 residual (0.3, −0.4, 0, 0) → 0.5; sample 1 (1, 2, 2, 0) → 3.
	y := []float64{0.3, -0.4, 0.1, 0.2, 1, 2, 2, 0}
	ax := []float64{0, 0, 0.1, 0.2, 0, 0, 0, 0}
	got := distance(t, g, y, ax, 2, 2, 2)
	if math.Abs(got[0]-0.5) > 1e-15 || math.Abs(got[1]-3) > 1e-15 {
		t.Errorf("Gaussian distance %v, want [0.5 3]", got)
	}
	// Rank-1 batch: each sample is a scalar, |y − ax|.
	if got := distance(t, g, []float64{1, -2}, []float64{0.25, 0}, 2); math.Abs(got[0]-0.75) > 1e-15 || math.Abs(got[1]-2) > 1e-15 {
		t.Errorf("rank-1 Gaussian distance %v, want [0.75 2]", got)
	}

	p, _ := NewPoisson(1)
	// y = 0 → ŷ = 0.5, Λ = 1; y = 0.5 → ŷ = 0.75, Λ = 2/3; y = −1 → ŷ floored at 1/255,
	// Λ = 127.5; y = 1 → Λ = 0.5.
	y = []float64{0, 0.5, -1, 1}
	ax = []float64{0.2, 0.2, -0.9, 0.6}
	want := math.Sqrt(0.04*1 + 0.09*2.0/3 + 0.01*127.5 + 0.16*0.5)
	if got := distance(t, p, y, ax, 1, 4); math.Abs(got[0]-want) > 1e-14 {
		t.Errorf("Poisson distance %v, want %g", got, want)
	}
	// The floor is one count: at rate 2, Λ = 255·2/2 for dark pixels.
	p2, _ := NewPoisson(2)
	if got := distance(t, p2, []float64{-1}, []float64{-0.9}, 1, 1); math.Abs(got[0]-math.Sqrt(0.01*255)) > 1e-14 {
		t.Errorf("Poisson rate-2 dark distance %v, want %g", got, math.Sqrt(0.01*255))
	}
}

// The gradient of Σ_b Distance_b w.r.t. ax matches central differences (h = 1e-6, float64,
// tolerance 1e-6 absolute + relative); at y = ax (sample 1) it is exactly 0, not NaN.
func TestDistanceGradient(t *testing.T) {
	g, _ := NewGaussian(0.05)
	p, _ := NewPoisson(1)
	dims := []int{2, 3, 2}
	y := []float64{0.1, -0.5, 0.9, -1, 0.3, 0.7 /* sample 1 = ax */, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7}
	ax := []float64{0.4, -0.2, 0.1, -0.8, 0.35, 0.0, 0.2, -0.3, 0.4, 0.5, -0.6, 0.7}
	for _, m := range []Model{g, p} {
		exec, err := graph.NewExec(backend(t), func(y, ax *graph.Node) *graph.Node {
			return graph.Gradient(graph.ReduceAllSum(m.Distance(y, ax)), ax)[0]
		})
		if err != nil {
			t.Fatal(err)
		}
		gt, err := exec.Exec1(tensors.FromFlatDataAndDimensions(y, dims...), tensors.FromFlatDataAndDimensions(ax, dims...))
		if err != nil {
			t.Fatal(err)
		}
		grad := tensors.MustCopyFlatData[float64](gt)
		dist, err := graph.NewExec(backend(t), m.Distance)
		if err != nil {
			t.Fatal(err)
		}
		total := func(ax []float64) float64 {
			out := dist.MustExec1(tensors.FromFlatDataAndDimensions(y, dims...), tensors.FromFlatDataAndDimensions(ax, dims...))
			d := tensors.MustCopyFlatData[float64](out)
			return d[0] + d[1]
		}
		const h = 1e-6
		for i := range 6 {
			plus, minus := append([]float64(nil), ax...), append([]float64(nil), ax...)
			plus[i] += h
			minus[i] -= h
			fd := (total(plus) - total(minus)) / (2 * h)
			if math.Abs(grad[i]-fd) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%s: ∂/∂ax[%d] = %g, finite difference %g", m.Name(), i, grad[i], fd)
			}
		}
		for i := 6; i < 12; i++ {
			if grad[i] != 0 {
				t.Errorf("%s: gradient at y = ax is %g, want 0", m.Name(), grad[i])
			}
		}
	}
}

func TestBadArgs(t *testing.T) {
	for _, s := range []float64{0, -0.1, math.NaN(), math.Inf(1)} {
		if _, err := NewGaussian(s); err == nil || !strings.Contains(err.Error(), "sigma") {
			t.Errorf("NewGaussian(%g) error %v, want it to name sigma", s, err)
		}
	}
	for _, r := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := NewPoisson(r); err == nil || !strings.Contains(err.Error(), "rate") {
			t.Errorf("NewPoisson(%g) error %v, want it to name rate", r, err)
		}
	}
	g, _ := NewGaussian(0.05)
	if _, err := g.Measure(tensors.FromFlatDataAndDimensions([]int32{1, 2}, 2), 1); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("int32 measurement: error %v, want a dtype error", err)
	}
	if _, err := g.Measure(nil, 1); err == nil {
		t.Error("nil measurement: no error")
	}
}
