package fidelity

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/mat"
)

// Sigma is the measurement noise of both problems.
const Sigma = 0.05

// Gaussian is the linear-Gaussian problem with its exact posterior.
type Gaussian struct {
	// Problem has N copies of one measurement y (XShape [N, 1, 4, 4], float64).
	Problem *solver.Problem
	// PriorMean is μ; PostMean and PostCov are the exact posterior's (16 and 16×16).
	PriorMean, PostMean []float64
	PostCov             [][]float64
	// A is the operator's matrix (4×16).
	A [][]float64
}

// NewGaussian is the linear-Gaussian problem with n samples per solve; seed draws the noise
// of y.
func NewGaussian(backend backends.Backend, n int, seed uint64) (*Gaussian, error) {
	const dim = 16
	mean, vars := make([]float64, dim), make([]float64, dim)
	for i := range mean {
		// Distinct means and variances, so that a solver mixing up pixels shows.
		mean[i], vars[i] = 0.3*math.Sin(float64(i)), 0.05+0.2*float64(i%5)/4
	}
	sched := schedule.Default()
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{mean}, [][]float64{vars}, []int{1, 4, 4})
	if err != nil {
		return nil, err
	}
	op, err := operator.NewAvgPoolSR(2)
	if err != nil {
		return nil, err
	}
	a, err := operator.Matrix(backend, op, 1, 4, 4)
	if err != nil {
		return nil, err
	}
	// The true image lies two prior standard deviations from the mean, with the same sign
	// within each pooled block, so that y is far from Aμ and the posterior mean far from
	// the prior's: a solver that under-uses y cannot hide in Monte-Carlo error.
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	x := make([]float64, dim)
	for i := range x {
		sign := 1.0
		if (i/2+i/8)%2 == 1 {
			sign = -1
		}
		x[i] = mean[i] + 2*sign*math.Sqrt(vars[i])
	}
	y := make([]float64, len(a))
	for r, row := range a {
		for c, v := range row {
			y[r] += v * x[c]
		}
		y[r] += Sigma * rng.NormFloat64()
	}
	postMean, postCov := prior.GaussianPosterior(mean, vars, a, y, Sigma)
	nm, _ := noise.NewGaussian(Sigma)
	ys := make([]float64, 0, n*len(y))
	for range n {
		ys = append(ys, y...)
	}
	p := &solver.Problem{Prior: gmm, Schedule: sched, Operator: op, Noise: nm, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(ys, n, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, n, 1, 4, 4)}
	return &Gaussian{Problem: p, PriorMean: mean, PostMean: postMean, PostCov: postCov, A: a}, nil
}

// GaussianScore is how close samples are to the Gaussian posterior.
type GaussianScore struct {
	// GapClosed is 1 − ‖m̂ − m_post‖/‖μ − m_post‖.
	GapClosed float64
	// CovRatio is trace(sample covariance) / trace(posterior covariance).
	CovRatio float64
	// MeasuredCovRatio is the same ratio seen through the operator, tr(A Ĉ Aᵀ)/tr(A C Aᵀ):
	// the spread along the measured directions, where y should shrink it (the prior's own
	// samples score ≫ 1 here, while CovRatio mostly sees the unmeasured directions).
	MeasuredCovRatio float64
}

// Score scores samples (each 16 values) against the exact posterior.
func (g *Gaussian) Score(samples [][]float64) GaussianScore {
	m, c := moments(samples)
	var gap, err2, trS, trP float64
	for i := range m {
		d := g.PriorMean[i] - g.PostMean[i]
		e := m[i] - g.PostMean[i]
		gap += d * d
		err2 += e * e
		trS += c[i][i]
		trP += g.PostCov[i][i]
	}
	return GaussianScore{GapClosed: 1 - math.Sqrt(err2/gap), CovRatio: trS / trP,
		MeasuredCovRatio: traceThrough(g.A, c) / traceThrough(g.A, g.PostCov)}
}

// traceThrough is tr(A C Aᵀ).
func traceThrough(a, c [][]float64) float64 {
	t := 0.0
	for _, row := range a {
		for i, ai := range row {
			for j, aj := range row {
				t += ai * c[i][j] * aj
			}
		}
	}
	return t
}

