package daps

import (
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

func init() { solver.MustRegister(New()) }

// Name is the solver's registered name.
const Name = "daps"

// New is the daps solver (also registered as "daps").
func New() solver.Solver { return dapsSolver{} }

type dapsSolver struct{}

var params = []solver.Param{
	{Name: "annealing_steps", Type: solver.Int, Default: 200, Min: 1, MinSet: true,
		Doc: "annealing steps N over the noise levels σ_max … σ_min (then 0); each is one ODE + Langevin block (paper/official DAPS-1K: 200)"},
	{Name: "sigma_max", Type: solver.Float, Default: 100.0, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "largest annealing noise level σ_0 in the VE picture x = x0 + σ·n ([-1, 1] units, ≤ the prior's largest σ ≈ 157; official: 100)"},
	{Name: "sigma_min", Type: solver.Float, Default: 0.1, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "smallest annealing noise level σ_{N−1} ([-1, 1] units, < sigma_max; official: 0.1)"},
	{Name: "rho", Type: solver.Float, Default: 7.0, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "ρ of the polynomial (EDM \"poly-ρ\") spacing of both the annealing and the ODE noise levels: σ_i = (σ_max^{1/ρ} + i/(N−1)·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ (official: 7)"},
	{Name: "ode_steps", Type: solver.Int, Default: 5, Min: 1, MinSet: true,
		Doc: "Euler steps (network evaluations) of the probability-flow ODE from σ_i to 0 that gives x̂0 at each annealing step; 1 is the Tweedie estimate (official DAPS-1K: 5)"},
	{Name: "ode_sigma_min", Type: solver.Float, Default: 0.01, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "last nonzero noise level of each ODE grid before the final step to 0 ([-1, 1] units, ≤ sigma_min; official: 0.01)"},
	{Name: "langevin_steps", Type: solver.Int, Default: 100, Min: 0, MinSet: true,
		Doc: "Langevin steps on p(x0 | x_i, y) per annealing step (no network evaluations); 0 skips the measurement (official pixel tasks: 100; nonlinear blur 2025 config: 200)"},
	{Name: "lr", Type: solver.Float, Default: 1e-4, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "Langevin step size η_0 (in squared [-1, 1] units), annealed to η_0·lr_min_ratio; needs η·(1/σ_min² + L/τ²) < 2 with L the Lipschitz constant of ∇‖A(x)‖²/2 (official: 1e-4; phase retrieval 5e-5; nonlinear blur 5e-5 (2024) / 1e-5 (2025))"},
	{Name: "lr_min_ratio", Type: solver.Float, Default: 0.01, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "the step size at annealing step i is lr·(1 + (i/N)·(lr_min_ratio − 1)), linear from lr to about lr·lr_min_ratio (official: 0.01)"},
	{Name: "tau", Type: solver.Float, Default: 0.01, Min: 0, MinSet: true,
		Doc: "τ of the Langevin likelihood exp(−d(y, A(x0))²/(2τ²)), d the noise model's distance (‖y − A x0‖ for Gaussian noise), [-1, 1] units; 0 uses the Gaussian noise model's σ_y (the exact likelihood) (official: 0.01 with σ_y = 0.05)"},
}

func (dapsSolver) Info() solver.Info {
	return solver.Info{Name: Name, NeedsPrior: true, Params: params,
		Doc: "Decoupled Annealing Posterior Sampling (Zhang et al., CVPR 2025): anneal σ; x̂0 by a few-step PF-ODE, Langevin on N(x0; x̂0, σ²)·p(y|x0), renoise"}
}

// ValidateParams checks the params that constrain each other.
func (dapsSolver) ValidateParams(p solver.Params) error {
	if !(p.Float("sigma_min") < p.Float("sigma_max")) {
		return fmt.Errorf("param sigma_min %v must be below sigma_max %v", p.Float("sigma_min"), p.Float("sigma_max"))
	}
	if p.Float("ode_sigma_min") > p.Float("sigma_min") {
		return fmt.Errorf("param ode_sigma_min %v must not exceed sigma_min %v", p.Float("ode_sigma_min"), p.Float("sigma_min"))
	}
	return nil
}

// CheckProblem refuses a sigma_max beyond the prior's schedule and tau = 0 without a
// Gaussian noise model.
func (dapsSolver) CheckProblem(p *solver.Problem, params solver.Params) error {
	cfg, err := configFrom(params)
	if err != nil {
		return err
	}
	_, err = cfg.resolveTau(p)
	if err != nil {
		return err
	}
	return checkSigmaMax(scheduleOf(p), cfg.sigmaMax)
}

func (s dapsSolver) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	cfg, err := configFrom(params)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", Name, err)
	}
	sp, err := cfg.spec(p)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", Name, err)
	}
	return diffusion.Prepare(sp)
}

