package daps

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
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/mat"
)

const dim = 16 // the toy images are [1, 4, 4]

// toy is the linear-Gaussian problem: x ~ N(μ, diag(s²)) on [1, 4, 4], 2× average-pool SR,
// Gaussian noise σ_y, the same y for all b samples.
type toy struct {
	p          *solver.Problem
	mean, vars []float64
	a          [][]float64 // A as a 4×16 matrix
	y          []float64   // one measurement (4 entries)
	sigmaY     float64
}

func newToy(t *testing.T, b int, sigmaY float64) *toy {
	t.Helper()
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	sched := schedule.Default()
	tc := &toy{mean: make([]float64, dim), vars: make([]float64, dim), sigmaY: sigmaY}
	for i := range dim {
		tc.mean[i], tc.vars[i] = 0.3*math.Sin(float64(i)), 0.1+0.02*float64(i)
	}
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{tc.mean}, [][]float64{tc.vars}, []int{1, 4, 4})
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.NewAvgPoolSR(2)
	if err != nil {
		t.Fatal(err)
	}
	tc.a = operatorMatrix(t, be, op)
	tc.y = []float64{0.6, -0.4, 0.1, 0.5} // far from A μ, so the posterior mean moves
	nm, err := noise.NewGaussian(sigmaY)
	if err != nil {
		t.Fatal(err)
	}
	ys := make([]float64, 0, 4*b)
	for range b {
		ys = append(ys, tc.y...)
	}
	tc.p = &solver.Problem{Prior: gmm, Schedule: sched, Operator: op, Noise: nm, Backend: be,
		Y: tensors.FromFlatDataAndDimensions(ys, b, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, b, 1, 4, 4)}
	return tc
}

// operatorMatrix is A's 4×16 matrix, read off by applying the operator to the basis.
func operatorMatrix(t *testing.T, be backends.Backend, op operator.Operator) [][]float64 {
	t.Helper()
	eye := make([]float64, dim*dim)
	for i := range dim {
		eye[i*dim+i] = 1
	}
	exec, err := graph.NewExec(be, func(x *graph.Node) *graph.Node { return op.Apply(x) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(eye, dim, 1, 4, 4))
	if err != nil {
		t.Fatal(err)
	}
	cols := tensors.MustCopyFlatData[float64](out) // [16 basis][4]
	a := make([][]float64, 4)
	for r := range 4 {
		a[r] = make([]float64, dim)
		for c := range dim {
			a[r][c] = cols[c*4+r]
		}
	}
	return a
}

// moments are the sample mean and covariance of rows of dim values.
func moments(rows [][]float64) (mean []float64, cov *mat.SymDense) {
	n := float64(len(rows))
	mean = make([]float64, dim)
	for _, r := range rows {
		for i, v := range r {
			mean[i] += v / n
		}
	}
	cov = mat.NewSymDense(dim, nil)
	for i := range dim {
		for j := i; j < dim; j++ {
			s := 0.0
			for _, r := range rows {
				s += (r[i] - mean[i]) * (r[j] - mean[j])
			}
			cov.SetSym(i, j, s/(n-1))
		}
	}
	return mean, cov
}

func split(flat []float64) [][]float64 {
	var rows [][]float64
	for i := 0; i+dim <= len(flat); i += dim {
		rows = append(rows, flat[i:i+dim])
	}
	return rows
}

// zScore is ‖mean(rows) − want‖ in standard errors: rows come in snapshots of `chains`
// independent chains; each chain's average over its snapshots is one independent draw.
func zScore(rows [][]float64, chains int, want []float64) float64 {
	per := make([][]float64, chains)
	for c := range per {
		per[c] = make([]float64, dim)
	}
	snaps := float64(len(rows) / chains)
	for i, r := range rows {
		for d, v := range r {
			per[i%chains][d] += v / snaps
		}
	}
	m, cv := moments(per)
	z := 0.0
	for d := range dim {
		z += (m[d] - want[d]) * (m[d] - want[d]) / (cv.At(d, d) / float64(chains))
	}
	return math.Sqrt(z)
}

func dist(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += (a[i] - b[i]) * (a[i] - b[i])
	}
	return math.Sqrt(s)
}

