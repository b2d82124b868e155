package pigdm

import (
	"context"
	"github.com/dpsflow/dpsflow/nodes/solver/solvertest"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/mat"
)

func backend(t testing.TB) backends.Backend {
	t.Helper()
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// toyMean is the prior mean of the 1×4×4 toy problems.
func toyMean() []float64 {
	m := make([]float64, 16)
	for i := range m {
		m[i] = 0.3 * math.Sin(float64(i))
	}
	return m
}

// toyVars are per-pixel variances: all 1 (then r_t² = 1 − ᾱ_t is exactly Var[x0|x_t]) or
// varied in [0.15, 0.6].
func toyVars(unit bool) []float64 {
	v := make([]float64, 16)
	for i := range v {
		v[i] = 1
		if !unit {
			v[i] = 0.15 + 0.03*float64(i)
		}
	}
	return v
}

// avgPoolMatrix is 2× average pooling of a 4×4 image written out: y[i, j] is the mean of
// x[2i..2i+1, 2j..2j+1] (row-major both).
func avgPoolMatrix() [][]float64 {
	a := make([][]float64, 4)
	for i := range 2 {
		for j := range 2 {
			row := make([]float64, 16)
			for da := range 2 {
				for db := range 2 {
					row[(2*i+da)*4+2*j+db] = 0.25
				}
			}
			a[i*2+j] = row
		}
	}
	return a
}

// toyProblem is b samples of the Gaussian prior N(toyMean, diag(vars)) on [b, 1, 4, 4] under
// 2× average-pool SR with Gaussian noise σ, y given per sample ([b*4] values).
func toyProblem(t testing.TB, b int, vars []float64, sigma float64, y []float64) *solver.Problem {
	t.Helper()
	sched := schedule.Default()
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{toyMean()}, [][]float64{vars}, []int{1, 4, 4})
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.NewAvgPoolSR(2)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := noise.NewGaussian(sigma)
	if err != nil {
		t.Fatal(err)
	}
	return &solver.Problem{Prior: gmm, Schedule: sched, Operator: op, Noise: nm, Backend: backend(t),
		Y: tensors.FromFlatDataAndDimensions(y, b, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, b, 1, 4, 4)}
}

// termOnGraph runs one guidance term of s (params resolved for it) at loop step k for x_t
// (b×16 values) and returns x̂0, ε̂ and g' = r_t²·g, flat, plus the step's ᾱ_t.
func termOnGraph(t *testing.T, s pigdm, p *solver.Problem, params solver.Params, k int, xt []float64) (x0, eps, g []float64, ab float64) {
	t.Helper()
	sigma, err := check(p, params)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := diffusion.Schedule(p, params.Int("steps"), params.String("respacing"))
	if err != nil {
		t.Fatal(err)
	}
	m := diffusion.NewModel(p.Prior, sched)
	tab := newTables(m, params.Float("eta"), params.Float("scale"), params.String("weight"))
	gd := &guide{k: s.k, m: m, op: p.Operator, sigma: sigma, clip: params.Bool("clip"), r2: tab.r2}
	exec, err := NewExec(p.Backend, func(x, y, kk *Node) (*Node, *Node, *Node) {
		return gd.term(&diffusion.Step{K: kk, X: x, Y: y}, x)
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(xt, p.XShape.Dimensions...), p.Y, int32(k))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](outs[0]), tensors.MustCopyFlatData[float64](outs[1]),
		tensors.MustCopyFlatData[float64](outs[2]), m.AlphaBar[k]
}

func resolve(t *testing.T, given map[string]any) solver.Params {
	t.Helper()
	params, err := solver.Resolve(New(), given)
	if err != nil {
		t.Fatal(err)
	}
	return params
}

func dense(a [][]float64) *mat.Dense {
	d := mat.NewDense(len(a), len(a[0]), nil)
	for i, r := range a {
		d.SetRow(i, r)
	}
	return d
}