// ExactSamples are n draws from the exact posterior (Cholesky of its covariance).
func (g *Gaussian) ExactSamples(n int, seed uint64) [][]float64 {
	dim := len(g.PostMean)
	cov := mat.NewSymDense(dim, nil)
	for i := range dim {
		for j := i; j < dim; j++ {
			cov.SetSym(i, j, g.PostCov[i][j])
		}
	}
	// The posterior of pooled pixels is full rank (σ > 0), so Cholesky succeeds; a tiny
	// jitter guards rounding.
	for i := range dim {
		cov.SetSym(i, i, cov.At(i, i)+1e-14)
	}
	var ch mat.Cholesky
	if !ch.Factorize(cov) {
		panic("fidelity: the posterior covariance is not positive definite")
	}
	var l mat.TriDense
	ch.LTo(&l)
	rng := rand.New(rand.NewPCG(seed, 0xe4ac7))
	out := make([][]float64, n)
	z := make([]float64, dim)
	for k := range out {
		for i := range z {
			z[i] = rng.NormFloat64()
		}
		s := make([]float64, dim)
		for i := range dim {
			s[i] = g.PostMean[i]
			for j := 0; j <= i; j++ {
				s[i] += l.At(i, j) * z[j]
			}
		}
		out[k] = s
	}
	return out
}

// Mixture is the 2-D Gaussian-mixture problem with its exact posterior.
type Mixture struct {
	// Problem has N copies of the measurement y₁ = 0.32 (XShape [N, 1, 1, 2], float64).
	Problem *solver.Problem
	// The posterior mixture: weights, means and (diagonal) variances per component.
	PostWeights         []float64
	PostMeans, PostVars [][]float64
	Weights             []float64
	Means, Variances    [][]float64
	Observed            float64
}

// The mixture of notebooks/gmm-geometry.ipynb.
var (
	mixWeights   = []float64{0.3, 0.25, 0.35, 0.1}
	mixMeans     = [][]float64{{-0.6, -0.2}, {0.3, 0.6}, {0.35, -0.6}, {0.9, 0.4}}
	mixVariances = [][]float64{{0.02, 0.05}, {0.01, 0.02}, {0.01, 0.02}, {0.02, 0.01}}
)

// FirstCoordinate measures the first of two coordinates of [B, 1, 1, 2] points, y [B, 1, 1, 1],
// with every capability: adjoint, projection, pseudo-inverse, SVD (U = V = I, s = 1) and
// (from the SVD) data-prox.
func FirstCoordinate() (operator.Operator, error) {
	first := func(x *graph.Node) *graph.Node {
		return graph.Slice(x, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(), graph.AxisRange(0, 1))
	}
	second := func(x *graph.Node) *graph.Node {
		return graph.Slice(x, graph.AxisRange(), graph.AxisRange(), graph.AxisRange(), graph.AxisRange(1, 2))
	}
	embed := func(y *graph.Node) *graph.Node { return graph.Concatenate([]*graph.Node{y, graph.ZerosLike(y)}, 3) }
	id := func(x *graph.Node) *graph.Node { return x }
	return operator.FromFunc(operator.Func{
		Name:  "first-coordinate",
		Apply: first,
		Shape: func(x shapes.Shape) (shapes.Shape, error) {
			if x.Rank() != 4 || x.Dimensions[1] != 1 || x.Dimensions[2] != 1 || x.Dimensions[3] != 2 {
				return shapes.Shape{}, fmt.Errorf("first-coordinate maps [B, 1, 1, 2] points, got %s", x)
			}
			return shapes.Make(x.DType, x.Dimensions[0], 1, 1, 1), nil
		},
		Adjoint:       embed,
		PseudoInverse: embed,
		Project: func(x, y *graph.Node) *graph.Node {
			return graph.Concatenate([]*graph.Node{y, second(x)}, 3)
		},
		SVD: &operator.SVDFuncs{Vt: id, V: id, Ut: id, U: id,
			Singulars: func(g *graph.Graph, x shapes.Shape) *graph.Node {
				return graph.Ones(g, shapes.Make(x.DType, 1, 1, 1, 1))
			}},
	})
}

