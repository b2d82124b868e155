package prior

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/schedule"
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

func points(t *testing.T) *GaussianMixture {
	t.Helper()
	m, err := NewGaussianMixture(schedule.Default(),
		[]float64{0.5, 0.3, 0.2},
		[][]float64{{1, 1}, {-1, 0.5}, {0, -2}},
		[][]float64{{0.1, 0.2}, {0.05, 0.05}, {0.3, 0.01}},
		[]int{2})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// predict runs Predict on a float64 batch x [B, shape...] with per-sample steps ts.
func predict(t *testing.T, m *GaussianMixture, x []float64, ts []int32) []float64 {
	t.Helper()
	exec, err := graph.NewExec(backend(t), func(xt, tt *graph.Node) *graph.Node {
		eps, v := m.Predict(xt, tt)
		if v != nil {
			t.Error("Predict returned a variance output")
		}
		return eps
	})
	if err != nil {
		t.Fatal(err)
	}
	dims := append([]int{len(ts)}, m.shape...)
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(x, dims...), tensors.FromFlatDataAndDimensions(ts, len(ts)))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](out)
}

// ε̂ = −√(1−ᾱ_t) ∇ log p_t: the graph's ε̂ against central differences (h = 1e-5) of the host
// log-density; tolerance 1e-6·(1 + |ε̂|). Each sample has its own t, which also checks the
// per-sample gather.
func TestEpsIsScaledScore(t *testing.T) {
	m := points(t)
	x := []float64{0.9, 1.1, -0.5, 0.2, 0.3, -1.5, 2, -3, -1.2, 0.6}
	ts := []int32{0, 50, 500, 999, 10}
	eps := predict(t, m, x, ts)
	const h = 1e-5
	for b, step := range ts {
		p := x[2*b : 2*b+2]
		for j := range 2 {
			plus, minus := []float64{p[0], p[1]}, []float64{p[0], p[1]}
			plus[j] += h
			minus[j] -= h
			score := (m.LogDensity(plus, int(step)) - m.LogDensity(minus, int(step))) / (2 * h)
			want := -math.Sqrt(1-m.sched.AlphaBars[step]) * score
			if got := eps[2*b+j]; math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
				t.Errorf("t=%d x=%v: ε̂[%d] = %.12g, −√(1−ᾱ)·∇log p = %.12g", step, p, j, got, want)
			}
		}
	}
}