// closedFormG is g' = r_t²·g for the Gaussian prior N(mean, diag(vars)), computed on the host:
// x̂0 = mean + D(x_t − √ᾱ mean) with D = diag(√ᾱ s²/(ᾱ s² + 1 − ᾱ)) (so ∂x̂0/∂x_t = D),
// r_t² = 1 − ᾱ, and g = Dᵀ Aᵀ (r_t² AAᵀ + σ² I)⁻¹ (y − A x̂0); σ = 0 solves with AAᵀ.
func closedFormG(mean, vars []float64, A [][]float64, y, xt []float64, ab, sigma float64) []float64 {
	n, m := len(mean), len(y)
	a := dense(A)
	r2 := 1 - ab
	x0 := make([]float64, n)
	d := make([]float64, n)
	for i := range n {
		d[i] = math.Sqrt(ab) * vars[i] / (ab*vars[i] + 1 - ab)
		x0[i] = mean[i] + d[i]*(xt[i]-math.Sqrt(ab)*mean[i])
	}
	var ax mat.VecDense
	ax.MulVec(a, mat.NewVecDense(n, x0))
	res := mat.NewVecDense(m, nil)
	for i := range m {
		res.SetVec(i, y[i]-ax.AtVec(i))
	}
	var s mat.Dense
	s.Mul(a, a.T())
	s.Scale(r2, &s)
	for i := range m {
		s.Set(i, i, s.At(i, i)+sigma*sigma)
	}
	var u mat.VecDense
	if err := u.SolveVec(&s, res); err != nil {
		panic(err)
	}
	var atu mat.VecDense
	atu.MulVec(a.T(), &u)
	g := make([]float64, n)
	for i := range n {
		g[i] = r2 * d[i] * atu.AtVec(i)
	}
	return g
}

func maxRelDiff(got, want []float64) float64 {
	worst, scale := 0.0, 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(got[i]-want[i]))
		scale = math.Max(scale, math.Abs(want[i]))
	}
	return worst / scale
}

// Guarantee, part 1: on a Gaussian prior x̂0 is affine in x_t, so the vector-Jacobian product
// is exact and one ΠGDM guidance term has a closed form. The graph's term (through the SVD
// for σ_y > 0, through the pseudo-inverse for likelihood=pinv) equals it at several noise
// levels; with r_t² dropped or the VJP replaced by the back-projected residual it does not.
func TestGuidanceTermMatchesClosedForm(t *testing.T) {
	const b = 3
	rng := rand.New(rand.NewPCG(1, 2))
	y := make([]float64, b*4)
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	xt := make([]float64, b*16)
	for i := range xt {
		xt[i] = rng.NormFloat64()
	}
	vars := toyVars(false)
	p := toyProblem(t, b, vars, 0.05, y)
	A := avgPoolMatrix()
	steps := []int{5, 30, 60, 85} // loop steps of 100: t = 940, 690, 390, 140
	for _, lik := range []string{LikelihoodNoisy, LikelihoodPinv} {
		params := resolve(t, map[string]any{"likelihood": lik})
		sigma := 0.05
		if lik == LikelihoodPinv {
			sigma = 0
		}
		worst := map[string]float64{}
		for _, variant := range []struct {
			name string
			k    knobs
		}{{"pigdm", knobs{}}, {"r_t² dropped", knobs{dropR2: true}}, {"no VJP", knobs{noVJP: true}}} {
			for _, k := range steps {
				_, _, g, ab := termOnGraph(t, pigdm{k: variant.k}, p, params, k, xt)
				for i := range b {
					want := closedFormG(toyMean(), vars, A, y[4*i:4*i+4], xt[16*i:16*i+16], ab, sigma)
					worst[variant.name] = math.Max(worst[variant.name], maxRelDiff(g[16*i:16*i+16], want))
				}
			}
		}
		t.Logf("likelihood %s: max relative deviation from the closed form: %.2e (r_t² dropped: %.2e, no VJP: %.2e)",
			lik, worst["pigdm"], worst["r_t² dropped"], worst["no VJP"])
		if worst["pigdm"] > 1e-10 {
			t.Errorf("likelihood %s: the guidance term deviates from the closed form by %.2e", lik, worst["pigdm"])
		}
		for _, broken := range []string{"r_t² dropped", "no VJP"} {
			if worst[broken] < 0.05 {
				t.Errorf("likelihood %s: the broken variant %q passes the closed-form check (deviation %.2e)", lik, broken, worst[broken])
			}
		}
	}
}

