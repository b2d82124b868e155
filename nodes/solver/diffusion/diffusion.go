package diffusion

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/tweedie"
	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// StepParams are the steps and respacing params with steps' default def.
func StepParams(def int, doc string) []solver.Param {
	if doc == "" {
		doc = "sampler steps: the 1000-step DDPM schedule respaced"
	}
	return []solver.Param{
		{Name: "steps", Type: solver.Int, Default: def, Min: 1, MinSet: true, Doc: doc},
		{Name: "respacing", Type: solver.String, Default: "even", Enum: []string{"even", "stride"},
			Doc: "which steps are kept: even (guided-diffusion's \"N\", both ends) or stride (its \"ddimN\": 0, k, 2k, …)"},
	}
}

// Schedule is p's schedule (schedule.Default when nil) respaced to steps by respacing
// ("even" or "stride"; steps ≥ the schedule's length keeps it whole).
func Schedule(p *solver.Problem, steps int, respacing string) (*schedule.Schedule, error) {
	s := p.Schedule
	if s == nil {
		s = schedule.Default()
	}
	if steps < 1 {
		return nil, fmt.Errorf("steps must be ≥ 1, got %d", steps)
	}
	if steps > s.Len() {
		return nil, fmt.Errorf("steps %d exceeds the prior's %d-step schedule", steps, s.Len())
	}
	if steps == s.Len() {
		return s, nil
	}
	switch respacing {
	case "", "even":
		return s.Respace(steps)
	case "stride":
		return s.RespaceStride(steps)
	}
	return nil, fmt.Errorf("unknown respacing %q (known: even, stride)", respacing)
}

// GaussianSigma is the standard deviation of the problem's Gaussian noise, or an error
// saying that the solver models Gaussian noise only.
func GaussianSigma(p *solver.Problem) (float64, error) {
	g, ok := p.Noise.(*noise.Gaussian)
	if !ok {
		return 0, fmt.Errorf("models Gaussian measurement noise, and the problem's noise is %s", p.Noise.Name())
	}
	return g.Sigma(), nil
}

// Reversed is the table in loop order: entry k is table[len−1−k] (loop step k runs the
// schedule's index len−1−k, from the noisiest down to 0).
func Reversed[T any](table []T) []T {
	out := make([]T, len(table))
	for k := range table {
		out[k] = table[len(table)-1-k]
	}
	return out
}

// Step is one step's graph inputs, as Spec.Step receives them.
type Step struct {
	// K is the loop step (int32 scalar), 0 for the first.
	K *Node
	// X is the iterate and Aux the solver's other state (as Init or the last step left them).
	X   *Node
	Aux []*Node
	// Y is the measurement.
	Y     *Node
	rng   *Node
	draws []*Node // StepWith's given draws, in the order the step asks for them
}

// At reads table[K] as a scalar of X's dtype (tables are in loop order).
func (s *Step) At(table []float64) *Node {
	g, dt := s.K.Graph(), s.X.DType()
	return Reshape(Gather(ConstAsDType(g, dt, table), Reshape(s.K, 1)))
}

// AtInt reads table[K] as an int32 scalar.
func (s *Step) AtInt(table []int) *Node {
	t32 := make([]int32, len(table))
	for i, v := range table {
		t32[i] = int32(v)
	}
	return Reshape(Gather(Const(s.K.Graph(), t32), Reshape(s.K, 1)))
}

// Normal draws N(0, 1) values of shape from the run's random-number state.
func (s *Step) Normal(shape shapes.Shape) *Node {
	if s.draws != nil {
		return s.replay(shape)
	}
	var n *Node
	s.rng, n = RandomNormal(s.rng, shape)
	return n
}

// Uniform draws U[0, 1) values of shape from the run's random-number state.
func (s *Step) Uniform(shape shapes.Shape) *Node {
	if s.draws != nil {
		return s.replay(shape)
	}
	var u *Node
	s.rng, u = RandomUniform(s.rng, shape)
	return u
}

// replay returns the next given draw (StepWith), which must have shape.
func (s *Step) replay(shape shapes.Shape) *Node {
	if len(s.draws) == 0 {
		panic(fmt.Errorf("the step asks for more random draws than were given (next: %s)", shape))
	}
	d := s.draws[0]
	s.draws = s.draws[1:]
	if !d.Shape().Equal(shape) {
		panic(fmt.Errorf("a given random draw has shape %s, the step asks for %s", d.Shape(), shape))
	}
	return d
}