// Tweedie: (x_t − √(1−ᾱ) ε̂)/√ᾱ = E[x_0 | x_t] exactly (to 1e-9), including a far-out point
// at t = 0 where the component densities underflow without log-sum-exp, and an image-shaped
// mixture.
func TestTweedieIsPosteriorMean(t *testing.T) {
	img, err := NewGaussianMixture(schedule.Default(), []float64{0.25, 0.75},
		[][]float64{{0.5, -0.5, 0.2, 0.1, 0, 0, 0.3, -0.9}, {-0.4, 0.1, 0.8, -0.2, 0.5, 0.5, -0.6, 0.0}},
		[][]float64{{0.02, 0.1, 0.05, 0.3, 0.01, 0.2, 0.1, 0.1}, {0.1, 0.1, 0.1, 0.1, 0, 0.2, 0.3, 0.05}},
		[]int{2, 2, 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m  *GaussianMixture
		x  []float64
		ts []int32
	}{
		{points(t), []float64{0.9, 1.1, -0.5, 0.2, 50, -50, 0.3, -1.5, 0.1, 0.1}, []int32{0, 50, 0, 999, 300}},
		{img, []float64{0.1, 0.2, 0.3, 0.4, -0.5, 0.6, -0.7, 0.8, 1, -1, 0.5, -0.5, 2, 0, 0.1, -0.1}, []int32{5, 700}},
	} {
		eps := predict(t, c.m, c.x, c.ts)
		d := c.m.dim
		for b, step := range c.ts {
			a := c.m.sched.AlphaBars[step]
			want := c.m.PosteriorMean(c.x[b*d:(b+1)*d], int(step))
			for j := range d {
				got := (c.x[b*d+j] - math.Sqrt(1-a)*eps[b*d+j]) / math.Sqrt(a)
				if math.IsNaN(got) || math.Abs(got-want[j]) > 1e-9 {
					t.Errorf("t=%d sample %d: Tweedie x̂0[%d] = %.15g, E[x0|xt] = %.15g", step, b, j, got, want[j])
				}
			}
		}
	}
}

// For one component, E[x_0 | x_t] is the posterior of the linear Gaussian measurement
// x_t = √ᾱ x_0 + √(1−ᾱ) n: PosteriorMean and GaussianPosterior must agree (1e-12).
func TestPosteriorMeanMatchesGaussianPosterior(t *testing.T) {
	mean, vars := []float64{0.5, -1, 2}, []float64{0.3, 0.01, 2}
	m, err := NewGaussianMixture(schedule.Default(), []float64{1}, [][]float64{mean}, [][]float64{vars}, []int{3})
	if err != nil {
		t.Fatal(err)
	}
	xt := []float64{0.2, -0.4, 1.5}
	for _, step := range []int{0, 100, 999} {
		a := m.sched.AlphaBars[step]
		A := [][]float64{{math.Sqrt(a), 0, 0}, {0, math.Sqrt(a), 0}, {0, 0, math.Sqrt(a)}}
		want, _ := GaussianPosterior(mean, vars, A, xt, math.Sqrt(1-a))
		got := m.PosteriorMean(xt, step)
		for j := range got {
			if math.Abs(got[j]-want[j]) > 1e-12*(1+math.Abs(want[j])) {
				t.Errorf("t=%d: PosteriorMean[%d] = %.15g, GaussianPosterior %.15g", step, j, got[j], want[j])
			}
		}
	}
}

// Predict is differentiable in x_t (DPS backpropagates through it): the gradient of
// Σ c·ε̂ matches central differences of the graph's own output (h = 1e-6, tolerance 1e-6).
func TestPredictGradient(t *testing.T) {
	m := points(t)
	x := []float64{0.9, 1.1, -0.5, 0.2}
	ts := tensors.FromFlatDataAndDimensions([]int32{20, 400}, 2)
	c := []float64{0.3, -1.2, 0.7, 0.5}
	loss := func(xt, tt *graph.Node) *graph.Node {
		eps, _ := m.Predict(xt, tt)
		return graph.ReduceAllSum(graph.Mul(eps, graph.Const(xt.Graph(), [][]float64{{c[0], c[1]}, {c[2], c[3]}})))
	}
	gradExec, err := graph.NewExec(backend(t), func(xt, tt *graph.Node) *graph.Node { return graph.Gradient(loss(xt, tt), xt)[0] })
	if err != nil {
		t.Fatal(err)
	}
	lossExec, err := graph.NewExec(backend(t), loss)
	if err != nil {
		t.Fatal(err)
	}
	grad := tensors.MustCopyFlatData[float64](gradExec.MustExec1(tensors.FromFlatDataAndDimensions(x, 2, 2), ts))
	f := func(x []float64) float64 {
		return tensors.ToScalar[float64](lossExec.MustExec1(tensors.FromFlatDataAndDimensions(x, 2, 2), ts))
	}
	const h = 1e-6
	for i := range x {
		plus, minus := append([]float64(nil), x...), append([]float64(nil), x...)
		plus[i] += h
		minus[i] -= h
		if fd := (f(plus) - f(minus)) / (2 * h); math.Abs(grad[i]-fd) > 1e-6*(1+math.Abs(fd)) {
			t.Errorf("∂/∂x[%d] = %g, finite difference %g", i, grad[i], fd)
		}
	}
}

// float32 inputs and a scalar t work and agree with float64 to float32 precision (1e-5 abs.).
func TestPredictFloat32ScalarT(t *testing.T) {
	m := points(t)
	x := []float64{0.9, 1.1, -0.5, 0.2}
	want := predict(t, m, x, []int32{3, 3})
	exec, err := graph.NewExec(backend(t), func(xt, tt *graph.Node) *graph.Node {
		eps, _ := m.Predict(xt, tt)
		return eps
	})
	if err != nil {
		t.Fatal(err)
	}
	x32 := []float32{0.9, 1.1, -0.5, 0.2}
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(x32, 2, 2), tensors.FromScalar(int32(3)))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range tensors.MustCopyFlatData[float32](out) {
		if math.Abs(float64(v)-want[i]) > 1e-5 {
			t.Errorf("float32 ε̂[%d] = %g, float64 %g", i, v, want[i])
		}
	}
}