// With clip, x̂0 is clipped to [-1, 1], ε̂ is re-derived from it (x_t = √ᾱ x̂0 + √(1−ᾱ) ε̂
// holds) and the VJP is zero on clipped pixels: g' = D v' with D zeroed there, v' computed
// from the clipped x̂0.
func TestClipZeroesClippedPixels(t *testing.T) {
	const b = 2
	rng := rand.New(rand.NewPCG(5, 6))
	y := make([]float64, b*4)
	for i := range y {
		y[i] = rng.NormFloat64()
	}
	xt := make([]float64, b*16)
	for i := range xt {
		xt[i] = 1.5 * rng.NormFloat64()
	}
	vars := toyVars(false)
	p := toyProblem(t, b, vars, 0.05, y)
	params := resolve(t, map[string]any{"clip": true})
	const k = 85 // t = 140: x̂0 ≈ x_t/√ᾱ, many pixels beyond ±1
	x0, eps, g, ab := termOnGraph(t, pigdm{}, p, params, k, xt)
	A := dense(avgPoolMatrix())
	clipped, worst := 0, 0.0
	for i := range b {
		res := mat.NewVecDense(4, nil)
		var ax mat.VecDense
		ax.MulVec(A, mat.NewVecDense(16, x0[16*i:16*i+16]))
		s := mat.NewDense(4, 4, nil)
		s.Mul(A, A.T())
		s.Scale(1-ab, s)
		for j := range 4 {
			res.SetVec(j, y[4*i+j]-ax.AtVec(j))
			s.Set(j, j, s.At(j, j)+0.05*0.05)
		}
		var u, atu mat.VecDense
		if err := u.SolveVec(s, res); err != nil {
			t.Fatal(err)
		}
		atu.MulVec(A.T(), &u)
		for j := range 16 {
			idx := 16*i + j
			if x0[idx] < -1 || x0[idx] > 1 {
				t.Fatalf("x̂0[%d] = %v is not clipped", idx, x0[idx])
			}
			if d := math.Abs(xt[idx] - math.Sqrt(ab)*x0[idx] - math.Sqrt(1-ab)*eps[idx]); d > 1e-12 {
				t.Fatalf("pixel %d: x_t − √ᾱ x̂0 − √(1−ᾱ) ε̂ = %v", idx, d)
			}
			mu := toyMean()[j]
			raw := mu + math.Sqrt(ab)*vars[j]/(ab*vars[j]+1-ab)*(xt[idx]-math.Sqrt(ab)*mu)
			want := (1 - ab) * math.Sqrt(ab) * vars[j] / (ab*vars[j] + 1 - ab) * atu.AtVec(j)
			if math.Abs(raw) > 1 {
				want, clipped = 0, clipped+1
			}
			worst = math.Max(worst, math.Abs(g[idx]-want))
		}
	}
	t.Logf("%d of %d pixels clipped; max |g' − closed form| = %.2e", clipped, b*16, worst)
	if clipped == 0 || clipped == b*16 || worst > 1e-10 {
		t.Errorf("%d pixels clipped, deviation %.2e", clipped, worst)
	}
}

