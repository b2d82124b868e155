package ddrm

import (
	"context"
	"github.com/dpsflow/dpsflow/nodes/solver/solvertest"
	"math"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/mat"
)

const dim = 16 // the toy images are [1, 4, 4]

func newBackend(t *testing.T) backends.Backend {
	t.Helper()
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	return be
}

// toyPrior is the mean and per-pixel variances of the toy Gaussian prior; isotropic gives
// every pixel variance 0.2 (a prior diagonal in any basis).
func toyPrior(isotropic bool) (mean, vars []float64) {
	mean, vars = make([]float64, dim), make([]float64, dim)
	for i := range mean {
		mean[i] = 0.3 * math.Sin(float64(i))
		vars[i] = 0.2
		if !isotropic {
			vars[i] = 0.05 + 0.3*float64((i*7)%dim)/dim
		}
	}
	return mean, vars
}

// toyProblem is n samples of the [1, 4, 4] Gaussian prior (mean, vars) measured by op with
// Gaussian noise sigmaY (0: the zero-value noise.Gaussian, noiseless), all with the same
// measurement y1 (one image's worth).
func toyProblem(t *testing.T, be backends.Backend, mean, vars []float64, op operator.Operator, sigmaY float64, y1 []float64, n int) *solver.Problem {
	t.Helper()
	sched := schedule.Default()
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{mean}, [][]float64{vars}, []int{1, 4, 4})
	if err != nil {
		t.Fatal(err)
	}
	var nm noise.Model = &noise.Gaussian{}
	if sigmaY > 0 {
		if nm, err = noise.NewGaussian(sigmaY); err != nil {
			t.Fatal(err)
		}
	}
	xShape := shapes.Make(dtypes.Float64, n, 1, 4, 4)
	yShape, err := op.MeasurementShape(xShape)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float64, 0, n*len(y1))
	for range n {
		y = append(y, y1...)
	}
	return &solver.Problem{Prior: gmm, Schedule: sched, Operator: op, Noise: nm, Backend: be,
		Y: tensors.FromFlatDataAndDimensions(y, yShape.Dimensions...), XShape: xShape}
}