// config is the resolved params, plus knobs the in-package tests flip to break one term.
type config struct {
	annealing, ode, langevin                             int
	sigmaMax, sigmaMin, rho, odeSigmaMin, lr, lrMin, tau float64

	// noiseFactor multiplies the Langevin noise √(2η) (1 is right) and priorWeight the
	// Gaussian term (x̂0 − x)/σ² (1 is right): tests set them to show the checks catch it.
	noiseFactor, priorWeight float64
}

func configFrom(p solver.Params) (config, error) {
	c := config{annealing: p.Int("annealing_steps"), ode: p.Int("ode_steps"), langevin: p.Int("langevin_steps"),
		sigmaMax: p.Float("sigma_max"), sigmaMin: p.Float("sigma_min"), rho: p.Float("rho"), odeSigmaMin: p.Float("ode_sigma_min"),
		lr: p.Float("lr"), lrMin: p.Float("lr_min_ratio"), tau: p.Float("tau"), noiseFactor: 1, priorWeight: 1}
	return c, c.validate()
}

// validate repeats Resolve's checks for configs built in Go.
func (c config) validate() error {
	pos := func(name string, v float64) error {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("param %s must be a positive number, got %v", name, v)
		}
		return nil
	}
	for _, e := range []error{pos("sigma_max", c.sigmaMax), pos("sigma_min", c.sigmaMin), pos("rho", c.rho),
		pos("ode_sigma_min", c.odeSigmaMin), pos("lr", c.lr), pos("lr_min_ratio", c.lrMin)} {
		if e != nil {
			return e
		}
	}
	switch {
	case c.annealing < 1:
		return fmt.Errorf("param annealing_steps must be ≥ 1, got %d", c.annealing)
	case c.ode < 1:
		return fmt.Errorf("param ode_steps must be ≥ 1, got %d", c.ode)
	case c.langevin < 0:
		return fmt.Errorf("param langevin_steps must be ≥ 0, got %d", c.langevin)
	case !(c.tau >= 0) || math.IsInf(c.tau, 0):
		return fmt.Errorf("param tau must be a number ≥ 0, got %v", c.tau)
	case !(c.sigmaMin < c.sigmaMax):
		return fmt.Errorf("param sigma_min %v must be below sigma_max %v", c.sigmaMin, c.sigmaMax)
	case c.odeSigmaMin > c.sigmaMin:
		return fmt.Errorf("param ode_sigma_min %v must not exceed sigma_min %v", c.odeSigmaMin, c.sigmaMin)
	}
	return nil
}

// resolveTau is τ, or the Gaussian noise's σ_y for tau = 0.
func (c config) resolveTau(p *solver.Problem) (float64, error) {
	if c.tau > 0 {
		return c.tau, nil
	}
	s, err := diffusion.GaussianSigma(p)
	if err != nil {
		return 0, fmt.Errorf("param tau = 0 (τ = σ_y) needs Gaussian measurement noise, and the problem's noise is %s: give tau > 0", p.Noise.Name())
	}
	if !(s > 0) {
		return 0, fmt.Errorf("param tau = 0 means τ = σ_y, and the noise's σ_y is %v: give tau > 0", s)
	}
	return s, nil
}

func scheduleOf(p *solver.Problem) *schedule.Schedule {
	if p.Schedule != nil {
		return p.Schedule
	}
	return schedule.Default()
}

// sigmaOf is the VE noise level √((1−ᾱ)/ᾱ) of schedule index i.
func sigmaOf(sched *schedule.Schedule, i int) float64 {
	a := sched.AlphaBars[i]
	return math.Sqrt((1 - a) / a)
}

func checkSigmaMax(sched *schedule.Schedule, sigmaMax float64) error {
	top := sigmaOf(sched, sched.Len()-1)
	if sigmaMax > top*(1+1e-9) {
		return fmt.Errorf("param sigma_max %v exceeds the prior's largest noise level %.4g (step %d of its schedule)", sigmaMax, top, sched.Timesteps[sched.Len()-1])
	}
	return nil
}