func trace(m mat.Symmetric) float64 {
	s := 0.0
	for i := range m.SymmetricDim() {
		s += m.At(i, i)
	}
	return s
}

// relFrob is ‖a − b‖_F / ‖b‖_F.
func relFrob(a, b mat.Symmetric) float64 {
	var d mat.Dense
	d.Sub(a, b)
	return mat.Norm(&d, 2) / mat.Norm(b, 2)
}

func symOf(rows [][]float64) *mat.SymDense {
	s := mat.NewSymDense(len(rows), nil)
	for i := range rows {
		for j := i; j < len(rows); j++ {
			s.SetSym(i, j, rows[i][j])
		}
	}
	return s
}

func defaultConfig(t *testing.T, given map[string]any) config {
	t.Helper()
	ps, err := solver.Resolve(New(), given)
	if err != nil {
		t.Fatal(err)
	}
	c, err := configFrom(ps)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// langevinChains runs c's Langevin step on many chains for the toy's target
// N(x0; x̂0, r² I)·N(y; A x0, τ² I) and returns the samples of the last `collect`
// snapshots (one every `every` steps after `burn` steps).
func langevinChains(t *testing.T, tc *toy, c config, x0hat []float64, r, tau, lr float64, burn, every, collect int) [][]float64 {
	t.Helper()
	p := tc.p
	b := p.XShape.Dimensions[0]
	hat := make([]float64, 0, b*dim)
	for range b {
		hat = append(hat, x0hat...)
	}
	xh := tensors.FromFlatDataAndDimensions(hat, b, 1, 4, 4)
	// One graph runs `every` steps from x; the first call starts at x̂0, as DAPS does.
	exec, err := graph.NewExec(p.Backend, func(x, rng *graph.Node) (*graph.Node, *graph.Node) {
		g := x.Graph()
		normal := func(s shapes.Shape) *graph.Node {
			var n *graph.Node
			rng, n = graph.RandomNormal(rng, s)
			return n
		}
		out := c.runLangevin(x, graph.Const(g, xh), graph.Scalar(g, dtypes.Float64, r), graph.Scalar(g, dtypes.Float64, lr), every,
			dataGradient(p, graph.Const(g, p.Y), tau), normal)
		return out, rng
	})
	if err != nil {
		t.Fatal(err)
	}
	rng, err := graph.RNGStateFromSeed(11)
	if err != nil {
		t.Fatal(err)
	}
	x, st := xh, rng
	var rows [][]float64
	for i := every; i <= burn+every*collect; i += every {
		outs, err := exec.Exec(x, st)
		if err != nil {
			t.Fatal(err)
		}
		x, st = outs[0], outs[1]
		if i > burn {
			rows = append(rows, split(tensors.MustCopyFlatData[float64](x))...)
		}
	}
	return rows
}

// The Langevin sub-step alone samples its target: on the toy (linear A, Gaussian terms)
// N(x0; x̂0, r² I)·N(y; A x0, τ² I) is the Gaussian prior.GaussianPosterior(x̂0, r², A, y,
// τ). Unadjusted Langevin with step η has, per eigenvalue λ of the precision, stationary
// variance 1/(λ(1 − ηλ/2)): with η·λ_max = 0.02 the covariance is 1 % too large at most,
// and after 600 steps (η·λ_min·600 = 6) the start has been forgotten to e^-6 of
// ‖x̂0 − m_post‖. 256 chains × 30 snapshots 60 steps apart give the trace to about 1 % and
// the mean to a standard error estimated from the chains' own averages. A chain without the
// √2 of the noise, or with the Gaussian term counted twice, misses the covariance by ~50 %.
func TestLangevinTargetsGaussianPosterior(t *testing.T) {
	tc := newToy(t, 256, 0.05)
	const r, tau, lr = 0.5, 0.25, 0.0025 // precisions: 1/r² = 4, ‖AᵀA‖/τ² = 4
	x0hat := make([]float64, dim)
	for i := range x0hat {
		x0hat[i] = 0.2 * math.Cos(float64(i))
	}
	r2 := make([]float64, dim)
	for i := range r2 {
		r2[i] = r * r
	}
	wantMean, wantCov := prior.GaussianPosterior(x0hat, r2, tc.a, tc.y, tau)
	cov0 := symOf(wantCov)
	// z is the mean's error in standard errors, from the 256 independent chains' own
	// averages: ‖·‖² of 16 standardised errors, about √16 = 4 when right.
	check := func(c config) (z, gap, ratio, frob float64) {
		rows := langevinChains(t, tc, c, x0hat, r, tau, lr, 600, 60, 30)
		m, cv := moments(rows)
		return zScore(rows, 256, wantMean), 1 - dist(m, wantMean)/dist(x0hat, wantMean), trace(cv) / trace(cov0), relFrob(cv, cov0)
	}
	fails := func(z, ratio, frob float64) bool { return z > 7 || ratio < 0.97 || ratio > 1.04 || frob > 0.07 }
	good := defaultConfig(t, nil)
	z, gap, ratio, frob := check(good)
	t.Logf("Langevin: mean error %.2f standard errors (gap closed %.4f of ‖x̂0 − m_post‖ = %.3f), covariance trace ratio %.4f, relative Frobenius error %.4f",
		z, gap, dist(x0hat, wantMean), ratio, frob)
	if fails(z, ratio, frob) {
		t.Errorf("Langevin does not sample its Gaussian target: z %.2f, trace ratio %.4f, Frobenius %.4f", z, ratio, frob)
	}
	for _, bad := range []struct {
		name string
		c    config
	}{{"noise √η instead of √(2η)", config{noiseFactor: math.Sqrt(0.5), priorWeight: 1}}, {"Gaussian term twice", config{noiseFactor: 1, priorWeight: 2}}} {
		c := good
		c.noiseFactor, c.priorWeight = bad.c.noiseFactor, bad.c.priorWeight
		z, gap, ratio, frob := check(c)
		t.Logf("broken (%s): z %.1f, gap %.4f, trace ratio %.4f, Frobenius %.4f", bad.name, z, gap, ratio, frob)
		if !fails(z, ratio, frob) {
			t.Errorf("the check does not catch a broken Langevin step (%s)", bad.name)
		}
	}
}

// odeOnce runs odeX0 on x (b×16 values) along the ODE grid of the first annealing step of c.
func odeOnce(t *testing.T, tc *toy, c config, x []float64) []float64 {
	t.Helper()
	p := tc.p
	pl := c.plan(p.Schedule)
	exec, err := graph.NewExec(p.Backend, func(x *graph.Node) *graph.Node {
		g, dt := x.Graph(), x.DType()
		var tab odeTables
		for j := range pl.odeT {
			tab.t = append(tab.t, graph.Const(g, int32(pl.odeT[j][0])))
			tab.sigma = append(tab.sigma, graph.Scalar(g, dt, pl.odeSig[j][0]))
			tab.sigmaNext = append(tab.sigmaNext, graph.Scalar(g, dt, pl.odeSigNext[j][0]))
			tab.scale = append(tab.scale, graph.Scalar(g, dt, pl.odeScale[j][0]))
		}
		return odeX0(p.Prior, x, tab)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(x, len(x)/dim, 1, 4, 4))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float64](out)
}

// The probability-flow ODE from σ to 0 on the Gaussian prior N(μ, s²) maps x to
// μ + (x − μ)·s/√(s² + σ²) per pixel. odeX0 is checked two ways: (a) it equals, to rounding,
// the same Euler steps on the host, where the exact prior's ε̂ at level σ is
// σ(x − μ)/(s² + σ²); (b) with 400 steps it lands on the closed-form flow within the floor
// of Euler's O(step) error and the prior's discrete levels (below σ ≈ 0.1 the 1000-step
// schedule is coarser than the ODE grid, so the snapped grid takes ~10 % steps there: the
// max error is ≈ 3–4e-3 from σ = 0.3 with 400 steps and with 1600 alike; 9e-3 from σ = 20
// with 400, 4.9e-3 with 1600), while one step (the Tweedie mean μ + (x − μ)·s²/(s² + σ²)) is far
// off, which shows the check discriminates. The official 5 steps are logged.
func TestODEMatchesGaussianFlow(t *testing.T) {
	tc := newToy(t, 64, 0.05)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sigma := range []float64{20, 0.3} {
		c := defaultConfig(t, map[string]any{"annealing_steps": 1, "sigma_max": sigma, "sigma_min": sigma / 2})
		sig := c.plan(tc.p.Schedule).sigma[0] // the snapped level
		x := make([]float64, 64*dim)
		want := make([]float64, len(x))
		for i := range x {
			d := i % dim
			s2 := tc.vars[d]
			x[i] = tc.mean[d] + math.Sqrt(s2+sig*sig)*rng.NormFloat64()
			want[i] = tc.mean[d] + (x[i]-tc.mean[d])*math.Sqrt(s2/(s2+sig*sig))
		}
		errs := func(steps int) (host, flow float64) {
			c.ode = steps
			pl := c.plan(tc.p.Schedule)
			got := odeOnce(t, tc, c, x)
			for i := range got {
				d, h := i%dim, x[i]
				for j := range pl.odeSig {
					s := pl.odeSig[j][0]
					h += (pl.odeSigNext[j][0] - s) * s * (h - tc.mean[d]) / (tc.vars[d] + s*s)
				}
				host = math.Max(host, math.Abs(got[i]-h))
				flow = math.Max(flow, math.Abs(got[i]-want[i]))
			}
			return host, flow
		}
		h400, e400 := errs(400)
		h5, e5 := errs(5)
		_, e1 := errs(1)
		t.Logf("σ = %.4g (snapped): max |x̂0 − closed-form flow|: 400 Euler steps %.2e, 5 steps %.2e, 1 step (Tweedie) %.2e; vs host Euler %.1e, %.1e",
			sig, e400, e5, e1, h400, h5)
		if h400 > 1e-10 || h5 > 1e-10 {
			t.Errorf("σ = %.4g: odeX0 differs from the host Euler steps by %.2e (400 steps), %.2e (5 steps)", sig, h400, h5)
		}
		if e400 > 1e-2 {
			t.Errorf("σ = %.4g: the 400-step ODE misses the closed-form flow by %.2e", sig, e400)
		}
		if e1 < 20*e400 {
			t.Errorf("σ = %.4g: the 1-step estimate (%.2e) is not distinguished from the flow (%.2e)", sig, e1, e400)
		}
	}
}

// reference propagates the exact mean and covariance of DAPS's iterate on the toy, on the
// host: every stage is affine in x plus independent Gaussian noise. Per annealing step k:
// the ODE is x̂0 = μ + G(x − μ) with G = diag(Π_j (1 + (σ_{j+1} − σ_j)σ_j/(s² + σ_j²)));
// L Langevin steps from x̂0 with M = I − η H, H = I/σ_k² + AᵀA/τ², give
// x0y = P x̂0 + q + noise, P ← M P + (η/σ²) I, q ← M q + η Aᵀy/τ², Σ ← M Σ Mᵀ + 2η I; then
// x_{k+1} = x0y + σ_{k+1} n. It returns the mean and covariance of the final x0y.
func reference(tc *toy, c config, tau float64) ([]float64, *mat.SymDense) {
	pl := c.plan(tc.p.Schedule)
	eye := func(v float64) *mat.Dense {
		d := mat.NewDense(dim, dim, nil)
		for i := range dim {
			d.Set(i, i, v)
		}
		return d
	}
	a := mat.NewDense(4, dim, nil)
	for r := range 4 {
		a.SetRow(r, tc.a[r])
	}
	var ata mat.Dense
	ata.Mul(a.T(), a)
	var aty mat.VecDense
	aty.MulVec(a.T(), mat.NewVecDense(4, append([]float64(nil), tc.y...)))
	mu := mat.NewVecDense(dim, append([]float64(nil), tc.mean...))
	m := mat.NewVecDense(dim, nil)
	cov := eye(pl.sigma[0] * pl.sigma[0])
	for k := range pl.sigma {
		g := make([]float64, dim)
		for d := range dim {
			g[d] = 1
			for j := range pl.odeSig {
				s := pl.odeSig[j][k]
				g[d] *= 1 + (pl.odeSigNext[j][k]-s)*s/(tc.vars[d]+s*s)
			}
		}
		gm := mat.NewDiagDense(dim, g)
		// x̂0's mean and covariance.
		var hm, tmp mat.VecDense
		tmp.SubVec(m, mu)
		hm.MulVec(gm, &tmp)
		hm.AddVec(&hm, mu)
		var hc mat.Dense
		hc.Mul(gm, cov)
		hc.Mul(&hc, gm)
		// Langevin.
		s2, lr := pl.sigma[k]*pl.sigma[k], pl.lr[k]
		mm := eye(1)
		var h mat.Dense
		h.Scale(1/(tau*tau), &ata)
		h.Add(&h, eye(1/s2))
		h.Scale(lr, &h)
		mm.Sub(mm, &h)
		p := eye(1)
		q := mat.NewVecDense(dim, nil)
		sig := mat.NewDense(dim, dim, nil)
		var drive mat.VecDense
		drive.ScaleVec(lr/(tau*tau), &aty)
		for range c.langevin {
			p.Mul(mm, p)
			p.Add(p, eye(lr/s2))
			q.MulVec(mm, q)
			q.AddVec(q, &drive)
			sig.Mul(mm, sig)
			sig.Mul(sig, mm.T())
			sig.Add(sig, eye(2*lr))
		}
		m.MulVec(p, &hm)
		m.AddVec(m, q)
		cov.Mul(p, &hc)
		cov.Mul(cov, p.T())
		cov.Add(cov, sig)
		if k+1 < len(pl.sigma) {
			cov.Add(cov, eye(pl.sigmaNext[k]*pl.sigmaNext[k]))
		}
	}
	out := mat.NewSymDense(dim, nil)
	for i := range dim {
		for j := i; j < dim; j++ {
			out.SetSym(i, j, (cov.At(i, j)+cov.At(j, i))/2)
		}
	}
	return m.RawVector().Data, out
}

// exactParams is the small run of the linear-Gaussian test: the exact likelihood (τ = σ_y),
// 20 annealing steps, 5 ODE steps, 50 Langevin steps with η = 1e-3 annealed to 1e-4 (the
// official η = 1e-4 with 100 steps does not relax the data term at τ = σ_y = 0.05:
// η·λ·L = 1e-4·100·100 = 1).
var exactParams = map[string]any{"tau": 0, "annealing_steps": 20, "ode_steps": 5, "langevin_steps": 50, "lr": 1e-3, "lr_min_ratio": 0.1}

// Linear-Gaussian exactness. DAPS is not exact even here: it replaces p(x0 | x_σ), which is
// N(Tweedie mean, s²σ²/(s² + σ²)), by N(ODE x̂0, σ²), and its Langevin chains do not fully
// relax. What it samples is known in closed form, though: every stage is affine plus
// Gaussian noise, and reference propagates the mean and covariance on the host. So (a) 512
// samples of the compiled solver must match reference: the mean within 7 standard errors
// over 16 coordinates (χ₁₆ ≈ 4 when right), the trace of the covariance within 4 of its
// standard deviations √(2 tr(C²)/(n−1)), and Nagao's (n−1)/2·tr((S C⁻¹ − I)²), χ²₁₃₆ when
// right (136 ± 16.5), below 136 + 5·16.5; and (b) the bounds against the true posterior follow from
// reference's numbers (gap closed 0.874, covariance ratio 0.945) with those margins:
// gap closed ≥ 0.8 and covariance ratio in [0.8, 1.1]. A Langevin step with noise √η
// instead of √(2η) fails (a).
func TestLinearGaussian(t *testing.T) {
	const n = 512
	tc := newToy(t, n, 0.05)
	postMean, postCov := prior.GaussianPosterior(tc.mean, tc.vars, tc.a, tc.y, tc.sigmaY)
	cov0 := symOf(postCov)
	c := defaultConfig(t, exactParams)
	refMean, refCov := reference(tc, c, tc.sigmaY)
	var c2 mat.Dense
	c2.Mul(refCov, refCov)
	trSD := math.Sqrt(2 * mat.Trace(&c2) / (n - 1))
	refGap, refRatio := 1-dist(refMean, postMean)/dist(tc.mean, postMean), trace(refCov)/trace(cov0)
	t.Logf("reference (host propagation): gap closed %.4f, covariance ratio %.4f", refGap, refRatio)

	var refInv mat.Dense
	if err := refInv.Inverse(refCov); err != nil {
		t.Fatal(err)
	}
	run := func(c config) (z, trErr, nagao, gap, ratio float64) {
		sp, err := c.spec(tc.p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := diffusion.Prepare(sp)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.Solve(context.Background(), tc.p.Y, 5, solver.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		rows := split(tensors.MustCopyFlatData[float64](res.X))
		m, cv := moments(rows)
		z = 0
		for d := range dim {
			z += (m[d] - refMean[d]) * (m[d] - refMean[d]) / (refCov.At(d, d) / n)
		}
		var e mat.Dense
		e.Mul(cv, &refInv)
		for d := range dim {
			e.Set(d, d, e.At(d, d)-1)
		}
		var e2 mat.Dense
		e2.Mul(&e, &e)
		return math.Sqrt(z), (trace(cv) - trace(refCov)) / trSD, float64(n-1) / 2 * mat.Trace(&e2),
			1 - dist(m, postMean)/dist(tc.mean, postMean), trace(cv) / trace(cov0)
	}
	fails := func(z, trErr, nagao float64) bool { return z > 7 || math.Abs(trErr) > 4 || nagao > 136+5*16.5 }
	z, trErr, nagao, gap, ratio := run(c)
	t.Logf("daps samples: gap closed %.4f, covariance ratio %.4f; vs reference: mean %.2f standard errors, trace %+.2f SD, Nagao %.0f (χ²₁₃₆ when right)",
		gap, ratio, z, trErr, nagao)
	if fails(z, trErr, nagao) {
		t.Errorf("the solver's samples do not follow the propagated law: mean %.2f standard errors, trace %+.2f SD, Nagao %.0f", z, trErr, nagao)
	}
	if gap < 0.8 || ratio < 0.8 || ratio > 1.1 {
		t.Errorf("gap closed %.4f (want ≥ 0.8), covariance ratio %.4f (want in [0.8, 1.1])", gap, ratio)
	}
	bad := c
	bad.noiseFactor = math.Sqrt(0.5)
	z, trErr, nagao, gap, ratio = run(bad)
	t.Logf("broken (Langevin noise √η instead of √(2η)): gap %.4f, ratio %.4f; vs reference: %.2f standard errors, trace %+.2f SD, Nagao %.0f",
		gap, ratio, z, trErr, nagao)
	if !fails(z, trErr, nagao) {
		t.Error("the comparison with the propagated law does not catch a broken Langevin step")
	}
}

// A run checkpointed at step 8 and resumed ends bit for bit where the whole run ends (the
// state is x and the random-number state; the step index drives every table).
func TestResume(t *testing.T) {
	tc := newToy(t, 3, 0.05)
	s := New()
	params, err := solver.Resolve(s, exactParams)
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.Prepare(tc.p, params)
	if err != nil {
		t.Fatal(err)
	}
	whole := solvertest.CheckResume(t, run, tc.p.Y, 9, 8)
	if whole.NFE != 20*5 || len(whole.Distances) != 3 {
		t.Errorf("NFE %d (want 100), %d distances", whole.NFE, len(whole.Distances))
	}
}

// DAPS needs no operator capability: a nonlinear operator (phase retrieval) runs, with the
// data gradient taken through it, and the default τ works with Poisson noise.
func TestAnyOperator(t *testing.T) {
	tc := newToy(t, 2, 0.05)
	pr, err := operator.NewPhaseRetrieval(2)
	if err != nil {
		t.Fatal(err)
	}
	pois, err := noise.NewPoisson(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, nm := range []noise.Model{tc.p.Noise, pois} {
		p := *tc.p
		p.Operator, p.Noise = pr, nm
		ys, err := pr.MeasurementShape(p.XShape)
		if err != nil {
			t.Fatal(err)
		}
		yv := make([]float64, ys.Size())
		for i := range yv {
			yv[i] = 0.5
		}
		p.Y = tensors.FromFlatDataAndDimensions(yv, ys.Dimensions...)
		res, err := solver.Solve(context.Background(), New(), &p, map[string]any{"annealing_steps": 4, "ode_steps": 2, "langevin_steps": 3}, 1, solver.Hooks{})
		if err != nil {
			t.Fatalf("%s noise: %v", nm.Name(), err)
		}
		t.Logf("%s noise: x[:4] = %.3f, NFE %d, distances %.3f", nm.Name(), tensors.MustCopyFlatData[float64](res.X)[:4], res.NFE, res.Distances)
		for _, v := range tensors.MustCopyFlatData[float64](res.X) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("%s noise: non-finite output", nm.Name())
			}
		}
	}
}

// Bad input is refused before any work, by errors that name the solver and the culprit.
func TestBadInput(t *testing.T) {
	s := New()
	for _, c := range []struct {
		given map[string]any
		want  []string
	}{
		{map[string]any{"steps": 10}, []string{"daps", "unknown param steps"}},
		{map[string]any{"langevin_steps": -1}, []string{"daps", "langevin_steps"}},
		{map[string]any{"lr": 0}, []string{"daps", "lr"}},
		{map[string]any{"tau": -0.1}, []string{"daps", "tau"}},
		{map[string]any{"annealing_steps": 0}, []string{"daps", "annealing_steps"}},
		{map[string]any{"sigma_min": 200}, []string{"daps", "sigma_min", "sigma_max"}},
		{map[string]any{"ode_sigma_min": 0.5}, []string{"daps", "ode_sigma_min"}},
	} {
		_, err := solver.Resolve(s, c.given)
		if err == nil {
			t.Errorf("%v was accepted", c.given)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.given, err, w)
			}
		}
	}
	tc := newToy(t, 1, 0.05)
	pois, _ := noise.NewPoisson(1)
	noPrior := *tc.p
	noPrior.Prior = nil
	withPoisson := *tc.p
	withPoisson.Noise = pois
	for _, c := range []struct {
		p     *solver.Problem
		given map[string]any
		want  []string
	}{
		{&noPrior, nil, []string{"daps", "prior"}},
		{tc.p, map[string]any{"sigma_max": 500}, []string{"daps", "sigma_max", "157"}},
		{&withPoisson, map[string]any{"tau": 0}, []string{"daps", "tau", "Gaussian", "poisson"}},
	} {
		ps, err := solver.Resolve(s, c.given)
		if err != nil {
			t.Fatal(err)
		}
		err = solver.Check(s, c.p, ps)
		if err == nil {
			t.Errorf("%v was accepted", c.given)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", c.given, err, w)
			}
		}
		if _, err := solver.Solve(context.Background(), s, c.p, c.given, 1, solver.Hooks{}); err == nil {
			t.Errorf("Solve accepted %v", c.given)
		}
	}
}
