package noise

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/stat/distuv"
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

// poissonWant is each form's distance computed independently in float64 loops; frozen is the
// A(x̂0) the model form takes its weights from (its stop-gradient).
func poissonWant(form PoissonForm, rate, floor float64, y, ax, frozen []float64, batch int) []float64 {
	c := 255 * rate
	eps := floor / c
	n := len(y) / batch
	out := make([]float64, batch)
	for b := range batch {
		var s, inv float64
		for i := b * n; i < (b+1)*n; i++ {
			r := y[i] - ax[i]
			switch form {
			case FormPaper:
				s += r * r / (2 * math.Max((y[i]+1)/2, eps))
			case FormReference:
				s += r * r
				inv += 1 / math.Max(math.Abs(y[i]), eps)
			case FormPlain:
				s += r * r
			case FormModel:
				s += r * r / (2 * math.Max((frozen[i]+1)/2, eps))
			case FormNLL:
				k := math.Max(c*(y[i]+1)/2, 0)
				mu := c * (ax[i] + 1) / 2
				logMu := math.Log(mu)
				if mu < floor {
					logMu = math.Log(floor) + (mu-floor)/floor
				}
				kLogK := 0.0
				if k > 0 {
					kLogK = k * math.Log(k)
				}
				s += kLogK - k*logMu - k + mu
			}
		}
		switch form {
		case FormReference:
			out[b] = math.Sqrt(s) * inv / float64(n)
		case FormNLL:
			out[b] = math.Sqrt(math.Max(4*s/c, 0))
		default:
			out[b] = math.Sqrt(s)
		}
	}
	return out
}

// poissonPair is a Poisson measurement of a mostly dark image (many zero counts, y = −1) and
// an estimate a in [-1, 1] that reaches −1 and 1 exactly; 2 samples of 3×4.
func poissonPair(t *testing.T, rate float64) (y, ax []float64, dims []int) {
	t.Helper()
	dims = []int{2, 3, 4}
	clean := []float64{-1, -1, -1, -0.9, -1, 0.6, 0.9, -1, -1, -1, 0.2, -1,
		-1, -0.99, -1, 1, -1, -1, -0.3, 0.95, -1, -1, -1, -1}
	m, _ := NewPoisson(rate)
	y = measure(t, m, clean, 5, dims...)
	ax = []float64{-1, -0.8, -0.95, -0.7, -1, 0.3, 1, -0.6, -0.97, -1, 0.5, -0.4,
		-0.9, -1, -0.5, 0.8, -0.96, -0.2, -0.1, 0.7, 1, -1, -0.85, -0.3}
	zeros := 0
	for _, v := range y {
		if v == -1 {
			zeros++
		}
	}
	if zeros < 12 {
		t.Fatalf("test measurement has %d zero counts, want many", zeros)
	}
	return y, ax, dims
}

// Every form against its closed form, for two rates and floors, on float64 tensors.
func TestPoissonFormValues(t *testing.T) {
	for _, c := range []struct{ rate, floor float64 }{{1, 0}, {1, 2.5}, {0.5, 0.3}} {
		y, ax, dims := poissonPair(t, c.rate)
		// Arbitrary y in [-1, 1], not counts: mid-grey y = 0 and |y| below the floor.
		y[3], y[4], y[5] = 0, 1e-4, -0.5
		for _, form := range PoissonForms {
			m, err := NewPoissonForm(c.rate, form, c.floor)
			if err != nil {
				t.Fatal(err)
			}
			floor := c.floor
			if floor == 0 {
				floor = DefaultFloor
			}
			want := poissonWant(form, c.rate, floor, y, ax, ax, dims[0])
			got := distance(t, m, y, ax, dims...)
			for b := range want {
				if math.Abs(got[b]-want[b]) > 1e-12*(1+want[b]) {
					t.Errorf("%s (rate %g, floor %g): sample %d distance %.15g, want %.15g", form, c.rate, c.floor, b, got[b], want[b])
				}
			}
		}
	}
}

// Where μ ≥ floor, nll is √(2D/(255·rate)) with D/2 = Σ log P(k; k) − log P(k; μ), the
// Poisson negative log-likelihood less its minimum (gonum's Poisson LogProb).
func TestPoissonNLLIsTheLikelihood(t *testing.T) {
	const rate = 1
	m, _ := NewPoissonForm(rate, FormNLL, 0)
	y, ax, dims := poissonPair(t, rate)
	for i := range ax {
		ax[i] = math.Max(ax[i], -0.9) // μ ≥ 12.75 counts
	}
	got := distance(t, m, y, ax, dims...)
	n := len(y) / dims[0]
	for b := range dims[0] {
		var half float64
		for i := b * n; i < (b+1)*n; i++ {
			k := math.Round(255 * rate * (y[i] + 1) / 2)
			mu := 255 * rate * (ax[i] + 1) / 2
			best := 0.0 // log P(0; 0) = 0
			if k > 0 {
				best = distuv.Poisson{Lambda: k}.LogProb(k)
			}
			half += best - distuv.Poisson{Lambda: mu}.LogProb(k)
		}
		want := math.Sqrt(2 * 2 * half / (255 * rate))
		if math.Abs(got[b]-want) > 1e-9*want {
			t.Errorf("sample %d: nll %.12g, want %.12g from the log-likelihood", b, got[b], want)
		}
	}
}

