package admm

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

func init() {
	solver.MustRegister(TVSolver())
	solver.MustRegister(PnPSolver())
}

// TVSolver is admm-tv (also registered).
func TVSolver() solver.Solver { return tvSolver{} }

// PnPSolver is pnp-admm with the Tweedie denoiser (also registered).
func PnPSolver() solver.Solver { return pnpSolver{} }

// PnP is plug-and-play ADMM under name with a denoiser written in Go: denoise(v, sigma)
// returns the denoised v ([B, C, H, W], v's dtype) for Gaussian noise of standard deviation
// sigma ([-1, 1] units, the sigma param). It needs no prior and is not registered.
func PnP(name string, denoise func(v *graph.Node, sigma float64) *graph.Node) solver.Solver {
	return pnpSolver{name: name, denoise: denoise}
}

var (
	paramRho = func(def float64) solver.Param {
		return solver.Param{Name: "rho", Type: solver.Float, Default: def, Min: 0, MinSet: true, MinExclusive: true,
			Doc: "ADMM penalty ρ > 0 on x = z (the data term ½‖Ax − y‖² has unit weight, y in [-1, 1] units)"}
	}
	paramIters = func(def int) solver.Param {
		return solver.Param{Name: "iters", Type: solver.Int, Default: def, Min: 1, MinSet: true, Doc: "ADMM iterations"}
	}
	paramCG = solver.Param{Name: "cg_iters", Type: solver.Int, Default: 20, Min: 1, MinSet: true,
		Doc: "conjugate-gradient steps of the data step, for operators with an adjoint but no data-prox"}
)

// dataProx is argmin_x ½‖A x − y‖² + (ρ/2)‖x − v‖².
func dataProx(op operator.Operator, v, y *graph.Node, rho float64, cgIters int) *graph.Node {
	return operator.ProxDataOrCG(op, v, y, graph.Scalar(v.Graph(), v.DType(), rho), cgIters)
}

// start is the initial x = z: the data step from zero, argmin ½‖Ax − y‖² + (ρ/2)‖x‖², a
// regularised A⁺y that stays bounded for ill-conditioned operators (A⁺y of a blur amplifies
// the noise by orders of magnitude, which the z-step would take thousands of iterations to
// shrink).
func start(op operator.Operator, y *graph.Node, xShape shapes.Shape, rho float64, cgIters int) *graph.Node {
	return dataProx(op, graph.Zeros(y.Graph(), xShape), y, rho, cgIters)
}

// spec is what differs between the ADMM solvers: the z-step.
type spec struct {
	name  string
	rho   float64
	iters int
	cg    int
	nfe   int
	zStep func(v *graph.Node) *graph.Node
	mctx  *mlctx.Context // the prior's weights, if any
}

// prepare compiles the start and step graphs of s for p.
func prepare(p *solver.Problem, s spec) (solver.Run, error) {
	if s.rho <= 0 || math.IsNaN(s.rho) || math.IsInf(s.rho, 0) {
		return nil, fmt.Errorf("solver %s: rho must be a positive number, got %v", s.name, s.rho)
	}
	if s.iters < 1 {
		return nil, fmt.Errorf("solver %s: iters must be ≥ 1, got %d", s.name, s.iters)
	}
	if err := operator.CheckDataStep(p.Operator); err != nil {
		return nil, fmt.Errorf("solver %s: %w", s.name, err)
	}
	op, nm, shape := p.Operator, p.Noise, p.XShape
	ctx := s.mctx
	if ctx == nil {
		ctx = mlctx.New()
	}
	r := &run{spec: s, backend: p.Backend, shape: shape, op: op}
	var err error
	r.init, err = graph.NewExec(p.Backend, func(y *graph.Node) *graph.Node { return start(op, y, shape, s.rho, s.cg) })
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", s.name, err)
	}
	r.step, err = mlctx.NewExec(p.Backend, ctx, func(_ *mlctx.Context, in []*graph.Node) []*graph.Node {
		z, u, y := in[0], in[1], in[2]
		x := dataProx(op, graph.Sub(z, u), y, s.rho, s.cg)
		xu := graph.Add(x, u)
		zn := s.zStep(xu)
		un := graph.Sub(xu, zn)
		dist := nm.Distance(y, op.Apply(x))
		bad := graph.ReduceLogicalOr(graph.LogicalNot(graph.IsFinite(graph.Concatenate([]*graph.Node{x, zn, un}, 0))))
		return []*graph.Node{x, zn, un, dist, graph.LogicalNot(bad)}
	})
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", s.name, err)
	}
	return r, nil
}

