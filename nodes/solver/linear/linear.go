package linear

import (
	"context"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func init() {
	solver.MustRegister(Pinv{})
	solver.MustRegister(Wiener{})
}

// Pinv is the solver "pinv": x = A⁺y.
type Pinv struct{}

// Info implements solver.Solver.
func (Pinv) Info() solver.Info {
	return solver.Info{Name: "pinv",
		Doc:   "pseudo-inverse x = A⁺y (Moore–Penrose; least-squares solution of least norm): the measurement taken back, no prior",
		Needs: []operator.Capability{operator.CapPseudoInverse}}
}

// Prepare implements solver.Solver: it compiles y ↦ (A⁺y, distance, finite).
func (Pinv) Prepare(p *solver.Problem, _ solver.Params) (solver.Run, error) {
	if err := operator.Require(p.Operator, "solver pinv", operator.CapPseudoInverse); err != nil {
		return nil, err
	}
	pi, ok := p.Operator.(operator.PseudoInverter)
	if !ok {
		return nil, fmt.Errorf("solver pinv: %s declares a pseudo-inverse but does not implement operator.PseudoInverter", p.Operator.Name())
	}
	return prepare("pinv", p, func(y *graph.Node) *graph.Node { return pi.PseudoInverse(y) })
}

// Wiener is the solver "wiener": x = argmin ‖A x − y‖² + λ‖x − μ‖² through the SVD.
type Wiener struct{}

// DefaultSignalVar is the default prior variance σ_x² of the wiener solver: values spread
// over [-1, 1] about 0 ([-1, 1] units squared).
const DefaultSignalVar = 0.25

// Info implements solver.Solver.
func (Wiener) Info() solver.Info {
	return solver.Info{Name: "wiener",
		Doc:   "Wiener/Tikhonov x = argmin ‖Ax − y‖² + λ‖x − μ‖² by the SVD; λ = σ²/σ_x² is the exact posterior mean of the prior N(μ, σ_x² I) (Tikhonov 1963; Wiener 1949)",
		Needs: []operator.Capability{operator.CapSVD},
		Params: []solver.Param{
			{Name: "lambda", Type: solver.Float, Default: 0.0, Min: 0, MinSet: true,
				Doc: "regularisation weight λ (dimensionless: ratio of variances); 0: σ²/signal_var from the noise model (Gaussian σ; Poisson: σ² = 2/(255·rate), its variance at mid-grey)"},
			{Name: "mean", Type: solver.Float, Default: 0.0,
				Doc: "prior mean μ, one value for every pixel, [-1, 1] units (0 = mid-grey)"},
			{Name: "signal_var", Type: solver.Float, Default: DefaultSignalVar, Min: 0, MinSet: true, MinExclusive: true,
				Doc: "prior variance σ_x² per pixel, [-1, 1] units squared (0.25: values spread over [-1, 1]); used only when lambda is 0"},
		}}
}

// CheckProblem implements solver.ProblemChecker: λ from the noise needs a noise model whose
// variance is known.
func (Wiener) CheckProblem(p *solver.Problem, params solver.Params) error {
	_, err := Lambda(p.Noise, params)
	return err
}

// Prepare implements solver.Solver: it compiles y ↦ (ProxDataSVD(μ, y, λ), distance, finite).
func (Wiener) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	if err := operator.Require(p.Operator, "solver wiener", operator.CapSVD); err != nil {
		return nil, err
	}
	sv, ok := p.Operator.(operator.Singular)
	if !ok {
		return nil, fmt.Errorf("solver wiener: %s declares an svd but does not implement operator.Singular", p.Operator.Name())
	}
	lambda, err := Lambda(p.Noise, params)
	if err != nil {
		return nil, fmt.Errorf("solver wiener: %w", err)
	}
	mean, xDims := params.Float("mean"), p.XShape.Dimensions
	return prepare("wiener", p, func(y *graph.Node) *graph.Node {
		g, dt := y.Graph(), y.DType()
		mu := graph.BroadcastToDims(graph.Scalar(g, dt, mean), xDims...)
		// ProxDataSVD minimises ½‖Ax − y‖² + (ρ/2)‖x − v‖²: the same minimiser with ρ = λ.
		return operator.ProxDataSVD(sv, mu, y, graph.Scalar(g, dt, lambda))
	})
}