// The paper form with the default floor is bit for bit the formula used before the forms,
// in float32 and float64, for NewPoisson and NewPoissonForm alike.
func TestPoissonPaperBitIdentical(t *testing.T) {
	old := func(rate float64) func(y, ax *graph.Node) *graph.Node {
		return func(y, ax *graph.Node) *graph.Node {
			intensity := graph.MulScalar(graph.AddScalar(y, 1), 0.5)
			weight := graph.Reciprocal(graph.MulScalar(graph.MaxScalar(intensity, 1/(255*rate)), 2))
			return safeSqrt(sumPerSample(graph.Mul(graph.Square(graph.Sub(y, ax)), weight)))
		}
	}
	for _, rate := range []float64{1, 0.7, 3} {
		y64, ax64, dims := poissonPair(t, rate)
		y32, ax32 := make([]float32, len(y64)), make([]float32, len(ax64))
		for i := range y64 {
			y32[i], ax32[i] = float32(y64[i]), float32(ax64[i])
		}
		a, _ := NewPoisson(rate)
		b, _ := NewPoissonForm(rate, FormPaper, 0)
		c, _ := NewPoissonForm(rate, FormPaper, 1)
		for _, in := range [][2]*tensors.Tensor{
			{tensors.FromFlatDataAndDimensions(y64, dims...), tensors.FromFlatDataAndDimensions(ax64, dims...)},
			{tensors.FromFlatDataAndDimensions(y32, dims...), tensors.FromFlatDataAndDimensions(ax32, dims...)},
		} {
			bits := func(f func(y, ax *graph.Node) *graph.Node) []byte {
				exec, err := graph.NewExec(backend(t), f)
				if err != nil {
					t.Fatal(err)
				}
				out := exec.MustExec1(in[0], in[1])
				var buf bytes.Buffer
				out.ConstBytes(func(data []byte) { buf.Write(data) })
				return buf.Bytes()
			}
			want := bits(old(rate))
			for _, m := range []Model{a, b, c} {
				if got := bits(m.Distance); !bytes.Equal(got, want) {
					t.Errorf("rate %g, %s: paper distance bytes %x, old formula %x", rate, in[0].DType(), got, want)
				}
			}
		}
	}
}

// Each form's gradient w.r.t. a is finite where y has many zero counts and a reaches −1 and
// 1, and matches float64 central differences (h = 1e-6; tolerance 1e-6 absolute + relative)
// of the distance — for model, of its closed form with the weights frozen at a (its
// stop-gradient). Where y = a = −1 everywhere the gradient is 0, not NaN.
func TestPoissonFormGradients(t *testing.T) {
	y, ax, dims := poissonPair(t, 1)
	for _, form := range PoissonForms {
		m, _ := NewPoissonForm(1, form, 0)
		gradExec, err := graph.NewExec(backend(t), func(y, ax *graph.Node) *graph.Node {
			return graph.Gradient(graph.ReduceAllSum(m.Distance(y, ax)), ax)[0]
		})
		if err != nil {
			t.Fatal(err)
		}
		grad := func(y, ax []float64) []float64 {
			out := gradExec.MustExec1(tensors.FromFlatDataAndDimensions(y, dims...), tensors.FromFlatDataAndDimensions(ax, dims...))
			return tensors.MustCopyFlatData[float64](out)
		}
		g := grad(y, ax)
		total := func(a []float64) float64 {
			var s float64
			if form == FormModel {
				for _, d := range poissonWant(form, 1, DefaultFloor, y, a, ax, dims[0]) {
					s += d
				}
				return s
			}
			for _, d := range distance(t, m, y, a, dims...) {
				s += d
			}
			return s
		}
		const h = 1e-6
		for i := range ax {
			if math.IsNaN(g[i]) || math.IsInf(g[i], 0) {
				t.Errorf("%s: ∂/∂a[%d] = %g at y = %g, a = %g", form, i, g[i], y[i], ax[i])
				continue
			}
			plus, minus := slices.Clone(ax), slices.Clone(ax)
			plus[i] += h
			minus[i] -= h
			fd := (total(plus) - total(minus)) / (2 * h)
			if math.Abs(g[i]-fd) > 1e-6*(1+math.Abs(fd)) {
				t.Errorf("%s: ∂/∂a[%d] = %g, finite difference %g (y = %g, a = %g)", form, i, g[i], fd, y[i], ax[i])
			}
		}
		dark := full(len(y), -1)
		for i, v := range grad(dark, dark) {
			if v != 0 {
				t.Errorf("%s: gradient at y = a = −1 is %g at %d, want 0", form, v, i)
				break
			}
		}
	}
}

func TestPoissonFormArgs(t *testing.T) {
	m, err := NewPoissonForm(2, FormNLL, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := m.(*Poisson)
	if p.Name() != "poisson" || p.Form() != FormNLL || p.Floor() != DefaultFloor || p.Rate() != 2 {
		t.Errorf("got name %q form %q floor %g rate %g", p.Name(), p.Form(), p.Floor(), p.Rate())
	}
	if m, _ := NewPoisson(1); m.(*Poisson).Form() != FormPaper {
		t.Errorf("NewPoisson form %q, want paper", m.(*Poisson).Form())
	}
	_, err = NewPoissonForm(1, "gauss", 0)
	if err == nil {
		t.Fatal("unknown form: no error")
	}
	for _, f := range append(PoissonForms, "gauss") {
		if !strings.Contains(err.Error(), string(f)) {
			t.Errorf("unknown-form error %q does not name %q", err, f)
		}
	}
	for _, f := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := NewPoissonForm(1, FormPaper, f); err == nil || !strings.Contains(err.Error(), "floor") {
			t.Errorf("floor %g: error %v, want it to name floor", f, err)
		}
	}
	if _, err := NewPoissonForm(0, FormPaper, 1); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("rate 0: error %v, want it to name rate", err)
	}
}