// exactConditionalEps is −√(1−ᾱ)·∇log p(x_t | y) for the Gaussian prior: x_t | y ~
// N(√ᾱ m_post, ᾱ Σ_post + (1−ᾱ) I) with (m_post, Σ_post) from prior.GaussianPosterior.
func exactConditionalEps(mPost []float64, cPost [][]float64, xt []float64, ab float64) []float64 {
	n := len(mPost)
	c := mat.NewDense(n, n, nil)
	diff := mat.NewVecDense(n, nil)
	for i := range n {
		for j := range n {
			c.Set(i, j, ab*cPost[i][j])
		}
		c.Set(i, i, c.At(i, i)+1-ab)
		diff.SetVec(i, xt[i]-math.Sqrt(ab)*mPost[i])
	}
	var z mat.VecDense
	if err := z.SolveVec(c, diff); err != nil {
		panic(err)
	}
	out := make([]float64, n)
	for i := range n {
		out[i] = math.Sqrt(1-ab) * z.AtVec(i)
	}
	return out
}

// Guarantee, part 2 (the strongest): for a prior whose per-pixel variance is 1,
// Var[x0 | x_t] = ᾱ·1·(1−ᾱ)/(ᾱ + 1 − ᾱ)/ᾱ = 1 − ᾱ_t = r_t² exactly, and x̂0 is affine in x_t,
// so ΠGDM's p(y | x_t) = N(A x̂0, r_t² AAᵀ + σ_y² I) is the exact likelihood and its
// guided noise prediction ε̂ − √(1−ᾱ_t)·g is exactly the conditional one,
// −√(1−ᾱ_t)∇log p(x_t | y), for noisy (σ_y = 0.05) and noiseless (pinv, σ_y = 0)
// measurements. The broken variants miss it. The exact weight is the DDIM step of that ε.
func TestGuidedEpsIsTheExactConditionalScore(t *testing.T) {
	const b = 2
	rng := rand.New(rand.NewPCG(3, 4))
	y := make([]float64, b*4)
	for i := range y {
		y[i] = 0.8 * rng.NormFloat64()
	}
	xt := make([]float64, b*16)
	for i := range xt {
		xt[i] = rng.NormFloat64()
	}
	vars := toyVars(true)
	p := toyProblem(t, b, vars, 0.05, y)
	A := avgPoolMatrix()
	for _, lik := range []string{LikelihoodNoisy, LikelihoodPinv} {
		params := resolve(t, map[string]any{"likelihood": lik})
		sigma := 0.05
		if lik == LikelihoodPinv {
			sigma = 0
		}
		worst := map[string]float64{}
		for _, variant := range []struct {
			name string
			k    knobs
		}{{"pigdm", knobs{}}, {"r_t² dropped", knobs{dropR2: true}}, {"no VJP", knobs{noVJP: true}}} {
			for _, k := range []int{10, 40, 70, 90} {
				_, eps, g, ab := termOnGraph(t, pigdm{k: variant.k}, p, params, k, xt)
				for i := range b {
					mPost, cPost := prior.GaussianPosterior(toyMean(), vars, A, y[4*i:4*i+4], sigma)
					want := exactConditionalEps(mPost, cPost, xt[16*i:16*i+16], ab)
					got := make([]float64, 16)
					for j := range got {
						got[j] = eps[16*i+j] - math.Sqrt(1-ab)*g[16*i+j]/(1-ab) // g = g'/r_t²
					}
					worst[variant.name] = math.Max(worst[variant.name], maxRelDiff(got, want))
				}
			}
		}
		t.Logf("likelihood %s: guided ε vs the exact conditional ε: %.2e (r_t² dropped: %.2e, no VJP: %.2e)",
			lik, worst["pigdm"], worst["r_t² dropped"], worst["no VJP"])
		if worst["pigdm"] > 1e-9 {
			t.Errorf("likelihood %s: guided ε deviates from the exact conditional ε by %.2e", lik, worst["pigdm"])
		}
		for _, broken := range []string{"r_t² dropped", "no VJP"} {
			if worst[broken] < 0.05 {
				t.Errorf("likelihood %s: the broken variant %q matches the exact conditional ε (%.2e)", lik, broken, worst[broken])
			}
		}
	}
	// The exact weight w (on g' = r_t²g) is the DDIM step (η = 1) of the guided
	// ε̃ = ε̂ − √(1−ᾱ_t)·g and x̃0 = (x_t − √(1−ᾱ_t) ε̃)/√ᾱ_t: the step moves by
	// √ᾱ_s (x̃0 − x̂0) + c2 (ε̃ − ε̂) = w·g', here for g' = 1 (g = 1/r_t²).
	sched, _ := schedule.Default().RespaceStride(100)
	m := diffusion.NewModel(p.Prior, sched)
	tab := newTables(m, 1, 1, WeightExact)
	for k, ab := range m.AlphaBar {
		as := m.AlphaBarPrev[k]
		c1 := math.Sqrt((1 - ab/as) * (1 - as) / (1 - ab))
		c2 := math.Sqrt(math.Max(0, 1-as-c1*c1))
		gp, g := 1.0, 1/(1-ab)
		shift := math.Sqrt(as)*(1-ab)/math.Sqrt(ab)*g - c2*math.Sqrt(1-ab)*g
		if math.Abs(shift-tab.w[k]*gp) > 1e-9*math.Max(1, math.Abs(shift)) {
			t.Fatalf("loop step %d: exact weight %v, the guided-ε DDIM step moves by %v", k, tab.w[k], shift)
		}
	}
}