// NewMixture is the mixture problem with n samples per solve.
func NewMixture(backend backends.Backend, n int) (*Mixture, error) {
	const y1 = 0.32
	sched := schedule.Default()
	gmm, err := prior.NewGaussianMixture(sched, mixWeights, mixMeans, mixVariances, []int{1, 1, 2})
	if err != nil {
		return nil, err
	}
	op, err := FirstCoordinate()
	if err != nil {
		return nil, err
	}
	m := &Mixture{Weights: mixWeights, Means: mixMeans, Variances: mixVariances, Observed: y1}
	total := 0.0
	for k := range mixWeights {
		pm, pc := prior.GaussianPosterior(mixMeans[k], mixVariances[k], [][]float64{{1, 0}}, []float64{y1}, Sigma)
		s2 := mixVariances[k][0] + Sigma*Sigma
		d := y1 - mixMeans[k][0]
		w := mixWeights[k] * math.Exp(-d*d/(2*s2)) / math.Sqrt(2*math.Pi*s2)
		m.PostWeights = append(m.PostWeights, w)
		m.PostMeans = append(m.PostMeans, pm)
		m.PostVars = append(m.PostVars, []float64{pc[0][0], pc[1][1]})
		total += w
	}
	for k := range m.PostWeights {
		m.PostWeights[k] /= total
	}
	nm, _ := noise.NewGaussian(Sigma)
	ys := make([]float64, n)
	for i := range ys {
		ys[i] = y1
	}
	m.Problem = &solver.Problem{Prior: gmm, Schedule: sched, Operator: op, Noise: nm, Backend: backend,
		Y: tensors.FromFlatDataAndDimensions(ys, n, 1, 1, 1), XShape: shapes.Make(dtypes.Float64, n, 1, 1, 2)}
	return m, nil
}

// ExactSamples are n draws from the exact posterior mixture (its components' covariances
// are diagonal: one coordinate is measured, and the prior's are diagonal).
func (m *Mixture) ExactSamples(n int, seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 0x313))
	out := make([][]float64, n)
	for i := range out {
		u, k := rng.Float64(), 0
		for k < len(m.PostWeights)-1 && u >= m.PostWeights[k] {
			u -= m.PostWeights[k]
			k++
		}
		out[i] = []float64{m.PostMeans[k][0] + math.Sqrt(m.PostVars[k][0])*rng.NormFloat64(),
			m.PostMeans[k][1] + math.Sqrt(m.PostVars[k][1])*rng.NormFloat64()}
	}
	return out
}

// EnergyDistance is D² = 2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ between two point sets (the
// V-statistic, self-pairs included): 0 exactly when the distributions agree.
func EnergyDistance(a, b [][]float64) float64 {
	mean := func(p, q [][]float64) float64 {
		s := 0.0
		for _, u := range p {
			for _, v := range q {
				d := 0.0
				for i := range u {
					d += (u[i] - v[i]) * (u[i] - v[i])
				}
				s += math.Sqrt(d)
			}
		}
		return s / float64(len(p)*len(q))
	}
	return 2*mean(a, b) - mean(a, a) - mean(b, b)
}

// Row is one solver's scores.
type Row struct {
	Solver string
	// Params are the params given (beyond the solver's defaults).
	Params map[string]any
	// NFE is the network evaluations per sample (of the Gaussian problem's run).
	NFE      int
	Gaussian GaussianScore
	// Energy is the mixture problem's energy distance to exact samples.
	Energy float64
	// Seconds is the wall time of both solves.
	Seconds float64
	// Err is why the solver did not run, if it did not.
	Err string
}

// ToyParams are the params a solver runs with on these toy problems: clip off wherever a
// solver clips x̂0 to [-1, 1] (that is for images; the toy posteriors reach past ±1).
func ToyParams(s solver.Solver) map[string]any {
	out := map[string]any{}
	for _, p := range s.Info().Params {
		if p.Name == "clip" && p.Type == solver.Bool {
			out["clip"] = false
		}
	}
	return out
}