// Start is Init's inputs: the measurement and the run's random draws.
type Start = Step

// Out is what a step returns.
type Out struct {
	// X and Aux are the next state (Aux as many as Spec.Aux).
	X   *Node
	Aux []*Node
	// Estimate is the step's estimate of the clean x (x̂0); Result.X at the end when
	// Spec.ReturnEstimate. Distances are measured on it.
	Estimate *Node
}

// Spec is a diffusion solver's compiled loop.
type Spec struct {
	// Name is the solver's name, for errors.
	Name    string
	Problem *solver.Problem
	// Steps is the number of loop steps.
	Steps int
	// NFE is the network evaluations per sample of a whole run (Result.NFE).
	NFE int
	// Timesteps, when set, are the diffusion step of each loop step (for DivergedError).
	Timesteps []int
	// Aux is the number of extra state tensors, each shaped like X.
	Aux int
	// Init builds the state before the first step (K = 0 there); nil: x_T ~ N(0, I), no Aux.
	Init func(s *Start) (x *Node, aux []*Node)
	// Step builds loop step s.K.
	Step func(s *Step) Out
	// ReturnEstimate returns the last step's Estimate instead of its X.
	ReturnEstimate bool
}

// Prepare compiles sp into a solver.Run.
func Prepare(sp Spec) (solver.Run, error) {
	p := sp.Problem
	if p == nil || p.Backend == nil || p.Operator == nil || p.Noise == nil {
		return nil, fmt.Errorf("solver %s: the problem needs a backend, an operator and a noise model", sp.Name)
	}
	if sp.Steps < 1 || sp.Step == nil {
		return nil, fmt.Errorf("solver %s: no steps to run", sp.Name)
	}
	if sp.Init == nil && sp.Aux > 0 {
		return nil, fmt.Errorf("solver %s: %d aux tensors need an Init", sp.Name, sp.Aux)
	}
	ctx := mlctx.New()
	if wc, ok := p.Prior.(prior.WithContext); ok {
		ctx = wc.Context()
	}
	r := &run{sp: sp, backend: p.Backend}
	y0, err := p.Operator.MeasurementShape(p.XShape)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", sp.Name, err)
	}
	r.yShape = y0
	// The state is [X, RNG, aux…]; the step also returns estimate, distances, finite.
	r.init, err = mlctx.NewExec(p.Backend, ctx, func(_ *mlctx.Context, in []*Node) []*Node {
		rng, y := in[0], in[1]
		st := &Start{K: Const(y.Graph(), int32(0)), Y: y, rng: rng, X: Zeros(y.Graph(), p.XShape)}
		var x *Node
		var aux []*Node
		if sp.Init == nil {
			x = st.Normal(p.XShape)
		} else {
			x, aux = sp.Init(st)
		}
		if len(aux) != sp.Aux {
			panic(fmt.Errorf("solver %s: Init returned %d aux tensors, want %d", sp.Name, len(aux), sp.Aux))
		}
		for i, a := range aux {
			if !a.Shape().Equal(p.XShape) {
				panic(fmt.Errorf("solver %s: Init's aux %d has shape %s, want %s", sp.Name, i, a.Shape(), p.XShape))
			}
		}
		return append([]*Node{x, st.rng}, aux...)
	})
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", sp.Name, err)
	}
	r.step, err = mlctx.NewExec(p.Backend, ctx, func(_ *mlctx.Context, in []*Node) []*Node {
		k, y, x, rng := in[0], in[1], in[2], in[3]
		st := &Step{K: k, X: x, Y: y, rng: rng, Aux: in[4:]}
		out := sp.Step(st)
		if len(out.Aux) != sp.Aux {
			panic(fmt.Errorf("solver %s: the step returned %d aux tensors, want %d", sp.Name, len(out.Aux), sp.Aux))
		}
		est := out.Estimate
		if est == nil {
			est = out.X
		}
		est = StopGradient(est)
		dist := StopGradient(p.Noise.Distance(y, p.Operator.Apply(est)))
		// One flag for the whole next state, reduced per tensor (no copy of the state).
		finite := ReduceLogicalAnd(IsFinite(out.X))
		for i, a := range out.Aux {
			if !a.Shape().Equal(p.XShape) {
				panic(fmt.Errorf("solver %s: aux %d has shape %s, want %s", sp.Name, i, a.Shape(), p.XShape))
			}
			finite = LogicalAnd(finite, ReduceLogicalAnd(IsFinite(a)))
		}
		outs := []*Node{StopGradient(out.X), st.rng, est, dist, finite}
		for _, a := range out.Aux {
			outs = append(outs, StopGradient(a))
		}
		return outs
	})
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", sp.Name, err)
	}
	return r, nil
}