type run struct {
	spec
	backend backends.Backend
	shape   shapes.Shape
	op      operator.Operator
	ctx     *mlctx.Context
	init    *graph.Exec
	step    *mlctx.Exec
}

func (r *run) Solve(ctx context.Context, y *tensors.Tensor, seed uint64, h solver.Hooks) (*solver.Result, error) {
	wantY, err := r.op.MeasurementShape(r.shape)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", r.name, err)
	}
	out, err := solver.LoopOn(ctx, "solver "+r.name, r.backend, y, wantY, r.shape,
		func(y *tensors.Tensor) solver.Iteration { return &iteration{r: r, y: y} }, seed, h)
	if err != nil {
		return nil, err
	}
	for _, t := range out.State.Aux {
		t.FinalizeAll()
	}
	return &solver.Result{X: out.State.X, Distances: out.Distances, NFE: r.nfe}, nil
}

// iteration is one ADMM run as a solver.Iteration.
type iteration struct {
	r *run
	y *tensors.Tensor
}

func (it *iteration) Steps() int { return it.r.iters }

func (it *iteration) Start(_ uint64, resume *solver.State) (solver.State, error) {
	if resume != nil {
		if len(resume.Aux) != 2 || resume.Aux[0] == nil || resume.Aux[1] == nil {
			return solver.State{}, errors.New("the resume state lacks ADMM's z and u (Aux)")
		}
		for i, t := range []*tensors.Tensor{resume.X, resume.Aux[0], resume.Aux[1]} {
			if !t.Shape().Equal(it.r.shape) {
				return solver.State{}, fmt.Errorf("the resume state's tensor %d has shape %s, not %s", i, t.Shape(), it.r.shape)
			}
		}
		return solver.OnBackend(solver.State{X: resume.X, Aux: resume.Aux}, it.r.backend)
	}
	x0, err := it.r.init.Exec1(it.y)
	if err != nil {
		return solver.State{}, fmt.Errorf("the starting point: %w", err)
	}
	z0, err := x0.OnDeviceClone(it.r.backend, 0)
	if err != nil {
		return solver.State{}, err
	}
	return solver.State{X: x0, Aux: []*tensors.Tensor{z0, tensors.FromShape(it.r.shape)}}, nil
}

func (it *iteration) Step(st solver.State) (solver.State, solver.StepOutput, error) {
	outs, err := it.r.step.Exec(st.Aux[0], st.Aux[1], it.y)
	if err != nil {
		return solver.State{}, solver.StepOutput{}, err
	}
	return solver.State{X: outs[0], Aux: []*tensors.Tensor{outs[1], outs[2]}},
		solver.StepOutput{Estimate: outs[0], Distances: outs[3], Finite: outs[4]}, nil
}

// tvSolver is admm-tv.
type tvSolver struct{}

func (tvSolver) Info() solver.Info {
	return solver.Info{Name: "admm-tv",
		Doc: "ADMM for ½‖Ax − y‖² + λ·TV(x), isotropic TV prox by Chambolle's projection (Boyd et al. 2011; Chambolle 2004)",
		Params: []solver.Param{
			{Name: "lambda", Type: solver.Float, Default: 0.01, Min: 0, MinSet: true,
				Doc: "TV weight λ (x and y in [-1, 1] units; σ = 0.05 noise): of 0.005, 0.01, 0.02 on 8 MNIST digits, 0.01 is best or near it on every preset task"},
			paramRho(1),
			paramIters(200),
			{Name: "tv_iters", Type: solver.Int, Default: 50, Min: 1, MinSet: true,
				Doc: "Chambolle iterations of each TV prox (from zero dual, τ = 1/4)"},
			paramCG,
		}}
}

func (tvSolver) CheckProblem(p *solver.Problem, _ solver.Params) error {
	return operator.CheckDataStep(p.Operator)
}