// Sample's empirical mean and covariance (n = 200 000) match Mean and Covariance within 5
// standard errors, each estimated from the sample itself: sd_i/√n for means and
// sd((x_i−m_i)(x_j−m_j))/√n for covariances. Sampling is reproducible by seed.
func TestSampleMoments(t *testing.T) {
	m := points(t)
	const n = 200_000
	xs := m.Sample(n, 9)
	if again := m.Sample(3, 9); again[2][1] != xs[2][1] {
		t.Error("Sample is not reproducible for a fixed seed")
	}
	mean, cov := m.Mean(), m.Covariance()
	emp := make([]float64, 2)
	for _, x := range xs {
		emp[0] += x[0] / n
		emp[1] += x[1] / n
	}
	for i := range 2 {
		if se := math.Sqrt(cov[i][i] / n); math.Abs(emp[i]-mean[i]) > 5*se {
			t.Errorf("sample mean[%d] = %g, Mean %g ± %g", i, emp[i], mean[i], 5*se)
		}
	}
	for i := range 2 {
		for j := range 2 {
			var s, s2 float64
			for _, x := range xs {
				p := (x[i] - emp[i]) * (x[j] - emp[j])
				s += p
				s2 += p * p
			}
			c := s / n
			se := math.Sqrt((s2/n - c*c) / n)
			if math.Abs(c-cov[i][j]) > 5*se {
				t.Errorf("sample cov[%d][%d] = %g, Covariance %g ± %g", i, j, c, cov[i][j], 5*se)
			}
		}
	}
	// Mean and Covariance by hand for the first coordinate: Σ w μ = 0.5 − 0.3 = 0.2;
	// Σ w (s² + μ²) − 0.2² = 0.5·1.1 + 0.3·1.05 + 0.2·0.3 − 0.04 = 0.885.
	if math.Abs(mean[0]-0.2) > 1e-15 || math.Abs(cov[0][0]-0.885) > 1e-15 {
		t.Errorf("Mean[0] = %g, Cov[0][0] = %g; want 0.2, 0.885", mean[0], cov[0][0])
	}
}

// GaussianPosterior against 2-D hand computations in information form,
// Σ_post = (P⁻¹ + AᵀA/σ²)⁻¹ by the explicit 2×2 inverse, μ_post = Σ_post (P⁻¹ m + Aᵀy/σ²).
func TestGaussianPosteriorByHand(t *testing.T) {
	// One scalar measurement of x_1 + x_2: Σ_post⁻¹ = [[1.5, 1], [1, 3]], det 3.5.
	mean, cov := GaussianPosterior([]float64{1, -1}, []float64{2, 0.5}, [][]float64{{1, 1}}, []float64{0.5}, 1)
	wantMean := []float64{4.5 / 3.5, -3.25 / 3.5}
	wantCov := [][]float64{{3 / 3.5, -1 / 3.5}, {-1 / 3.5, 1.5 / 3.5}}
	check := func(name string, mean []float64, cov [][]float64, wantMean []float64, wantCov [][]float64) {
		t.Helper()
		for i := range 2 {
			if math.Abs(mean[i]-wantMean[i]) > 1e-13 {
				t.Errorf("%s: mean[%d] = %.15g, want %.15g", name, i, mean[i], wantMean[i])
			}
			for j := range 2 {
				if math.Abs(cov[i][j]-wantCov[i][j]) > 1e-13 {
					t.Errorf("%s: cov[%d][%d] = %.15g, want %.15g", name, i, j, cov[i][j], wantCov[i][j])
				}
			}
		}
	}
	check("scalar measurement", mean, cov, wantMean, wantCov)

	// A full 2×2 operator, σ = 0.5.
	m0, v := []float64{0.3, -0.2}, []float64{0.8, 1.5}
	A := [][]float64{{1, 2}, {-0.5, 1}}
	y := []float64{0.7, -0.1}
	s2 := 0.25
	// Information matrix J = P⁻¹ + AᵀA/σ² and h = P⁻¹ m + Aᵀ y/σ².
	J := [2][2]float64{
		{1/v[0] + (A[0][0]*A[0][0]+A[1][0]*A[1][0])/s2, (A[0][0]*A[0][1] + A[1][0]*A[1][1]) / s2},
		{(A[0][1]*A[0][0] + A[1][1]*A[1][0]) / s2, 1/v[1] + (A[0][1]*A[0][1]+A[1][1]*A[1][1])/s2},
	}
	h := []float64{m0[0]/v[0] + (A[0][0]*y[0]+A[1][0]*y[1])/s2, m0[1]/v[1] + (A[0][1]*y[0]+A[1][1]*y[1])/s2}
	det := J[0][0]*J[1][1] - J[0][1]*J[1][0]
	inv := [][]float64{{J[1][1] / det, -J[0][1] / det}, {-J[1][0] / det, J[0][0] / det}}
	wantMean = []float64{inv[0][0]*h[0] + inv[0][1]*h[1], inv[1][0]*h[0] + inv[1][1]*h[1]}
	mean, cov = GaussianPosterior(m0, v, A, y, 0.5)
	check("2×2 operator", mean, cov, wantMean, inv)
}