// predictedOutput is the exact distribution of the solver's output when every step runs on
// the exact conditional score of a Gaussian posterior N(mPost, cPost) (unit prior variances,
// weight=exact): each step x_s = √ᾱ_s x̃0 + c2 ε̃ + c1 z with ε̃ = √(1−ᾱ) C⁻¹(x_t − √ᾱ m_post),
// C = ᾱ Σ_post + (1−ᾱ) I, and x̃0 = (x_t − √(1−ᾱ) ε̃)/√ᾱ, is affine in x_t plus noise, so the
// mean and covariance propagate exactly from x_T ~ N(0, I). It is written from the DDIM
// formulas on the host, independently of the solver's tables.
func predictedOutput(mPost []float64, cPost [][]float64, abs, abPrev []float64, eta float64) (mean []float64, cov *mat.SymDense) {
	n := len(mPost)
	mu := mat.NewVecDense(n, nil)
	c := mat.NewDense(n, n, nil)
	for i := range n {
		c.Set(i, i, 1)
	}
	mp := mat.NewVecDense(n, mPost)
	for k, a := range abs {
		as := abPrev[k]
		c1 := eta * math.Sqrt((1-a/as)*(1-as)/(1-a))
		c2 := math.Sqrt(math.Max(0, 1-as-c1*c1))
		ct := mat.NewDense(n, n, nil)
		for i := range n {
			for j := range n {
				ct.Set(i, j, a*cPost[i][j])
			}
			ct.Set(i, i, ct.At(i, i)+1-a)
		}
		var cinv mat.Dense
		if err := cinv.Inverse(ct); err != nil {
			panic(err)
		}
		// ε̃ = E x_t − E √ᾱ m_post with E = √(1−ᾱ) C⁻¹; x_s = P x_t + q (+ c1 z) with
		// P = (√ᾱ_s/√ᾱ)(I − √(1−ᾱ) E) + c2 E and q = −((c2 − √ᾱ_s√(1−ᾱ)/√ᾱ) E √ᾱ m_post).
		e := mat.NewDense(n, n, nil)
		e.Scale(math.Sqrt(1-a), &cinv)
		p := mat.NewDense(n, n, nil)
		p.Scale(-math.Sqrt(as/a)*math.Sqrt(1-a)+c2, e)
		for i := range n {
			p.Set(i, i, p.At(i, i)+math.Sqrt(as/a))
		}
		var em mat.VecDense
		em.MulVec(e, mp)
		var next mat.VecDense
		next.MulVec(p, mu)
		next.AddScaledVec(&next, -(c2-math.Sqrt(as/a)*math.Sqrt(1-a))*math.Sqrt(a), &em)
		mu = &next
		var pc, pcp mat.Dense
		pc.Mul(p, c)
		pcp.Mul(&pc, p.T())
		for i := range n {
			pcp.Set(i, i, pcp.At(i, i)+c1*c1)
		}
		c = &pcp
	}
	cov = mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			cov.SetSym(i, j, 0.5*(c.At(i, j)+c.At(j, i)))
		}
	}
	return mu.RawVector().Data, cov
}