// level is a noise level snapped to the prior's schedule: the index whose σ is nearest, its
// network timestep, its σ and √ᾱ = 1/√(1+σ²).
type level struct {
	t            int
	sigma, scale float64
}

func snap(sched *schedule.Schedule, sigma float64) level {
	i := diffusion.NearestStep(sched, sigma)
	return level{t: sched.Timesteps[i], sigma: sigmaOf(sched, i), scale: math.Sqrt(sched.AlphaBars[i])}
}

// polySigmas are n levels from hi down to lo spaced as (hi^{1/ρ} + r·(lo^{1/ρ} − hi^{1/ρ}))^ρ,
// r = i/(n−1); n = 1 is hi alone (numpy's linspace(0, 1, 1) = [0]).
func polySigmas(hi, lo, rho float64, n int) []float64 {
	out := make([]float64, n)
	a, b := math.Pow(hi, 1/rho), math.Pow(lo, 1/rho)
	for i := range out {
		r := 0.0
		if n > 1 {
			r = float64(i) / float64(n-1)
		}
		out[i] = math.Pow(a+r*(b-a), rho)
	}
	return out
}

// plan is the host tables of a run, in loop order (index k = annealing step).
type plan struct {
	timestep         []int     // the diffusion step of σ_k (for divergence reports)
	sigma, sigmaNext []float64 // σ_k and σ_{k+1} (0 after the last)
	lr               []float64 // η_k
	// ODE point j of annealing step k: timestep, σ, the next σ (0 after the last), √ᾱ.
	odeT                         [][]int // [j][k]
	odeSig, odeSigNext, odeScale [][]float64
}

func (c config) plan(sched *schedule.Schedule) *plan {
	n, m := c.annealing, c.ode
	pl := &plan{odeT: make([][]int, m), odeSig: make([][]float64, m), odeSigNext: make([][]float64, m), odeScale: make([][]float64, m)}
	levels := polySigmas(c.sigmaMax, c.sigmaMin, c.rho, n)
	snapped := make([]level, n)
	for k, s := range levels {
		snapped[k] = snap(sched, s)
	}
	for k, lv := range snapped {
		pl.timestep = append(pl.timestep, lv.t)
		pl.sigma = append(pl.sigma, lv.sigma)
		next := 0.0
		if k+1 < n {
			next = snapped[k+1].sigma
		}
		pl.sigmaNext = append(pl.sigmaNext, next)
		pl.lr = append(pl.lr, c.lr*(1+float64(k)/float64(n)*(c.lrMin-1)))
		// The ODE grid starts at the state's own (snapped) level.
		ode := polySigmas(lv.sigma, c.odeSigmaMin, c.rho, m)
		for j := range m {
			o := lv
			if j > 0 {
				o = snap(sched, ode[j])
			}
			pl.odeT[j] = append(pl.odeT[j], o.t)
			pl.odeSig[j] = append(pl.odeSig[j], o.sigma)
			pl.odeScale[j] = append(pl.odeScale[j], o.scale)
		}
		for j := range m {
			next := 0.0
			if j+1 < m {
				next = pl.odeSig[j+1][k]
			}
			pl.odeSigNext[j] = append(pl.odeSigNext[j], next)
		}
	}
	return pl
}

// odeTables are one ODE grid's graph inputs: per Euler step j, the network timestep (int32
// scalar), σ_j, σ_{j+1} and √ᾱ_j (scalars of x's dtype).
type odeTables struct {
	t                       []*Node
	sigma, sigmaNext, scale []*Node
}

// odeX0 integrates the probability-flow ODE dx/dσ = ε̂ from the first σ of tab to 0 by Euler
// steps x ← x + (σ_{j+1} − σ_j)·ε̂(√ᾱ_j·x, t_j): in the VE picture x = x0 + σ·n the
// prior's ε̂ at x_t = √ᾱ·x is −σ·∇ log p_σ(x), so this is EDM's Euler step on
// dx/dσ = −σ∇ log p_σ(x) (and DDIM with η = 0 on the same levels).
func odeX0(pr prior.Prior, x *Node, tab odeTables) *Node {
	b := x.Shape().Dimensions[0]
	for j := range tab.t {
		eps, _ := pr.Predict(Mul(x, tab.scale[j]), BroadcastToDims(tab.t[j], b))
		x = Add(x, Mul(Sub(tab.sigmaNext[j], tab.sigma[j]), eps))
	}
	return x
}