func TestBadArgs(t *testing.T) {
	s := schedule.Default()
	sp, _ := s.Respace(10)
	w, mu, v := []float64{0.5, 0.5}, [][]float64{{0, 0}, {1, 1}}, [][]float64{{1, 1}, {1, 1}}
	for _, c := range []struct {
		name  string
		sched *schedule.Schedule
		w     []float64
		mu, v [][]float64
		shape []int
		want  string
	}{
		{"nil schedule", nil, w, mu, v, []int{2}, "schedule"},
		{"respaced", sp, w, mu, v, []int{2}, "respaced"},
		{"sum", s, []float64{0.5, 0.6}, mu, v, []int{2}, "sum to"},
		{"sum just off", s, []float64{0.5, 0.5 + 1e-8}, mu, v, []int{2}, "sum to"},
		{"negative weight", s, []float64{1.5, -0.5}, mu, v, []int{2}, "component 1: weight"},
		{"no components", s, nil, nil, nil, []int{2}, "no components"},
		{"count", s, w, mu[:1], v, []int{2}, "2 weights but 1 means"},
		{"mean length", s, w, [][]float64{{0, 0}, {1}}, v, []int{2}, "component 1: mean has 1 entries, want 2"},
		{"variance length", s, w, mu, [][]float64{{1, 1, 1}, {1, 1}}, []int{2}, "component 0: variances have 3"},
		{"negative variance", s, w, mu, [][]float64{{1, 1}, {1, -0.1}}, []int{2}, "component 1: variance entry 1"},
		{"NaN variance", s, w, mu, [][]float64{{math.NaN(), 1}, {1, 1}}, []int{2}, "component 0: variance entry 0"},
		{"NaN mean", s, w, [][]float64{{0, 0}, {math.Inf(1), 1}}, v, []int{2}, "component 1: mean entry 0"},
		{"shape", s, w, mu, v, []int{2, 0}, "shape"},
		{"empty shape", s, w, mu, v, nil, "shape"},
	} {
		_, err := NewGaussianMixture(c.sched, c.w, c.mu, c.v, c.shape)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.name, err, c.want)
		}
	}
	// Within 1e-9 is accepted; zero weights are allowed.
	if _, err := NewGaussianMixture(s, []float64{0.5, 0.5 + 1e-10}, mu, v, []int{2}); err != nil {
		t.Error(err)
	}
	if m, err := NewGaussianMixture(s, []float64{1, 0}, mu, v, []int{2}); err != nil || m.Mean()[0] != 0 {
		t.Errorf("zero weight: %v, mean %v", err, m.Mean())
	}
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		f()
	}
	panics("A rows", func() { GaussianPosterior([]float64{0, 0}, []float64{1, 1}, [][]float64{{1}}, []float64{1}, 1) })
	panics("y length", func() { GaussianPosterior([]float64{0, 0}, []float64{1, 1}, [][]float64{{1, 1}}, []float64{1, 2}, 1) })
	panics("singular", func() {
		GaussianPosterior([]float64{0, 0}, []float64{1, 1}, [][]float64{{1, 1}, {1, 1}}, []float64{1, 1}, 0)
	})
	panics("step", func() { points(t).PosteriorMean([]float64{0, 0}, 1000) })
	panics("point", func() { points(t).LogDensity([]float64{0}, 0) })
}