// sampleMoments runs the solver on n copies of one y and returns the samples' mean and the
// trace of their covariance.
func sampleMoments(t *testing.T, s pigdm, p *solver.Problem, given map[string]any, n int, seed uint64) (mean []float64, tr float64) {
	t.Helper()
	res, err := solver.Solve(context.Background(), s, p, given, seed, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	x := tensors.MustCopyFlatData[float64](res.X)
	mean = make([]float64, 16)
	for i := range n {
		for j := range 16 {
			mean[j] += x[16*i+j] / float64(n)
		}
	}
	for i := range n {
		for j := range 16 {
			d := x[16*i+j] - mean[j]
			tr += d * d / float64(n-1)
		}
	}
	return mean, tr
}

// gapAndRatio are 1 − ‖mean − m_post‖/‖μ_prior − m_post‖ and tr/trace(Σ_post).
func gapAndRatio(mean []float64, tr float64, mPost []float64, cPost [][]float64) (gap, ratio float64) {
	var num, den, trPost float64
	mu := toyMean()
	for j := range mPost {
		num += (mean[j] - mPost[j]) * (mean[j] - mPost[j])
		den += (mu[j] - mPost[j]) * (mu[j] - mPost[j])
		trPost += cPost[j][j]
	}
	return 1 - math.Sqrt(num/den), tr / trPost
}

// Linear-Gaussian exactness: 256 samples (one batch, float64) for one y under 2× average-pool
// SR, compared with prior.GaussianPosterior.
//
// Unit prior variances, weight=exact: every step is DDIM on the exact conditional score
// (TestGuidedEpsIsTheExactConditionalScore), so the output distribution is known in closed
// form (predictedOutput). It is not exactly the posterior, only by the discretisation: 100
// ancestral (η = 1) steps shrink a unit variance to ≈ 0.92 (v ← (ᾱ_t/ᾱ_s) v + c1² from
// v_T = 1; 0.99 at 1000 steps), and the posterior keeps variance ≈ 1 in the 12 null-space
// directions, so the predicted covariance ratio is ≈ 0.92 (≈ 0.96 for η = 0) while the mean is
// nearly exact (predicted gap closed ≥ 0.99). The samples must match that prediction within
// Monte-Carlo error: the sample mean's error is N(0, C/256), whose norm rarely exceeds
// 1.6·√(tr C/256); the trace's standard error is √(2‖C‖²_F/255)/tr C (asserted within 4).
// The same check must reject r_t² dropped, and the official weight at σ_y = 0.5 (the official
// weight is not the conditional score's, and with a weak measurement it closes little of the gap).
//
// The item-2 table at σ_y = 0.05 (official weight, varied variances: r_t² = 1 − ᾱ_t then only
// approximates Var[x0|x_t]) is logged and held to looser bounds: most of the gap closed
// (≥ 0.8) and the spread within [0.75, 1.1] of the posterior's (the discretisation loss of
// ≈ 0.92 included). The gap closed measured on samples is limited by the Monte-Carlo error of
// the mean (≈ 0.16 against ‖μ − m_post‖ ≈ 3.2 here).
func TestLinearGaussianExactness(t *testing.T) {
	const n = 256
	y4 := []float64{0.9, -0.6, 0.2, 1.1}
	y := make([]float64, 0, 4*n)
	for range n {
		y = append(y, y4...)
	}
	A := avgPoolMatrix()
	exact := map[string]any{"weight": WeightExact}
	for _, c := range []struct {
		name    string
		s       pigdm
		unit    bool
		sigma   float64
		given   map[string]any
		predict bool // compare with predictedOutput
		broken  bool // must be off the prediction
	}{
		{"σ_y=0.05 unit variances, weight=exact", pigdm{}, true, 0.05, exact, true, false},
		{"σ_y=0.5 unit variances, weight=exact", pigdm{}, true, 0.5, exact, true, false},
		{"σ_y=0.5 unit variances, weight=exact, η=0", pigdm{}, true, 0.5, map[string]any{"weight": WeightExact, "eta": 0.0}, true, false},
		{"σ_y=0.5 unit variances, weight=exact, r_t² dropped", pigdm{k: knobs{dropR2: true}}, true, 0.5, exact, true, true},
		{"σ_y=0.5 unit variances, weight=official", pigdm{}, true, 0.5, nil, true, true},
		{"σ_y=0.05 unit variances, weight=official", pigdm{}, true, 0.05, nil, false, false},
		{"σ_y=0.05 varied variances, weight=exact", pigdm{}, false, 0.05, exact, false, false},
		{"σ_y=0.05 varied variances, weight=official", pigdm{}, false, 0.05, nil, false, false},
	} {
		vars := toyVars(c.unit)
		p := toyProblem(t, n, vars, c.sigma, y)
		mPost, cPost := prior.GaussianPosterior(toyMean(), vars, A, y4, c.sigma)
		mean, tr := sampleMoments(t, c.s, p, c.given, n, 11)
		gap, ratio := gapAndRatio(mean, tr, mPost, cPost)
		if !c.predict {
			t.Logf("%s: gap closed %.4f, covariance ratio %.4f", c.name, gap, ratio)
			if gap < 0.8 || ratio < 0.75 || ratio > 1.1 {
				t.Errorf("%s: gap closed %.4f (want ≥ 0.8), covariance ratio %.4f (want in [0.75, 1.1])", c.name, gap, ratio)
			}
			continue
		}
		params := resolve(t, c.given)
		sched, err := diffusion.Schedule(p, params.Int("steps"), params.String("respacing"))
		if err != nil {
			t.Fatal(err)
		}
		m := diffusion.NewModel(p.Prior, sched)
		pm, pc := predictedOutput(mPost, cPost, m.AlphaBar, m.AlphaBarPrev, params.Float("eta"))
		ptr, frob := mat.Trace(pc), 0.0
		for i := range 16 {
			for j := range 16 {
				frob += pc.At(i, j) * pc.At(i, j)
			}
		}
		pgap, pratio := gapAndRatio(pm, ptr, mPost, cPost)
		var errMean float64
		for j := range 16 {
			errMean += (mean[j] - pm[j]) * (mean[j] - pm[j])
		}
		errMean, meanBound := math.Sqrt(errMean), 1.6*math.Sqrt(ptr/n)
		se := math.Sqrt(2*frob/(n-1)) / ptr
		t.Logf("%s: gap closed %.4f, covariance ratio %.4f; exact-score prediction %.4f, %.4f; ‖mean − predicted‖ = %.3f (bound %.3f), trace/predicted = %.4f (SE %.3f)",
			c.name, gap, ratio, pgap, pratio, errMean, meanBound, tr/ptr, se)
		if pgap < 0.99 || pratio < 0.9 || pratio > 1 {
			t.Errorf("%s: the exact-score DDIM prediction is gap %.4f, ratio %.4f; want ≥ 0.99 and in [0.9, 1]", c.name, pgap, pratio)
		}
		off := errMean > meanBound || math.Abs(tr/ptr-1) > 4*se
		if off != c.broken {
			t.Errorf("%s: off the predicted distribution: %v, want %v (‖mean − predicted‖ %.3f vs %.3f, trace ratio %.4f, 4 SE = %.3f)",
				c.name, off, c.broken, errMean, meanBound, tr/ptr, 4*se)
		}
	}
}

// A run checkpointed mid-way and resumed ends bit for bit where the whole run ends.
func TestResumeIsBitExact(t *testing.T) {
	y := []float64{0.1, 0.2, 0.3, 0.4, -0.1, -0.2, -0.3, -0.4}
	p := toyProblem(t, 2, toyVars(false), 0.05, y)
	params := resolve(t, map[string]any{"steps": 20})
	if err := solver.Check(New(), p, params); err != nil {
		t.Fatal(err)
	}
	run, err := New().Prepare(p, params)
	if err != nil {
		t.Fatal(err)
	}
	whole := solvertest.CheckResume(t, run, p.Y, 9, 8)
	if whole.NFE != 20 || len(whole.Distances) != 2 {
		t.Errorf("NFE %d, %d distances", whole.NFE, len(whole.Distances))
	}
}

// Bad input is refused before any work, by errors that name the culprit.
func TestRefusals(t *testing.T) {
	s := New()
	for _, c := range []struct {
		given map[string]any
		want  string
	}{
		{map[string]any{"stepz": 10}, "solver pigdm: unknown param stepz"},
		{map[string]any{"steps": 0}, "solver pigdm: param steps"},
		{map[string]any{"eta": 1.5}, "solver pigdm: param eta: must be in [0, 1]"},
		{map[string]any{"eta": -0.1}, "solver pigdm: param eta"},
		{map[string]any{"scale": -1}, "solver pigdm: param scale"},
		{map[string]any{"weight": "paper"}, "solver pigdm: param weight"},
		{map[string]any{"likelihood": "cg"}, "solver pigdm: param likelihood"},
	} {
		if _, err := solver.Resolve(s, c.given); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.given, err, c.want)
		}
	}
	y := make([]float64, 8)
	check := func(name string, p *solver.Problem, given map[string]any, want string) {
		t.Helper()
		err := solver.Check(s, p, resolve(t, given))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", name, err, want)
		}
	}
	// No pseudo-inverse: motion blur (adjoint only).
	p := toyProblem(t, 2, toyVars(false), 0.05, y)
	mb, err := operator.NewMotionBlur(3, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	p.Operator, p.Y = mb, nil
	check("motion blur", p, nil, "solver pigdm needs the operator's pseudo-inverse, which motion_blur does not offer")
	// A pseudo-inverse but no SVD: the noisy likelihood is refused, pinv is accepted.
	p = toyProblem(t, 2, toyVars(false), 0.05, y)
	sr, _ := operator.NewAvgPoolSR(2)
	pinvOnly, err := operator.FromFunc(operator.Func{Name: "pinv-only", Apply: sr.Apply, Shape: sr.MeasurementShape, PseudoInverse: sr.PseudoInverse})
	if err != nil {
		t.Fatal(err)
	}
	p.Operator = pinvOnly
	check("pinv-only operator", p, nil, "solver pigdm: param likelihood=noisy (σ_y = 0.05) applies (r_t² AAᵀ + σ_y² I)⁻¹ through the operator's svd, which pinv-only does not offer")
	if err := solver.Check(s, p, resolve(t, map[string]any{"likelihood": LikelihoodPinv})); err != nil {
		t.Errorf("likelihood=pinv on a pseudo-inverse-only operator: %v", err)
	}
	// Poisson noise.
	p = toyProblem(t, 2, toyVars(false), 0.05, y)
	p.Noise, _ = noise.NewPoisson(1)
	check("poisson", p, nil, "solver pigdm: models Gaussian measurement noise, and the problem's noise is poisson")
	// A step count the stride respacing cannot give.
	p = toyProblem(t, 2, toyVars(false), 0.05, y)
	check("steps 300 stride", p, map[string]any{"steps": 300}, "solver pigdm: params steps=300, respacing=stride")
	check("steps 2000", p, map[string]any{"steps": 2000, "respacing": "even"}, "solver pigdm: params steps=2000")
	// No prior.
	p.Prior = nil
	check("nil prior", p, nil, "solver pigdm needs a diffusion prior")
	if _, err := s.Prepare(p, resolve(t, nil)); err == nil || !strings.Contains(err.Error(), "solver pigdm needs a diffusion prior") {
		t.Errorf("Prepare without a prior: %v", err)
	}
}
