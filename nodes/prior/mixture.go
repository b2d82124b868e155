package prior

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// GaussianMixture is the prior p_0 = Σ_k w_k N(μ_k, diag(s_k²)) over the flattened
// non-batch dimensions of a fixed shape. Under the forward process its marginal is
//
//	p_t(x) = Σ_k w_k N(x; √ᾱ_t μ_k, ᾱ_t diag(s_k²) + (1−ᾱ_t) I),
//
// and it predicts ε exactly: ε̂ = −√(1−ᾱ_t) ∇ log p_t(x_t).
type GaussianMixture struct {
	sched     *schedule.Schedule
	shape     []int
	dim       int
	weights   []float64   // components with w_k > 0 only, renormalised to sum to 1
	means     [][]float64 // [K][dim]
	variances [][]float64 // [K][dim]
}

var _ Prior = (*GaussianMixture)(nil)

// NewGaussianMixture builds the mixture of len(weights) components with the given means and
// diagonal variances s_k² (each of prod(shape) entries, row-major over shape; shape excludes
// the batch axis, e.g. [2] for points, [C, H, W] for images). Weights must be ≥ 0 and sum to
// 1 within 1e-9; variances must be ≥ 0. sched must be a base schedule (not respaced): Predict's
// t indexes it directly, as a network's does.
func NewGaussianMixture(sched *schedule.Schedule, weights []float64, means [][]float64, variances [][]float64, shape []int) (*GaussianMixture, error) {
	if sched == nil || sched.Len() == 0 {
		return nil, fmt.Errorf("prior: nil or empty schedule")
	}
	for i, ts := range sched.Timesteps {
		if ts != i {
			return nil, fmt.Errorf("prior: the schedule is respaced (step %d maps to base step %d); pass the base schedule, since t indexes base steps", i, ts)
		}
	}
	if len(shape) == 0 {
		return nil, fmt.Errorf("prior: empty shape; give the non-batch dimensions, e.g. [2] or [C, H, W]")
	}
	dim := 1
	for _, d := range shape {
		if d < 1 {
			return nil, fmt.Errorf("prior: shape %v has a dimension < 1", shape)
		}
		dim *= d
	}
	k := len(weights)
	if k == 0 {
		return nil, fmt.Errorf("prior: no components (empty weights)")
	}
	if len(means) != k || len(variances) != k {
		return nil, fmt.Errorf("prior: %d weights but %d means and %d variances; need one of each per component", k, len(means), len(variances))
	}
	sum := 0.0
	for i, w := range weights {
		if !(w >= 0) || math.IsInf(w, 1) {
			return nil, fmt.Errorf("prior: component %d: weight %g must be a finite number ≥ 0", i, w)
		}
		sum += w
	}
	if math.Abs(sum-1) > 1e-9 {
		return nil, fmt.Errorf("prior: weights sum to %.17g, want 1 within 1e-9", sum)
	}
	m := &GaussianMixture{sched: sched, shape: slices.Clone(shape), dim: dim}
	for i := range k {
		if len(means[i]) != dim {
			return nil, fmt.Errorf("prior: component %d: mean has %d entries, want %d (shape %v)", i, len(means[i]), dim, shape)
		}
		if len(variances[i]) != dim {
			return nil, fmt.Errorf("prior: component %d: variances have %d entries, want %d (shape %v)", i, len(variances[i]), dim, shape)
		}
		for j, mu := range means[i] {
			if math.IsNaN(mu) || math.IsInf(mu, 0) {
				return nil, fmt.Errorf("prior: component %d: mean entry %d is %g, want a finite number", i, j, mu)
			}
		}
		for j, v := range variances[i] {
			if !(v >= 0) || math.IsInf(v, 1) {
				return nil, fmt.Errorf("prior: component %d: variance entry %d is %g, want a finite number ≥ 0", i, j, v)
			}
		}
		// Zero-weight components would put log 0 = −Inf into the graph; they contribute
		// nothing, so drop them.
		if weights[i] > 0 {
			m.weights = append(m.weights, weights[i]/sum)
			m.means = append(m.means, slices.Clone(means[i]))
			m.variances = append(m.variances, slices.Clone(variances[i]))
		}
	}
	return m, nil
}