// denseA is op's matrix on one [1, 1, 4, 4] image, [m][16], from Apply on the unit images
// (not from the SVD).
func denseA(t *testing.T, be backends.Backend, op operator.Operator) [][]float64 {
	t.Helper()
	a, err := operator.Matrix(be, op, 1, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mulVec(A [][]float64, x []float64) []float64 {
	out := make([]float64, len(A))
	for i, row := range A {
		for j, a := range row {
			out[i] += a * x[j]
		}
	}
	return out
}

// solve runs the solver s with given params and returns the samples, [n][16].
func solve(t *testing.T, s solver.Solver, p *solver.Problem, params map[string]any, seed uint64) [][]float64 {
	t.Helper()
	res, err := solver.Solve(context.Background(), s, p, params, seed, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	flat := tensors.MustCopyFlatData[float64](res.X)
	out := make([][]float64, len(flat)/dim)
	for i := range out {
		out[i] = flat[i*dim : (i+1)*dim]
	}
	return out
}

// moments is the sample mean and covariance of xs.
func moments(xs [][]float64) (mean []float64, cov [][]float64) {
	n := float64(len(xs))
	mean = make([]float64, dim)
	for _, x := range xs {
		for i, v := range x {
			mean[i] += v / n
		}
	}
	cov = make([][]float64, dim)
	for i := range cov {
		cov[i] = make([]float64, dim)
		for _, x := range xs {
			for j := range dim {
				cov[i][j] += (x[i] - mean[i]) * (x[j] - mean[j]) / (n - 1)
			}
		}
	}
	return mean, cov
}

func dist(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += (a[i] - b[i]) * (a[i] - b[i])
	}
	return math.Sqrt(s)
}

func trace(c [][]float64) float64 {
	s := 0.0
	for i := range c {
		s += c[i][i]
	}
	return s
}

// ddrmMoments is an independent, host-side implementation of DDRM's arithmetic (the paper's
// cases; the official initialisation) for the Gaussian prior N(mean, diag(vars)), where every
// step is affine in x_t and the noise, so the output's mean and covariance follow exactly by
// propagating them: x_{t−1} = K x_t + b + noise. The SVD is gonum's of the dense A (another
// basis than the operator's, which leaves the output's law unchanged: within a set of equal
// singular values every case is rotation invariant and the noise isotropic).
func ddrmMoments(mean, vars []float64, A [][]float64, y []float64, sigmaY, eta, etaB float64, sched *schedule.Schedule) (m []float64, c [][]float64) {
	var svd mat.SVD
	if !svd.Factorize(denseMat(A), mat.SVDFull) {
		panic("svd")
	}
	var u, v mat.Dense
	svd.UTo(&u)
	svd.VTo(&v)
	sv := make([]float64, dim)
	copy(sv, svd.Values(nil))
	ybar := make([]float64, dim)
	for i := range len(A) {
		for j := range len(A) {
			ybar[i] += u.At(j, i) * y[j]
		}
	}
	for i := range sv {
		if sv[i] < 1e-12*sv[0] {
			sv[i] = 0
		}
	}
	diag := func(d []float64) *mat.Dense {
		out := mat.NewDense(dim, dim, nil)
		for i, x := range d {
			out.Set(i, i, x)
		}
		return out
	}
	// Init: c_i = (ȳ_i/s_i + √(σ_T² − σ_y²/s_i²) z_i)/σ_T where s_i σ_T > σ_y, z_i elsewhere.
	ab := diffusion.Reversed(sched.AlphaBars)
	abPrev := diffusion.Reversed(sched.AlphaBarsPrev)
	sigT := math.Sqrt((1 - ab[0]) / ab[0])
	gam, nu2 := make([]float64, dim), make([]float64, dim)
	for i := range dim {
		gam[i], nu2[i] = 0, 1
		if sv[i] > 0 && sv[i]*sigT > sigmaY {
			gam[i] = ybar[i] / sv[i] / sigT
			nu2[i] = (sigT*sigT - sigmaY*sigmaY/(sv[i]*sv[i])) / (sigT * sigT)
		}
	}
	var mv mat.VecDense
	mv.MulVec(&v, mat.NewVecDense(dim, gam))
	var cm, tmp mat.Dense
	tmp.Mul(&v, diag(nu2))
	cm.Mul(&tmp, v.T())
	for k := range ab {
		a, an := ab[k], abPrev[k]
		sig, sn := math.Sqrt((1-a)/a), math.Sqrt((1-an)/an)
		// x̂0 = μ + G(x/√a − μ), ε̂ = (I − G)(x/√a − μ)/σ with G = P(P + σ²I)⁻¹.
		g, ig := make([]float64, dim), make([]float64, dim)
		o1, o2 := make([]float64, dim), make([]float64, dim)
		for j := range dim {
			g[j] = vars[j] / (vars[j] + sig*sig)
			ig[j] = 1 - g[j]
			o1[j] = ig[j] * mean[j]
			o2[j] = -ig[j] * mean[j] / sig
			g[j] /= math.Sqrt(a)
			ig[j] /= sig * math.Sqrt(a)
		}
		alpha, beta, gamma, nu := make([]float64, dim), make([]float64, dim), make([]float64, dim), make([]float64, dim)
		tilde := math.Sqrt(1-eta*eta) * sn
		for i := range dim {
			s := sv[i]
			switch {
			case s == 0:
				alpha[i], beta[i], nu[i] = 1, tilde, eta*sn
			case s*sn >= sigmaY:
				alpha[i], gamma[i] = 1-etaB, etaB*ybar[i]/s
				nu[i] = math.Sqrt(math.Max(sn*sn-etaB*etaB*sigmaY*sigmaY/(s*s), 0))
			default:
				alpha[i], gamma[i], nu[i] = 1-tilde*s/sigmaY, tilde*ybar[i]/sigmaY, eta*sn
			}
		}
		// K = √an V (Dα Vᵀ G' + Dβ Vᵀ (I−G)'), b = √an V (Dα Vᵀ o1 + Dβ Vᵀ o2 + γ).
		var t1, t2, inner, K mat.Dense
		t1.Mul(v.T(), diag(g))
		t1.Mul(diag(alpha), &t1)
		t2.Mul(v.T(), diag(ig))
		t2.Mul(diag(beta), &t2)
		inner.Add(&t1, &t2)
		K.Mul(&v, &inner)
		K.Scale(math.Sqrt(an), &K)
		var b1, b2 mat.VecDense
		b1.MulVec(v.T(), mat.NewVecDense(dim, o1))
		b2.MulVec(v.T(), mat.NewVecDense(dim, o2))
		off := make([]float64, dim)
		for i := range dim {
			off[i] = alpha[i]*b1.AtVec(i) + beta[i]*b2.AtVec(i) + gamma[i]
		}
		var b mat.VecDense
		b.MulVec(&v, mat.NewVecDense(dim, off))
		b.ScaleVec(math.Sqrt(an), &b)
		var next mat.VecDense
		next.MulVec(&K, &mv)
		next.AddVec(&next, &b)
		mv.CloneFromVec(&next)
		var kc, kck, noiseCov mat.Dense
		kc.Mul(&K, &cm)
		kck.Mul(&kc, K.T())
		nu2 := make([]float64, dim)
		for i := range nu {
			nu2[i] = an * nu[i] * nu[i]
		}
		tmp.Mul(&v, diag(nu2))
		noiseCov.Mul(&tmp, v.T())
		cm.Add(&kck, &noiseCov)
	}
	m = make([]float64, dim)
	c = make([][]float64, dim)
	for i := range dim {
		m[i] = mv.AtVec(i)
		c[i] = make([]float64, dim)
		for j := range dim {
			c[i][j] = cm.At(i, j)
		}
	}
	return m, c
}

// The method's guarantee: with η_b = 1 and σ_y = 0 the last step sets every observed
// coefficient to ȳ_i/s_i exactly, so A x = U Σ Σ⁺ Uᵀ y = y for a measurement in A's range,
// up to rounding (float64). η does not matter there; we take η = 1 and the default 0.85.
// Ignoring y in the observed coefficients breaks it, and so does the official code's strict
// s·σ_{t−1} > σ_y, which at the last step (σ_{t−1} = 0 = σ_y) falls into the unobserved case
// and returns the unconditional x̂0.
func TestNoiselessConsistency(t *testing.T) {
	be := newBackend(t)
	mean, vars := toyPrior(false)
	sr, _ := operator.NewAvgPoolSR(2)
	mask := []float64{1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0}
	inp, _ := operator.NewMaskInpainting(mask, 4, 4)
	xTrue := make([]float64, dim)
	for i := range xTrue {
		xTrue[i] = 0.7 * math.Cos(1.3*float64(i))
	}
	residual := func(s solver.Solver, op operator.Operator, eta float64) float64 {
		A := denseA(t, be, op)
		y := mulVec(A, xTrue)
		p := toyProblem(t, be, mean, vars, op, 0, y, 4)
		worst := 0.0
		for _, x := range solve(t, s, p, map[string]any{"eta": eta, "eta_b": 1.0}, 3) {
			for i, v := range mulVec(A, x) {
				worst = math.Max(worst, math.Abs(v-y[i]))
			}
		}
		return worst
	}
	for _, op := range []operator.Operator{sr, inp} {
		for _, eta := range []float64{1, 0.85} {
			r := residual(ddrm{}, op, eta)
			t.Logf("%s, η = %v: max |A x − y| = %.2e", op.Name(), eta, r)
			if r > 1e-10 {
				t.Errorf("%s, η = %v: max |A x − y| = %.3g, want ≤ 1e-10", op.Name(), eta, r)
			}
		}
		for name, broken := range map[string]ddrm{"ignoring y": {ignoreY: true}, "strict (official) boundary": {strict: true}} {
			r := residual(broken, op, 1)
			t.Logf("%s, %s: max |A x − y| = %.2e", op.Name(), name, r)
			if r < 1e-3 {
				t.Errorf("%s, %s: max |A x − y| = %.3g, the consistency check does not catch it", op.Name(), name, r)
			}
		}
	}
}

// gaussianCase is one linear-Gaussian toy's numbers: the DDRM samples (MC) against the
// exact law of DDRM's output (ddrmMoments) and both against the exact posterior.
type gaussianCase struct {
	gapMC, gapLaw, covMC, covLaw float64
	// meanZ is the largest |sample mean − law mean| in standard errors over the pixels,
	// covRel the sample covariance's trace relative to the law's, minus 1.
	meanZ, covRel float64
	// The law's mean and covariance, the posterior mean, the prior and y.
	mLaw, mPost, mean, vars, y []float64
	cLaw                       [][]float64
}

const toySigmaY = 0.05

// toyMeasurement is A x_true plus a fixed "noise" draw of std toySigmaY.
func toyMeasurement(A [][]float64) []float64 {
	xTrue := make([]float64, dim)
	for i := range xTrue {
		xTrue[i] = 0.6 * math.Cos(0.9*float64(i)+0.4)
	}
	y := mulVec(A, xTrue)
	for i := range y {
		y[i] += toySigmaY * math.Sin(3.7*float64(i))
	}
	return y
}

func runGaussianCase(t *testing.T, be backends.Backend, s solver.Solver, op operator.Operator, n int) gaussianCase {
	t.Helper()
	c := gaussianCase{}
	c.mean, c.vars = toyPrior(false)
	A := denseA(t, be, op)
	c.y = toyMeasurement(A)
	p := toyProblem(t, be, c.mean, c.vars, op, toySigmaY, c.y, n)
	mMC, cMC := moments(solve(t, s, p, nil, 11))
	sched, err := diffusion.Schedule(p, DefaultSteps, DefaultRespacing)
	if err != nil {
		t.Fatal(err)
	}
	c.mLaw, c.cLaw = ddrmMoments(c.mean, c.vars, A, c.y, toySigmaY, DefaultEta, DefaultEtaB, sched)
	var cPost [][]float64
	c.mPost, cPost = prior.GaussianPosterior(c.mean, c.vars, A, c.y, toySigmaY)
	gap := func(m []float64) float64 { return 1 - dist(m, c.mPost)/dist(c.mean, c.mPost) }
	c.gapMC, c.gapLaw = gap(mMC), gap(c.mLaw)
	c.covMC, c.covLaw = trace(cMC)/trace(cPost), trace(c.cLaw)/trace(cPost)
	for i := range dim {
		c.meanZ = math.Max(c.meanZ, math.Abs(mMC[i]-c.mLaw[i])/math.Sqrt(c.cLaw[i][i]/float64(n)))
	}
	c.covRel = trace(cMC)/trace(c.cLaw) - 1
	return c
}

// Linear-Gaussian exactness (item 2), avg-pool SR ×2 and inpainting, σ_y = 0.05, per-pixel
// prior variances 0.05–0.33, the defaults (20 stride steps, η = 0.85, η_b = 1), 256 samples.
//
// DDRM is not an exact posterior sampler, so the bounds come from DDRM's own law. For a
// Gaussian prior each DDRM step is affine in x_t and the noise, so ddrmMoments (an
// independent host implementation) gives the exact mean and covariance of its output. The
// test asserts that
//   - the samples follow that law: every pixel's mean within 4.5 standard errors, the
//     covariance trace within 25 % (256 samples), hence gap closed and covariance ratio within
//     0.08 and 25 % of the law's;
//   - the law, for inpainting (V = I, a diagonal prior: every pixel is its own 1-D problem),
//     equals the closed form derived by hand. With the stride-50 schedule the last level with
//     s·σ ≥ σ_y is t = 50 (σ_50 = 0.177 > σ_y = 0.05), so an observed pixel is x_50 = y +
//     √(σ_50² − σ_y²)·z (η_b = 1: the prior is ignored there), then
//     x_0 = x̂0(x_50) + c·(y − x̂0(x_50)) + ησ_0 z with c = √(1−η²)σ_0/σ_y, and the output is
//     x̂0(x_0) (σ_{−1} = 0), where x̂0(x) = μ + g_t(x − μ), g_t = v/(v + σ_t²). So
//     E = μ + κ(y − μ) with κ = g_0[g_50 + c(1 − g_50)], and
//     Var = g_0²[(1−c)² g_50² (σ_50² − σ_y²) + η²σ_0²];
//     the posterior has κ* = v/(v + σ_y²) > κ: DDRM's mean lies strictly between the prior
//     mean and the posterior mean on every observed pixel (its gap closed there is κ/κ*,
//     0.69–0.93 here), because it anchors on y at σ_50, not at σ_y. Unobserved pixels follow
//     the unconditional DDIM chain and end at the prior (= posterior) mean μ.
//
// The gap closed is then 0.74 (SR) and 0.83 (inpainting), the covariance ratio 0.59 and 0.67
// (η > 0 loses variance: each step replaces η of the noise around the mean x̂0); with more
// steps the gap closes further (1000 steps: 0.97 and 0.998) but the covariance ratio stays
// near 0.74 (TestLawLimits). Ignoring y (a broken variant) fails the first check.
func TestLinearGaussian(t *testing.T) {
	be := newBackend(t)
	sr, _ := operator.NewAvgPoolSR(2)
	mask := []float64{1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0}
	inp, _ := operator.NewMaskInpainting(mask, 4, 4)
	for _, op := range []operator.Operator{sr, inp} {
		c := runGaussianCase(t, be, ddrm{}, op, 256)
		t.Logf("%s: gap closed %.3f (DDRM's exact law %.3f), cov ratio %.3f (law %.3f); max mean z-score %.2f, trace vs law %+.3f",
			op.Name(), c.gapMC, c.gapLaw, c.covMC, c.covLaw, c.meanZ, c.covRel)
		if c.meanZ > 4.5 || math.Abs(c.covRel) > 0.25 {
			t.Errorf("%s: the samples do not follow DDRM's law: mean z-score %.2f, trace off by %+.3f", op.Name(), c.meanZ, c.covRel)
		}
		// |gap_MC − gap_law| ≤ ‖m_MC − m_law‖/‖μ − m_post‖, and ‖m_MC − m_law‖ is about
		// √(trace C_law / n): allow 4 of those.
		gapTol := 4 * math.Sqrt(trace(c.cLaw)/256) / dist(c.mean, c.mPost)
		if math.Abs(c.gapMC-c.gapLaw) > gapTol || math.Abs(c.covMC/c.covLaw-1) > 0.25 {
			t.Errorf("%s: gap closed %.3f, cov ratio %.3f; DDRM's law gives %.3f (± %.3f), %.3f", op.Name(), c.gapMC, c.covMC, c.gapLaw, gapTol, c.covLaw)
		}
		if op != inp {
			continue
		}
		// The hand-derived closed form (see above) against the law, pixel by pixel.
		ab := func(t int) float64 { return schedule.Default().AlphaBars[t] }
		sig2 := func(t int) float64 { return (1 - ab(t)) / ab(t) }
		s50, s0 := sig2(50), sig2(0)
		cc := math.Sqrt(1-DefaultEta*DefaultEta) * math.Sqrt(s0) / toySigmaY
		kMin, kMax := math.Inf(1), 0.0
		defer func() { t.Logf("inpainting, observed pixels: κ/κ* in [%.3f, %.3f]", kMin, kMax) }()
		for j := range dim {
			v, mu := c.vars[j], c.mean[j]
			g50, g0 := v/(v+s50), v/(v+s0)
			wantM, wantV := mu, 0.0
			if mask[j] == 1 {
				kappa := g0 * (g50 + cc*(1-g50))
				wantM = mu + kappa*(c.y[j]-mu)
				wantV = g0 * g0 * ((1-cc)*(1-cc)*g50*g50*(s50-toySigmaY*toySigmaY) + DefaultEta*DefaultEta*s0)
				kStar := v / (v + toySigmaY*toySigmaY)
				kMin, kMax = math.Min(kMin, kappa/kStar), math.Max(kMax, kappa/kStar)
				if !(kappa > 0 && kappa < kStar) {
					t.Errorf("pixel %d: κ = %.4f, want in (0, κ* = %.4f)", j, kappa, kStar)
				}
				// Between the prior mean and the posterior mean: the same side as the posterior, nearer μ.
				if d, dp := c.mLaw[j]-mu, c.mPost[j]-mu; d*dp <= 0 || math.Abs(d) >= math.Abs(dp) {
					t.Errorf("pixel %d: DDRM's mean %.4f is not between μ = %.4f and the posterior mean %.4f", j, c.mLaw[j], mu, c.mPost[j])
				}
			}
			// Unobserved pixels start at mean 0, not μ; that offset decays by the factor
			// g_t + √(1−η²)(σ_{t−1}/σ_t)(1 − g_t) per step, to ~1e-7 after 20 steps.
			tol := 1e-9
			if mask[j] == 0 {
				tol = 1e-6
			}
			if math.Abs(c.mLaw[j]-wantM) > tol || (mask[j] == 1 && math.Abs(c.cLaw[j][j]-wantV) > 1e-12) {
				t.Errorf("pixel %d (observed %v): law mean %.12f var %.3e, closed form %.12f, %.3e", j, mask[j] == 1, c.mLaw[j], c.cLaw[j][j], wantM, wantV)
			}
		}
	}
	b := runGaussianCase(t, be, ddrm{ignoreY: true}, sr, 256)
	t.Logf("ignoring y: gap closed %.3f, mean z-score %.1f", b.gapMC, b.meanZ)
	if b.meanZ <= 4.5 {
		t.Errorf("ignoring y passes: gap closed %.3f, mean z-score %.2f", b.gapMC, b.meanZ)
	}
}

// The law (ddrmMoments) in limits where the answer is known, so that it is not a copy of a
// mistake in the solver: with η = 0 the unobserved part is DDIM's deterministic chain, whose
// many-step limit is the probability-flow ODE, exact for the prior's conditional law; on
// inpainting (a diagonal prior: unobserved pixels independent of y) the covariance of 1000
// steps is the posterior's within 5 % and the mean's gap closes to ≥ 0.95. With η = 0.85 the
// variance stays short however many steps (each step's η share of fresh noise around the mean
// x̂0 loses Var(x0 | x_t)·(1 − √(1−η²))²-like terms), while the mean's gap closes.
func TestLawLimits(t *testing.T) {
	be := newBackend(t)
	mask := []float64{1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0}
	inp, _ := operator.NewMaskInpainting(mask, 4, 4)
	mean, vars := toyPrior(false)
	A := denseA(t, be, inp)
	y := toyMeasurement(A)
	mPost, cPost := prior.GaussianPosterior(mean, vars, A, y, toySigmaY)
	sched, _ := schedule.Default().Respace(1000)
	for _, c := range []struct {
		eta            float64
		gapMin         float64
		covMin, covMax float64
	}{{0, 0.95, 0.95, 1.05}, {DefaultEta, 0.95, 0.6, 0.85}} {
		m, cv := ddrmMoments(mean, vars, A, y, toySigmaY, c.eta, 1, sched)
		gap, cov := 1-dist(m, mPost)/dist(mean, mPost), trace(cv)/trace(cPost)
		t.Logf("1000 steps, η = %v: gap closed %.3f, cov ratio %.3f", c.eta, gap, cov)
		if gap < c.gapMin || cov < c.covMin || cov > c.covMax {
			t.Errorf("1000 steps, η = %v: gap closed %.3f (want ≥ %v), cov ratio %.3f (want in [%v, %v])", c.eta, gap, c.gapMin, cov, c.covMin, c.covMax)
		}
	}
}

// The unobserved coefficients follow the unconditional DDIM chain. On inpainting (V = I) with
// a diagonal prior, each unobserved pixel is a 1-D problem independent of y; with η = 0 it is
// deterministic DDIM from the same x_T (the official initialisation leaves z there as it is:
// σ_T z/σ_T), so it must equal the DDIM sampler's (vanilla, unclipped, same stride schedule
// and seed) to rounding, while the observed pixels must not.
func TestNullSpaceIsDDIM(t *testing.T) {
	be := newBackend(t)
	mean, vars := toyPrior(false)
	mask := []float64{1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 1, 0}
	inp, _ := operator.NewMaskInpainting(mask, 4, 4)
	p := toyProblem(t, be, mean, vars, inp, toySigmaY, toyMeasurement(denseA(t, be, inp)), 3)
	got := solve(t, ddrm{}, p, map[string]any{"eta": 0.0}, 5)
	smp, err := sampler.New(be, p.Prior, p.Schedule, inp, p.Noise, sampler.Config{Kind: sampler.DDIM, Steps: DefaultSteps,
		Respacing: sampler.RespaceStride, NoClip: true, Guidance: guidance.Config{Method: guidance.Vanilla}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := smp.Run(context.Background(), p.Y, p.XShape, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := tensors.MustCopyFlatData[float64](res.X)
	worstNull, leastObs := 0.0, math.Inf(1)
	for b, x := range got {
		for j := range dim {
			d := math.Abs(x[j] - want[b*dim+j])
			if mask[j] == 0 {
				worstNull = math.Max(worstNull, d)
			} else {
				leastObs = math.Min(leastObs, d)
			}
		}
	}
	t.Logf("unobserved pixels: max |DDRM − DDIM| = %.2e; observed pixels: min %.2e", worstNull, leastObs)
	if worstNull > 1e-12 {
		t.Errorf("unobserved pixels differ from DDIM by up to %.3g", worstNull)
	}
	if leastObs < 1e-4 {
		t.Errorf("an observed pixel equals DDIM's (difference %.3g): y is not used", leastObs)
	}
}

// With a prior diagonal in the SVD basis (isotropic variances) the null-space part of the
// output, (I − A⁺A) x, does not depend on y at all, whatever η: the same seed with two
// different measurements gives the same null-space part (to rounding), and different
// row-space parts.
func TestNullSpaceIgnoresY(t *testing.T) {
	be := newBackend(t)
	mean, vars := toyPrior(true)
	sr, _ := operator.NewAvgPoolSR(2)
	A := denseA(t, be, sr)
	proj := rowSpaceProjector(A)
	y1 := toyMeasurement(A)
	y2 := []float64{-0.4, 0.9, 0.1, -0.7}
	parts := func(y []float64) (row, null [][]float64) {
		for _, x := range solve(t, ddrm{}, toyProblem(t, be, mean, vars, sr, toySigmaY, y, 3), nil, 9) {
			var r mat.VecDense
			r.MulVec(proj, mat.NewVecDense(dim, x))
			n := make([]float64, dim)
			for i := range n {
				n[i] = x[i] - r.AtVec(i)
			}
			row, null = append(row, r.RawVector().Data), append(null, n)
		}
		return row, null
	}
	r1, n1 := parts(y1)
	r2, n2 := parts(y2)
	worst, rowDiff := 0.0, 0.0
	for b := range n1 {
		worst = math.Max(worst, dist(n1[b], n2[b]))
		rowDiff = math.Max(rowDiff, dist(r1[b], r2[b]))
	}
	t.Logf("null-space parts differ by %.2e, row-space parts by %.2f", worst, rowDiff)
	if worst > 1e-12 || rowDiff < 0.1 {
		t.Errorf("null-space parts differ by %.3g (want ≤ 1e-12), row-space parts by %.3g (want > 0.1)", worst, rowDiff)
	}
}

// A run checkpointed at step 8 and resumed equals the whole run bit for bit; NFE is the
// step count.
func TestResume(t *testing.T) {
	be := newBackend(t)
	mean, vars := toyPrior(false)
	sr, _ := operator.NewAvgPoolSR(2)
	p := toyProblem(t, be, mean, vars, sr, toySigmaY, toyMeasurement(denseA(t, be, sr)), 3)
	params, err := solver.Resolve(New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	run, err := New().Prepare(p, params)
	if err != nil {
		t.Fatal(err)
	}
	whole := solvertest.CheckResume(t, run, p.Y, 3, 8)
	if whole.NFE != DefaultSteps || len(whole.Distances) != 3 {
		t.Errorf("NFE %d, %d distances; want %d, 3", whole.NFE, len(whole.Distances), DefaultSteps)
	}
}

// Bad input is refused before any work, with errors naming the solver and the culprit.
func TestBadInput(t *testing.T) {
	be := newBackend(t)
	mean, vars := toyPrior(false)
	sr, _ := operator.NewAvgPoolSR(2)
	good := func() *solver.Problem {
		return toyProblem(t, be, mean, vars, sr, toySigmaY, toyMeasurement(denseA(t, be, sr)), 2)
	}
	s := New()
	for _, c := range []struct {
		params map[string]any
		want   string
	}{
		{map[string]any{"zeta": 1}, "solver ddrm: unknown param zeta"},
		{map[string]any{"eta": 1.5}, "param eta: 1.5 must be ≤ 1"},
		{map[string]any{"eta": -0.1}, "param eta"},
		{map[string]any{"eta_b": 2}, "param eta_b: 2 must be ≤ 1"},
		{map[string]any{"cutoff": 1}, "param cutoff"},
		{map[string]any{"steps": 0}, "param steps"},
		{map[string]any{"respacing": "quad"}, "param respacing"},
	} {
		_, err := solver.Resolve(s, c.params)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "solver ddrm") {
			t.Errorf("params %v: %v, want an error with %q", c.params, err, c.want)
		}
	}
	check := func(p *solver.Problem, params map[string]any, want string) {
		t.Helper()
		resolved, err := solver.Resolve(s, params)
		if err != nil {
			t.Fatal(err)
		}
		err = solver.Check(s, p, resolved)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want an error with %q", err, want)
		}
	}
	// 300 steps: no integer stride of 1000 keeps exactly 300.
	check(good(), map[string]any{"steps": 300}, "solver ddrm: param steps")
	if err := solver.Check(s, good(), solver.Params{"steps": 300, "respacing": "even", "eta": 0.85, "eta_b": 1.0, "clip": false, "cutoff": 0.0}); err != nil {
		t.Errorf("300 even steps: %v", err)
	}
	motion, _ := operator.NewMotionBlur(5, 0.5, 1)
	p := good()
	p.Operator, p.Y = motion, nil
	check(p, nil, "solver ddrm needs the operator's svd, which motion_blur does not offer")
	p = good()
	p.Noise, _ = noise.NewPoisson(1)
	check(p, nil, "solver ddrm: models Gaussian measurement noise, and the problem's noise is poisson")
	p = good()
	p.Prior = nil
	check(p, nil, "solver ddrm needs a diffusion prior")
}

func denseMat(A [][]float64) *mat.Dense {
	out := mat.NewDense(len(A), len(A[0]), nil)
	for i, row := range A {
		out.SetRow(i, row)
	}
	return out
}

// rowSpaceProjector is A⁺A, the orthogonal projector on A's row space (from its SVD).
func rowSpaceProjector(A [][]float64) *mat.Dense {
	var svd mat.SVD
	if !svd.Factorize(denseMat(A), mat.SVDFull) {
		panic("svd")
	}
	var v mat.Dense
	svd.VTo(&v)
	s := svd.Values(nil)
	out := mat.NewDense(dim, dim, nil)
	for k, sk := range s {
		if sk < 1e-12*s[0] {
			continue
		}
		for i := range dim {
			for j := range dim {
				out.Set(i, j, out.At(i, j)+v.At(i, k)*v.At(j, k))
			}
		}
	}
	return out
}

// cutoff: with σ_y = 0 through a blur, singular values ≤ cutoff·max(s) are treated as
// unobserved, so A x = y holds exactly on the span of the kept left singular vectors and
// not on the others.
func TestCutoff(t *testing.T) {
	be := newBackend(t)
	mean, vars := toyPrior(false)
	blur, err := operator.NewGaussianBlur(3, 1)
	if err != nil {
		t.Fatal(err)
	}
	A := denseA(t, be, blur)
	xTrue := make([]float64, dim)
	for i := range xTrue {
		xTrue[i] = 0.7 * math.Cos(1.3*float64(i))
	}
	y := mulVec(A, xTrue)
	var svd mat.SVD
	if !svd.Factorize(denseMat(A), mat.SVDFull) {
		t.Fatal("svd")
	}
	var u mat.Dense
	svd.UTo(&u)
	s := svd.Values(nil)
	const cutoff = 0.3
	p := toyProblem(t, be, mean, vars, blur, 0, y, 2)
	for _, x := range solve(t, ddrm{}, p, map[string]any{"cutoff": cutoff, "eta": 1.0}, 4) {
		r := mulVec(A, x)
		kept, cut := 0.0, 0.0
		for k := range s {
			proj := 0.0
			for i := range r {
				proj += u.At(i, k) * (r[i] - y[i])
			}
			if s[k] > cutoff*s[0] {
				kept = math.Max(kept, math.Abs(proj))
			} else {
				cut = math.Max(cut, math.Abs(proj))
			}
		}
		t.Logf("s from %.3f to %.3f; residual on kept directions %.2e, on cut ones %.2e", s[0], s[len(s)-1], kept, cut)
		if kept > 1e-10 || cut < 1e-3 {
			t.Errorf("residual on kept directions %.3g (want ≤ 1e-10), on cut ones %.3g (want > 1e-3)", kept, cut)
		}
	}
}