type run struct {
	sp      Spec
	backend backends.Backend
	yShape  shapes.Shape
	init    *mlctx.Exec
	step    *mlctx.Exec
}

func (r *run) Solve(ctx context.Context, y *tensors.Tensor, seed uint64, h solver.Hooks) (*solver.Result, error) {
	out, err := solver.LoopOn(ctx, "solver "+r.sp.Name, r.backend, y, r.yShape, r.sp.Problem.XShape,
		func(y *tensors.Tensor) solver.Iteration { return &iteration{r: r, y: y} }, seed, h)
	if err != nil {
		return nil, err
	}
	for _, t := range out.State.Aux {
		t.FinalizeAll()
	}
	x := out.State.X
	if r.sp.ReturnEstimate {
		x = out.Estimate
	}
	return &solver.Result{X: x, Distances: out.Distances, NFE: r.sp.NFE}, nil
}

type iteration struct {
	r *run
	y *tensors.Tensor
}

func (it *iteration) Steps() int { return it.r.sp.Steps }

func (it *iteration) Timestep(done int) int {
	if ts := it.r.sp.Timesteps; done < len(ts) {
		return ts[done]
	}
	return -1
}

func (it *iteration) Start(seed uint64, resume *solver.State) (solver.State, error) {
	sp := it.r.sp
	if resume != nil {
		if resume.RNG == nil {
			return solver.State{}, errors.New("the resume state has no random-number state")
		}
		if len(resume.Aux) != sp.Aux {
			return solver.State{}, fmt.Errorf("the resume state has %d aux tensors, %s carries %d", len(resume.Aux), sp.Name, sp.Aux)
		}
		for i, a := range resume.Aux {
			if a == nil || !a.Shape().Equal(it.r.sp.Problem.XShape) {
				return solver.State{}, fmt.Errorf("the resume state's aux tensor %d does not have shape %s", i, it.r.sp.Problem.XShape)
			}
		}
		return solver.OnBackend(*resume, it.r.backend)
	}
	rng, err := RNGStateFromSeed(int64(seed))
	if err != nil {
		return solver.State{}, err
	}
	outs, err := it.r.init.Exec(rng, it.y)
	if err != nil {
		return solver.State{}, fmt.Errorf("the starting point: %w", err)
	}
	return solver.State{X: outs[0], RNG: outs[1], Aux: outs[2:]}, nil
}

func (it *iteration) Step(st solver.State) (solver.State, solver.StepOutput, error) {
	in := append([]any{int32(st.Done), it.y, st.X, st.RNG}, tensorsAny(st.Aux)...)
	outs, err := it.r.step.Exec(in...)
	if err != nil {
		return solver.State{}, solver.StepOutput{}, err
	}
	return solver.State{X: outs[0], RNG: outs[1], Aux: outs[5:]},
		solver.StepOutput{Estimate: outs[2], Distances: outs[3], Finite: outs[4]}, nil
}

// Stepper is implemented by the runs Prepare returns: one step with its random draws given,
// for cross-checks against independent implementations (e.g. PyTorch).
type Stepper interface {
	// StepWith runs loop step k from x and aux for measurement y, with the step's Normal and
	// Uniform draws taken from draws in the order the step asks for them (each of the shape
	// asked for), and returns the next x, aux and the step's estimate.
	StepWith(k int, x *tensors.Tensor, aux []*tensors.Tensor, y *tensors.Tensor, draws []*tensors.Tensor) (next *tensors.Tensor, nextAux []*tensors.Tensor, estimate *tensors.Tensor, err error)
}