// Shape is the per-sample shape (without the batch axis).
func (m *GaussianMixture) Shape() []int { return slices.Clone(m.shape) }

// Predict builds the exact ε̂(x_t, t) for x_t [B, shape...] (float32 or float64) and t [B]
// (or a scalar, shared by the batch) of integer base-step indices; v is nil. ᾱ_t and
// derived factors are gathered from float64-precomputed constant tables, so 1 − ᾱ_t is not
// lost to float32 cancellation near t = 0. Out-of-range t is clamped by Gather. The
// responsibilities are a softmax over components of log w_k + log N_k (max-subtracted),
// so far-out points do not underflow to 0/0.
func (m *GaussianMixture) Predict(xt, t *graph.Node) (eps, v *graph.Node) {
	g, dt := xt.Graph(), xt.DType()
	if xt.Rank() != len(m.shape)+1 || !slices.Equal(xt.Shape().Dimensions[1:], m.shape) {
		panic(fmt.Errorf("prior: x_t shape %s does not match the mixture's [B, %v]", xt.Shape(), m.shape))
	}
	b, k, d := xt.Shape().Dimensions[0], len(m.weights), m.dim
	if t.DType() != dtypes.Int32 {
		t = graph.ConvertDType(t, dtypes.Int32)
	}
	if t.IsScalar() {
		t = graph.BroadcastToDims(t, b)
	}
	idx := graph.Reshape(t, b, 1)
	n := m.sched.Len()
	ab, sab, omab, somab := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, a := range m.sched.AlphaBars {
		ab[i], sab[i], omab[i], somab[i] = a, math.Sqrt(a), 1-a, math.Sqrt(1-a)
	}
	gather := func(table []float64) *graph.Node {
		return graph.Reshape(graph.Gather(graph.ConstAsDType(g, dt, table), idx), b, 1, 1)
	}
	a, sa, oma, soma := gather(ab), gather(sab), gather(omab), gather(somab)

	flat := func(rows [][]float64) *graph.Node {
		return graph.Reshape(graph.ConstAsDType(g, dt, slices.Concat(rows...)), 1, k, d)
	}
	logW := make([]float64, k)
	for i, w := range m.weights {
		logW[i] = math.Log(w)
	}
	x := graph.Reshape(xt, b, 1, d)
	diff := graph.Sub(x, graph.Mul(sa, flat(m.means)))          // x − √ᾱ μ_k   [B, K, D]
	variance := graph.Add(graph.Mul(a, flat(m.variances)), oma) // ᾱ s_k² + 1 − ᾱ
	invVar := graph.Reciprocal(variance)
	z := graph.Mul(diff, invVar)
	// log N_k up to the constant −D/2·log 2π, which the softmax cancels.
	logN := graph.MulScalar(graph.ReduceSum(graph.Add(graph.Mul(diff, z), graph.Log(variance)), 2), -0.5)
	resp := graph.Softmax(graph.Add(graph.Reshape(graph.ConstAsDType(g, dt, logW), 1, k), logN), 1)
	// −score = Σ_k r_k (x − √ᾱ μ_k)/v_k; ε̂ = √(1−ᾱ)·(−score).
	negScore := graph.ReduceSum(graph.Mul(graph.Reshape(resp, b, k, 1), z), 1)
	eps = graph.Mul(graph.Reshape(soma, b, 1), negScore)
	return graph.Reshape(eps, xt.Shape().Dimensions...), nil
}

// alphaBar returns ᾱ_t, panicking on an out-of-range t (a programming error in host code).
func (m *GaussianMixture) alphaBar(t int) float64 {
	if t < 0 || t >= m.sched.Len() {
		panic(fmt.Sprintf("prior: step %d out of range [0, %d)", t, m.sched.Len()))
	}
	return m.sched.AlphaBars[t]
}