// runLangevin runs steps of unadjusted Langevin dynamics from x (DAPS starts at x̂0) on
//
//	log p(x | x0hat, y) = −‖x − x0hat‖²/(2σ²) − E(x) + const,
//
// x ← x + η·((x0hat − x)/σ² − ∇E(x)) + √(2η)·n, where dataGrad(x) = ∇E(x); sigma and lr
// are scalars of x's dtype.
func (c config) runLangevin(x, x0hat, sigma, lr *Node, steps int, dataGrad func(x *Node) *Node, normal func(shapes.Shape) *Node) *Node {
	if steps == 0 {
		return x
	}
	prec := MulScalar(Inverse(Square(sigma)), c.priorWeight)
	amp := MulScalar(Sqrt(MulScalar(lr, 2)), c.noiseFactor)
	for range steps {
		score := Sub(Mul(Sub(x0hat, x), prec), dataGrad(x))
		x = Add(Add(x, Mul(lr, score)), Mul(amp, normal(x.Shape())))
	}
	return x
}

// dataGradient is ∇_x E with E(x) = Σ_b d_b(y, A(x))²/(2τ²): d² = ‖y − A(x)‖² computed
// directly for Gaussian noise, the noise model's Distance squared otherwise; the gradient
// is graph.Gradient through the operator (any operator, linear or not).
func dataGradient(p *solver.Problem, y *Node, tau float64) func(x *Node) *Node {
	_, gaussian := p.Noise.(*noise.Gaussian)
	return func(x *Node) *Node {
		// The chain starts at x̂0, a StopGradient node, and GoMLX's gradient with respect
		// to a StopGradient node is zero: differentiate with respect to a copy.
		x = AddScalar(x, 0)
		ax := p.Operator.Apply(x)
		var d2 *Node
		if gaussian {
			r := Sub(y, ax)
			d2 = diffusion.Inner(r, r)
		} else {
			d2 = Square(p.Noise.Distance(y, ax))
		}
		e := MulScalar(ReduceAllSum(d2), 1/(2*tau*tau))
		return Gradient(e, x)[0]
	}
}

// spec builds the compiled loop: state X is the VE iterate x_k = x0 + σ_k·n.
func (c config) spec(p *solver.Problem) (diffusion.Spec, error) {
	if err := c.validate(); err != nil {
		return diffusion.Spec{}, err
	}
	if p == nil || p.Prior == nil {
		return diffusion.Spec{}, fmt.Errorf("needs a diffusion prior")
	}
	tau, err := c.resolveTau(p)
	if err != nil {
		return diffusion.Spec{}, err
	}
	sched := scheduleOf(p)
	if err := checkSigmaMax(sched, c.sigmaMax); err != nil {
		return diffusion.Spec{}, err
	}
	pl := c.plan(sched)
	shape := p.XShape
	return diffusion.Spec{Name: Name, Problem: p, Steps: c.annealing, NFE: c.annealing * c.ode, Timesteps: pl.timestep,
		Init: func(s *diffusion.Start) (*Node, []*Node) {
			return MulScalar(s.Normal(shape), pl.sigma[0]), nil
		},
		Step: func(s *diffusion.Step) diffusion.Out {
			tab := odeTables{}
			for j := range pl.odeT {
				tab.t = append(tab.t, s.AtInt(pl.odeT[j]))
				tab.sigma = append(tab.sigma, s.At(pl.odeSig[j]))
				tab.sigmaNext = append(tab.sigmaNext, s.At(pl.odeSigNext[j]))
				tab.scale = append(tab.scale, s.At(pl.odeScale[j]))
			}
			x0hat := StopGradient(odeX0(p.Prior, s.X, tab))
			x0y := c.runLangevin(x0hat, x0hat, s.At(pl.sigma), s.At(pl.lr), c.langevin, dataGradient(p, s.Y, tau), s.Normal)
			next := Add(x0y, Mul(s.At(pl.sigmaNext), s.Normal(shape)))
			return diffusion.Out{X: next, Estimate: x0y}
		}}, nil
}