func (r *run) StepWith(k int, x *tensors.Tensor, aux []*tensors.Tensor, y *tensors.Tensor, draws []*tensors.Tensor) (*tensors.Tensor, []*tensors.Tensor, *tensors.Tensor, error) {
	sp := r.sp
	if k < 0 || k >= sp.Steps {
		return nil, nil, nil, fmt.Errorf("solver %s: step %d is outside [0, %d)", sp.Name, k, sp.Steps)
	}
	if len(aux) != sp.Aux {
		return nil, nil, nil, fmt.Errorf("solver %s: %d aux tensors given, the solver carries %d", sp.Name, len(aux), sp.Aux)
	}
	ctx := mlctx.New()
	if wc, ok := sp.Problem.Prior.(prior.WithContext); ok {
		ctx = wc.Context()
	}
	nAux := len(aux)
	exec, err := mlctx.NewExec(r.backend, ctx, func(_ *mlctx.Context, in []*Node) []*Node {
		st := &Step{K: in[0], Y: in[1], X: in[2], Aux: in[3 : 3+nAux], draws: in[3+nAux:]}
		st.draws = append([]*Node(nil), st.draws...)
		out := sp.Step(st)
		if len(st.draws) > 0 {
			panic(fmt.Errorf("the step used %d fewer random draws than were given", len(st.draws)))
		}
		est := out.Estimate
		if est == nil {
			est = out.X
		}
		return append([]*Node{StopGradient(out.X), StopGradient(est)}, out.Aux...)
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("solver %s: %w", sp.Name, err)
	}
	in := append([]any{int32(k), y, x}, tensorsAny(aux)...)
	in = append(in, tensorsAny(draws)...)
	outs, err := exec.Exec(in...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("solver %s: %w", sp.Name, err)
	}
	return outs[0], outs[2:], outs[1], nil
}

func tensorsAny(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// Model is the prior at the diffusion steps of a (respaced) schedule, in loop order.
type Model struct {
	Prior prior.Prior
	// Sched is the schedule the loop runs through, noisiest step first at loop step 0.
	Sched *schedule.Schedule
	// Per loop step k (schedule index len−1−k): the diffusion timestep, ᾱ_t, ᾱ_{t−1} (1 at
	// the last step), and the Tweedie coefficients √(1/ᾱ_t), √(1/ᾱ_t − 1).
	Timesteps              []int
	AlphaBar, AlphaBarPrev []float64
	SqrtRecip, SqrtRecipM1 []float64
}

// NewModel is pr on sched, with sched's tables in loop order.
func NewModel(pr prior.Prior, sched *schedule.Schedule) *Model {
	m := &Model{Prior: pr, Sched: sched, Timesteps: Reversed(sched.Timesteps),
		AlphaBar: Reversed(sched.AlphaBars), AlphaBarPrev: Reversed(sched.AlphaBarsPrev)}
	m.SqrtRecip, m.SqrtRecipM1 = tweedie.Coefs(m.AlphaBar)
	return m
}

// Eps is the prior's ε̂(x_t, t) at loop step s.K.
func (m *Model) Eps(s *Step, xt *Node) *Node {
	t := BroadcastToDims(s.AtInt(m.Timesteps), xt.Shape().Dimensions[0])
	eps, _ := m.Prior.Predict(xt, t)
	return eps
}

// Tweedie is x̂0 = E[x_0 | x_t] at loop step s.K (clipped to [-1, 1] when clip) and ε̂.
func (m *Model) Tweedie(s *Step, xt *Node, clip bool) (x0, eps *Node) {
	eps = m.Eps(s, xt)
	return tweedie.Estimate(xt, eps, s.At(m.SqrtRecip), s.At(m.SqrtRecipM1), clip), eps
}

// NearestStep is the index into sched whose σ = √((1−ᾱ)/ᾱ) (the noise level of x_t/√ᾱ) is
// nearest sigma.
func NearestStep(sched *schedule.Schedule, sigma float64) int {
	best, bestD := 0, math.Inf(1)
	for i, a := range sched.AlphaBars {
		if d := math.Abs(math.Sqrt((1-a)/a) - sigma); d < bestD {
			best, bestD = i, d
		}
	}
	return best
}

// Inner is the per-sample inner product ⟨a, b⟩ over all axes but the first, shape [B].
func Inner(a, b *Node) *Node {
	axes := make([]int, a.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	if len(axes) == 0 {
		return Mul(a, b)
	}
	return ReduceSum(Mul(a, b), axes...)
}