// Options configure Run.
type Options struct {
	// N is the number of samples per problem (default 500).
	N int
	// Seed seeds the solvers and the exact samples.
	Seed uint64
	// Params, per solver name, replace ToyParams.
	Params map[string]map[string]any
}

// Run scores each solver on both problems; the first row is the exact sampler (the
// Monte-Carlo floor). A solver that refuses a problem or fails gets a row with Err set.
func Run(ctx context.Context, backend backends.Backend, solvers []solver.Solver, opt Options) ([]Row, error) {
	n := opt.N
	if n <= 0 {
		n = 500
	}
	g, err := NewGaussian(backend, n, 1)
	if err != nil {
		return nil, err
	}
	mix, err := NewMixture(backend, n)
	if err != nil {
		return nil, err
	}
	exactMix := mix.ExactSamples(n, opt.Seed+1000)
	rows := []Row{{Solver: "exact posterior", Gaussian: g.Score(g.ExactSamples(n, opt.Seed)),
		Energy: EnergyDistance(mix.ExactSamples(n, opt.Seed+2000), exactMix)}}
	for _, s := range solvers {
		name := s.Info().Name
		params := ToyParams(s)
		if p, ok := opt.Params[name]; ok {
			params = p
		}
		row := Row{Solver: name, Params: params}
		start := time.Now()
		res, err := solver.Solve(ctx, s, g.Problem, params, opt.Seed, solver.Hooks{})
		if err == nil {
			row.NFE = res.NFE
			row.Gaussian = g.Score(points(res.X, 16))
			res.X.FinalizeAll()
			res, err = solver.Solve(ctx, s, mix.Problem, params, opt.Seed, solver.Hooks{})
		}
		if err != nil {
			if ctx.Err() != nil {
				return rows, ctx.Err()
			}
			row.Err = err.Error()
			rows = append(rows, row)
			continue
		}
		row.Energy = EnergyDistance(points(res.X, 2), exactMix)
		res.X.FinalizeAll()
		row.Seconds = time.Since(start).Seconds()
		rows = append(rows, row)
	}
	return rows, nil
}

// Markdown is rows as a Markdown table.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| solver | params | NFE | Gaussian: gap closed | Gaussian: cov ratio | Gaussian: cov ratio, measured | mixture: energy distance | s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.Err != "" {
			fmt.Fprintf(&b, "| %s | %s | | refused: %s | | | | |\n", r.Solver, formatParams(r.Params), strings.ReplaceAll(r.Err, "|", "/"))
			continue
		}
		nfe, secs := "", ""
		if r.Seconds > 0 {
			nfe, secs = fmt.Sprint(r.NFE), fmt.Sprintf("%.1f", r.Seconds)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.3f | %.3f | %.3f | %.4f | %s |\n", r.Solver, formatParams(r.Params), nfe,
			r.Gaussian.GapClosed, r.Gaussian.CovRatio, r.Gaussian.MeasuredCovRatio, r.Energy, secs)
	}
	return b.String()
}

func formatParams(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, p[k])
	}
	return strings.Join(parts, " ")
}

// points reads a [N, …] float64 tensor as N points of dim values.
func points(t *tensors.Tensor, dim int) [][]float64 {
	flat := tensors.MustCopyFlatData[float64](t)
	out := make([][]float64, len(flat)/dim)
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim]
	}
	return out
}

// moments are the sample mean and (population) covariance.
func moments(samples [][]float64) ([]float64, [][]float64) {
	dim := len(samples[0])
	m := make([]float64, dim)
	for _, s := range samples {
		for i, v := range s {
			m[i] += v / float64(len(samples))
		}
	}
	c := make([][]float64, dim)
	for i := range c {
		c[i] = make([]float64, dim)
	}
	for _, s := range samples {
		for i := range dim {
			for j := range dim {
				c[i][j] += (s[i] - m[i]) * (s[j] - m[j]) / float64(len(samples))
			}
		}
	}
	return m, c
}