func (m *GaussianMixture) checkPoint(x []float64) {
	if len(x) != m.dim {
		panic(fmt.Sprintf("prior: point has %d entries, want %d (shape %v)", len(x), m.dim, m.shape))
	}
}

// componentLogDensities returns log w_k + log N(x; √ᾱ μ_k, ᾱ s_k² + 1 − ᾱ) for each k.
func (m *GaussianMixture) componentLogDensities(x []float64, a float64) []float64 {
	out := make([]float64, len(m.weights))
	sa := math.Sqrt(a)
	for k, w := range m.weights {
		s := math.Log(w)
		for j, xj := range x {
			v := a*m.variances[k][j] + 1 - a
			r := xj - sa*m.means[k][j]
			s -= 0.5 * (r*r/v + math.Log(2*math.Pi*v))
		}
		out[k] = s
	}
	return out
}

// logSumExp is log Σ exp(l_k), shifted by the maximum to avoid underflow.
func logSumExp(l []float64) float64 {
	mx := slices.Max(l)
	s := 0.0
	for _, v := range l {
		s += math.Exp(v - mx)
	}
	return mx + math.Log(s)
}

// LogDensity is log p_t(x) for one flattened point x at base step t, computed on the host.
func (m *GaussianMixture) LogDensity(x []float64, t int) float64 {
	m.checkPoint(x)
	return logSumExp(m.componentLogDensities(x, m.alphaBar(t)))
}

// PosteriorMean is E[x_0 | x_t] at base step t, exactly: the responsibility-weighted
// per-component conditional means μ_k + s_k²√ᾱ/(ᾱ s_k² + 1 − ᾱ)·(x_t − √ᾱ μ_k). It is
// written by Gaussian conditioning, not through the score, so that Tweedie's formula
// x̂0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ can be tested against it.
func (m *GaussianMixture) PosteriorMean(xt []float64, t int) []float64 {
	m.checkPoint(xt)
	a := m.alphaBar(t)
	l := m.componentLogDensities(xt, a)
	lse := logSumExp(l)
	sa := math.Sqrt(a)
	out := make([]float64, m.dim)
	for k := range m.weights {
		r := math.Exp(l[k] - lse)
		for j, x := range xt {
			s2 := m.variances[k][j]
			mu := m.means[k][j]
			out[j] += r * (mu + s2*sa/(a*s2+1-a)*(x-sa*mu))
		}
	}
	return out
}

// Sample draws n points from p_0 (flattened), reproducibly from seed (PCG).
func (m *GaussianMixture) Sample(n int, seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([][]float64, n)
	for i := range out {
		u, k := rng.Float64(), 0
		for k < len(m.weights)-1 && u >= m.weights[k] {
			u -= m.weights[k]
			k++
		}
		x := make([]float64, m.dim)
		for j := range x {
			x[j] = m.means[k][j] + math.Sqrt(m.variances[k][j])*rng.NormFloat64()
		}
		out[i] = x
	}
	return out
}

// Mean is E[x_0] = Σ_k w_k μ_k.
func (m *GaussianMixture) Mean() []float64 {
	out := make([]float64, m.dim)
	for k, w := range m.weights {
		for j, mu := range m.means[k] {
			out[j] += w * mu
		}
	}
	return out
}

// Covariance is Cov[x_0] = Σ_k w_k (diag(s_k²) + (μ_k − μ)(μ_k − μ)ᵀ), a dim×dim matrix
// (centred form: no cancellation between second moment and squared mean).
func (m *GaussianMixture) Covariance() [][]float64 {
	mean := m.Mean()
	out := make([][]float64, m.dim)
	for i := range out {
		out[i] = make([]float64, m.dim)
	}
	for k, w := range m.weights {
		for i := range m.dim {
			di := m.means[k][i] - mean[i]
			out[i][i] += w * m.variances[k][i]
			for j := range m.dim {
				out[i][j] += w * di * (m.means[k][j] - mean[j])
			}
		}
	}
	return out
}