func (s tvSolver) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	rho, lambda, tvIters := params.Float("rho"), params.Float("lambda"), params.Int("tv_iters")
	if lambda < 0 || math.IsNaN(lambda) || math.IsInf(lambda, 0) {
		return nil, fmt.Errorf("solver admm-tv: lambda must be ≥ 0, got %v", lambda)
	}
	return prepare(p, spec{name: "admm-tv", rho: rho, iters: params.Int("iters"), cg: params.Int("cg_iters"),
		zStep: func(v *graph.Node) *graph.Node { return ProxTV(v, lambda/rho, tvIters) }})
}

// pnpSolver is pnp-admm (denoise nil: the prior's Tweedie estimate) or a PnP solver.
type pnpSolver struct {
	name    string
	denoise func(v *graph.Node, sigma float64) *graph.Node
}

func (s pnpSolver) Info() solver.Info {
	params := []solver.Param{
		paramRho(0.25),
		{Name: "sigma", Type: solver.Float, Default: 0.1, Min: 0, MinSet: true, MinExclusive: true,
			Doc: "the denoiser's noise level σ ([-1, 1] units); the implied regularizer is ρσ²·(−log p)"},
		paramIters(50),
		paramCG,
	}
	if s.denoise != nil {
		return solver.Info{Name: s.name, Params: params,
			Doc: "plug-and-play ADMM (Venkatakrishnan et al. 2013) with a denoiser given in Go"}
	}
	params = append([]solver.Param{{Name: "denoiser", Type: solver.String, Default: "tweedie", Enum: []string{"tweedie"},
		Doc: "tweedie: the prior's x̂0(√ᾱ_t·v, t) (unclipped) at the step t whose √((1−ᾱ_t)/ᾱ_t) is nearest sigma"}}, params...)
	return solver.Info{Name: "pnp-admm", NeedsPrior: true, Params: params,
		Doc: "plug-and-play ADMM (Venkatakrishnan et al. 2013) with the diffusion prior's Tweedie estimate as denoiser"}
}

func (pnpSolver) CheckProblem(p *solver.Problem, _ solver.Params) error {
	return operator.CheckDataStep(p.Operator)
}

func (s pnpSolver) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	sp := spec{name: s.Info().Name, rho: params.Float("rho"), iters: params.Int("iters"), cg: params.Int("cg_iters")}
	sigma := params.Float("sigma")
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return nil, fmt.Errorf("solver %s: sigma must be a positive number, got %v", sp.name, sigma)
	}
	if s.denoise != nil {
		sp.zStep = func(v *graph.Node) *graph.Node { return s.denoise(v, sigma) }
		return prepare(p, sp)
	}
	if d := params.String("denoiser"); d != "tweedie" {
		return nil, fmt.Errorf("solver pnp-admm: unknown denoiser %q (known: tweedie)", d)
	}
	if p.Prior == nil {
		return nil, errors.New("solver pnp-admm needs a diffusion prior, and the problem has none")
	}
	sched := p.Schedule
	if sched == nil {
		sched = schedule.Default()
	}
	i := TweedieStep(sched, sigma)
	ab := sched.AlphaBars[i]
	t := int32(sched.Timesteps[i])
	pr := p.Prior
	sp.nfe = sp.iters
	sp.zStep = func(v *graph.Node) *graph.Node {
		return tweedieDenoise(pr, v, t, ab)
	}
	if wc, ok := pr.(prior.WithContext); ok {
		sp.mctx = wc.Context()
	}
	return prepare(p, sp)
}

// TweedieStep is the index into sched whose noise level √((1−ᾱ)/ᾱ) (that of x_t/√ᾱ) is
// nearest sigma: the step pnp-admm's Tweedie denoiser runs the prior at.
func TweedieStep(sched *schedule.Schedule, sigma float64) int {
	return diffusion.NearestStep(sched, sigma)
}

// tweedieDenoise is E[x0 | x_t = √ᾱ v] by Tweedie's formula: v is x0 plus Gaussian noise of
// variance (1−ᾱ)/ᾱ, so x_t = √ᾱ v is a forward-process sample at step t.
func tweedieDenoise(pr prior.Prior, v *graph.Node, t int32, alphaBar float64) *graph.Node {
	g, b := v.Graph(), v.Shape().Dimensions[0]
	xt := graph.MulScalar(v, math.Sqrt(alphaBar))
	tv := graph.BroadcastToDims(graph.Const(g, t), b)
	eps, _ := pr.Predict(xt, tv)
	return graph.Sub(v, graph.MulScalar(eps, math.Sqrt((1-alphaBar)/alphaBar)))
}