// Lambda is the wiener solver's λ for noise model m and resolved params: the lambda param
// when it is positive, otherwise σ²/signal_var with σ² the noise variance in [-1, 1] units
// (Gaussian: σ²; Poisson of rate r: 2/(255·r), the variance of y at mid-grey intensity
// 1/2). Other noise models need an explicit lambda.
func Lambda(m noise.Model, params solver.Params) (float64, error) {
	if l := params.Float("lambda"); l > 0 {
		return l, nil
	}
	sx2 := params.Float("signal_var")
	if !(sx2 > 0) {
		sx2 = DefaultSignalVar
	}
	var s2 float64
	switch n := m.(type) {
	case interface{ Sigma() float64 }:
		s2 = n.Sigma() * n.Sigma()
	case *noise.Poisson:
		// y = 2k/(255 r) − 1 with k ~ Poisson(255 r I): Var y = 4I/(255 r), I = 1/2.
		s2 = 2 / (255 * n.Rate())
	default:
		name := "nil"
		if m != nil {
			name = m.Name()
		}
		return 0, fmt.Errorf("param lambda is 0 (from the noise), but the variance of %s noise is unknown: set lambda > 0", name)
	}
	if !(s2 > 0) || math.IsInf(s2, 0) {
		return 0, fmt.Errorf("param lambda is 0 (from the noise), but the noise variance is %g: set lambda > 0", s2)
	}
	return s2 / sx2, nil
}

// run is a closed-form solver prepared for one problem shape.
type run struct {
	name           string
	backend        backends.Backend
	xShape, yShape shapes.Shape
	exec           *graph.Exec // y → x, per-sample distance, all-finite flag
}

// prepare compiles the one step of a closed-form solver whose estimate is solve(y).
func prepare(name string, p *solver.Problem, solve func(y *graph.Node) *graph.Node) (*run, error) {
	yShape, err := p.Operator.MeasurementShape(p.XShape)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", name, err)
	}
	op, nm := p.Operator, p.Noise
	exec, err := graph.NewExec(p.Backend, func(y *graph.Node) (x, dist, finite *graph.Node) {
		x = solve(y)
		dist = nm.Distance(y, op.Apply(x))
		finite = graph.LogicalNot(graph.ReduceLogicalOr(graph.LogicalNot(graph.IsFinite(x))))
		return x, dist, finite
	})
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", name, err)
	}
	return &run{name: name, backend: p.Backend, xShape: p.XShape, yShape: yShape, exec: exec}, nil
}

// Solve implements solver.Run; seed is unused (the solvers are deterministic).
func (r *run) Solve(ctx context.Context, y *tensors.Tensor, seed uint64, h solver.Hooks) (*solver.Result, error) {
	out, err := solver.LoopOn(ctx, "solver "+r.name, r.backend, y, r.yShape, r.xShape,
		func(y *tensors.Tensor) solver.Iteration { return &iteration{r: r, y: y} }, seed, h)
	if err != nil {
		return nil, err
	}
	return &solver.Result{X: out.State.X, Distances: out.Distances, NFE: 0}, nil
}

// iteration is the single step of a closed-form solve.
type iteration struct {
	r *run
	y *tensors.Tensor
}

func (*iteration) Steps() int { return 1 }

// Start returns a zero iterate whether or not it resumes: the step reads only y, so a
// resume (necessarily from step 0) recomputes the same x.
func (it *iteration) Start(uint64, *solver.State) (solver.State, error) {
	return solver.State{X: tensors.FromShape(it.r.xShape)}, nil
}

func (it *iteration) Step(solver.State) (solver.State, solver.StepOutput, error) {
	outs, err := it.r.exec.Exec(it.y)
	if err != nil {
		return solver.State{}, solver.StepOutput{}, err
	}
	// The estimate is the iterate itself (Loop never frees the final state's tensors).
	return solver.State{X: outs[0]}, solver.StepOutput{Estimate: outs[0], Distances: outs[1], Finite: outs[2]}, nil
}
