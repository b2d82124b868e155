// Package sampler runs DDPM (ancestral) and DDIM samplers conditioned by a guidance
// method. The whole step — prior, Tweedie estimate, operator, likelihood gradient, update,
// and the step's random draws — is one compiled GoMLX graph per shape; the host loop only
// feeds the step index, the state and the random-number state, and reads back the
// per-sample residual and a finiteness flag. Runs are bit-for-bit reproducible for a seed
// on a given backend.
package sampler

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/tweedie"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// Kind names a sampler.
type Kind string

const (
	DDPM Kind = "ddpm" // ancestral sampling (the reference)
	DDIM Kind = "ddim" // DDIM with parameter η (η = 1 is ancestral-like, η = 0 deterministic)
)

// Respacing names how a schedule is respaced to fewer steps.
type Respacing string

const (
	RespaceEven   Respacing = "even"   // evenly spread, both ends kept (schedule.Respace)
	RespaceStride Respacing = "stride" // every k-th step from 0 (schedule.RespaceStride)
)

// VarianceType names the reverse-process variance of DDPM steps.
type VarianceType string

const (
	// FixedSmall is the posterior variance β̃_t (log clipped at t = 0, as improved DDPM).
	FixedSmall VarianceType = "fixed_small"
	// FixedLarge is β_t.
	FixedLarge VarianceType = "fixed_large"
	// LearnedRange interpolates log β_t and log β̃_t with the prior's v output.
	LearnedRange VarianceType = "learned_range"
)

// Return names what a run returns.
type Return string

const (
	// ReturnSample is the final sample x_0 (the reference code).
	ReturnSample Return = "sample"
	// ReturnX0Hat is the last Tweedie estimate x̂0 (Algorithm 1 of the paper).
	ReturnX0Hat Return = "x0hat"
)

// Config configures a sampler.
type Config struct {
	Kind Kind // default DDPM
	// Steps respaces the schedule to this many steps (0: all of them).
	Steps int
	// Respacing picks the kept steps: RespaceEven (default, guided-diffusion's "N") or
	// RespaceStride (its "ddimN": 0, k, 2k, … for the stride k that keeps Steps).
	Respacing Respacing
	// Eta is DDIM's η.
	Eta float64
	// NoClip keeps x̂0 unclipped (the reference clips it to [-1, 1]).
	NoClip bool
	// Variance defaults to LearnedRange when the prior returns v, else FixedSmall.
	Variance VarianceType
	// Return defaults to ReturnSample.
	Return Return
	// Guidance conditions the steps: a guidance.Config (the paper's methods) or any other
	// guidance.Guidance (guidance.FromFunc).
	Guidance guidance.Guidance
}

// Sampler is a configured sampler for one prior, operator and noise model.
type Sampler struct {
	cfg     Config
	prior   prior.Prior
	op      operator.Operator
	noise   noise.Model
	sched   *schedule.Schedule
	backend backends.Backend
	coefs   coefs
	ctx     *mlctx.Context
	step    *mlctx.Exec
	init    *Exec
}

// New checks the configuration and prepares the compiled step (compiled at the first
// Run for each shape). Errors name the parameter.
func New(backend backends.Backend, p prior.Prior, sched *schedule.Schedule, op operator.Operator, nm noise.Model, cfg Config) (*Sampler, error) {
	if backend == nil || p == nil || sched == nil || op == nil || nm == nil {
		return nil, errors.New("sampler: backend, prior, schedule, operator and noise model are all required")
	}
	if cfg.Kind == "" {
		cfg.Kind = DDPM
	}
	if cfg.Kind != DDPM && cfg.Kind != DDIM {
		return nil, fmt.Errorf("sampler: unknown kind %q; valid: %s, %s", cfg.Kind, DDPM, DDIM)
	}
	if cfg.Eta < 0 || math.IsNaN(cfg.Eta) {
		return nil, fmt.Errorf("sampler: eta must be ≥ 0, got %v", cfg.Eta)
	}
	switch cfg.Variance {
	case "", FixedSmall, FixedLarge, LearnedRange:
	default:
		return nil, fmt.Errorf("sampler: unknown variance %q; valid: %s, %s, %s", cfg.Variance, FixedSmall, FixedLarge, LearnedRange)
	}
	if cfg.Return == "" {
		cfg.Return = ReturnSample
	}
	if cfg.Return != ReturnSample && cfg.Return != ReturnX0Hat {
		return nil, fmt.Errorf("sampler: unknown return %q; valid: %s, %s", cfg.Return, ReturnSample, ReturnX0Hat)
	}
	if cfg.Steps < 0 || cfg.Steps > sched.Len() {
		return nil, fmt.Errorf("sampler: steps must be in [0, %d], got %d", sched.Len(), cfg.Steps)
	}
	switch cfg.Respacing {
	case "", RespaceEven:
		if cfg.Steps > 0 && cfg.Steps != sched.Len() {
			var err error
			if sched, err = sched.Respace(cfg.Steps); err != nil {
				return nil, fmt.Errorf("sampler: steps: %w", err)
			}
		}
	case RespaceStride:
		if cfg.Steps > 0 {
			var err error
			if sched, err = sched.RespaceStride(cfg.Steps); err != nil {
				return nil, fmt.Errorf("sampler: steps: %w", err)
			}
		}
	default:
		return nil, fmt.Errorf("sampler: unknown respacing %q; valid: %s, %s", cfg.Respacing, RespaceEven, RespaceStride)
	}
	var err error
	if cfg.Guidance == nil {
		return nil, errors.New("sampler: no guidance; use guidance.Config{Method: guidance.Vanilla} for unconditional samples")
	}
	if cfg.Guidance, err = cfg.Guidance.Prepare(op); err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	s := &Sampler{cfg: cfg, prior: p, op: op, noise: nm, sched: sched, backend: backend, coefs: newCoefs(sched, cfg.Eta)}
	// Priors with weights in a context get them fed as graph inputs.
	ctx := mlctx.New()
	if wc, ok := p.(prior.WithContext); ok {
		ctx = wc.Context()
	}
	s.ctx = ctx
	if s.step, err = mlctx.NewExec(backend, ctx, func(_ *mlctx.Context, in []*Node) []*Node { return s.buildStep(in) }); err != nil {
		return nil, err
	}
	if s.init, err = NewExec(backend, func(rng, like *Node) (*Node, *Node) { return RandomNormal(rng, like.Shape()) }); err != nil {
		return nil, err
	}
	return s, nil
}

// Schedule is the (possibly respaced) schedule the sampler steps through.
func (s *Sampler) Schedule() *schedule.Schedule { return s.sched }

// Config is the sampler's configuration with defaults filled in.
func (s *Sampler) Config() Config { return s.cfg }

// Progress is called after every step with the number of steps done, the total, and each
// sample's ‖y − A(x̂0)‖ at that step.
type Progress = solver.Progress

// Result is what a run returns.
type Result struct {
	// X is the final sample or the last x̂0, per Config.Return, shaped like the state.
	X *tensors.Tensor
	// Distances is the last step's per-sample ‖y − A(x̂0)‖.
	Distances []float64
}

// DivergedError reports a state that stopped being finite (solver.DivergedError).
type DivergedError = solver.DivergedError

// Hooks observe a run and let it be resumed (solver.Hooks: the loop every solver shares).
type Hooks = solver.Hooks

// State is a point of a run from which it can continue: the steps done, the state x_t
// and the random-number state.
type State = solver.State

// Run samples images of xShape (e.g. [B, C, H, W], the prior's dtype) for measurement y,
// from seed. It stops between steps when ctx is cancelled, returning ctx's error.
func (s *Sampler) Run(ctx context.Context, y *tensors.Tensor, xShape shapes.Shape, seed uint64, progress Progress) (*Result, error) {
	return s.RunWith(ctx, y, xShape, seed, Hooks{Progress: progress})
}

// RunWith is Run with hooks; see Hooks. The host loop is solver.Loop.
func (s *Sampler) RunWith(ctx context.Context, y *tensors.Tensor, xShape shapes.Shape, seed uint64, h Hooks) (*Result, error) {
	if !xShape.DType.IsFloat() || xShape.Rank() < 2 {
		return nil, fmt.Errorf("sampler: state shape %s must be a float batch [B, ...]", xShape)
	}
	wantY, err := s.op.MeasurementShape(xShape)
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	out, err := solver.LoopOn(ctx, "sampler", s.backend, y, wantY, xShape,
		func(y *tensors.Tensor) solver.Iteration { return &iteration{s: s, y: y, shape: xShape} }, seed, h)
	if err != nil {
		return nil, err
	}
	res := &Result{X: out.State.X, Distances: out.Distances}
	if s.cfg.Return == ReturnX0Hat {
		res.X = out.Estimate
	}
	return res, nil
}

// iteration is one run of the sampler as a solver.Iteration.
type iteration struct {
	s     *Sampler
	y     *tensors.Tensor
	shape shapes.Shape
}

func (it *iteration) Steps() int { return it.s.sched.Len() }

// Timestep names the diffusion step of step number done+1.
func (it *iteration) Timestep(done int) int { return it.s.sched.Timesteps[it.Steps()-1-done] }

func (it *iteration) Start(seed uint64, resume *State) (State, error) {
	if resume != nil {
		if resume.RNG == nil {
			return State{}, errors.New("the resume state has no random-number state")
		}
		return solver.OnBackend(State{X: resume.X, RNG: resume.RNG}, it.s.backend)
	}
	rng, err := RNGStateFromSeed(int64(seed))
	if err != nil {
		return State{}, err
	}
	outs, err := it.s.init.Exec(rng, tensors.FromShape(it.shape))
	if err != nil {
		return State{}, fmt.Errorf("drawing x_T: %w", err)
	}
	return State{X: outs[1], RNG: outs[0]}, nil
}

func (it *iteration) Step(st State) (State, solver.StepOutput, error) {
	i := it.Steps() - 1 - st.Done
	outs, err := it.s.step.Exec(st.X, int32(i), st.RNG, it.y)
	if err != nil {
		return State{}, solver.StepOutput{}, err
	}
	return State{X: outs[0], RNG: outs[4]}, solver.StepOutput{Estimate: outs[1], Distances: outs[2], Finite: outs[3]}, nil
}

// buildStep is one sampler step: inputs x_t, the step index i (int32 scalar), the RNG
// state and y; outputs x_{t−1}, x̂0, the per-sample distance, an all-finite flag and the
// new RNG state.
func (s *Sampler) buildStep(in []*Node) []*Node {
	xt, idx, rng, y := in[0], in[1], in[2], in[3]
	rng, z := RandomNormal(rng, xt.Shape())
	next, x0, dist, rng := s.stepCore(xt, idx, y, z, rng)
	finite := LogicalNot(ReduceLogicalOr(LogicalNot(IsFinite(next))))
	return []*Node{next, StopGradient(x0), dist, finite, rng}
}

// stepCore is one step with the ancestral noise z given; rng feeds the method's own draws
// (the noised y of projection and MCG, ps+'s jitter).
func (s *Sampler) stepCore(xt, idx, y, z, rng *Node) (next, x0, dist, rngOut *Node) {
	g, dt := xt.Graph(), xt.DType()
	batch := xt.Shape().Dimensions[0]
	at := func(table []float64) *Node { return tableAt(g, table, idx, dt) }
	c := s.coefs

	t := BroadcastToDims(tableAtInt(g, s.sched.Timesteps, idx), batch)
	eps, v := s.prior.Predict(xt, t)
	x0 = tweedie.Estimate(xt, eps, at(c.sqrtRecip), at(c.sqrtRecipM1), !s.cfg.NoClip)

	var xPrev *Node
	if s.cfg.Kind == DDIM {
		// ε re-derived from the (clipped) x̂0 keeps the update consistent with it; at the
		// last step ᾱ_prev = 1 makes σ = 0 and x' = x̂0.
		e := tweedie.Eps(xt, x0, at(c.sqrtRecip), at(c.sqrtRecipM1))
		xPrev = Add(Add(Mul(at(c.sqrtAlphaBarPrev), x0), Mul(at(c.ddimDir), e)), Mul(at(c.ddimSigma), z))
	} else {
		mean := Add(Mul(at(s.sched.PosteriorMeanCoefX0), x0), Mul(at(s.sched.PosteriorMeanCoefXt), xt))
		logVar := s.logVariance(v, at)
		// No noise at the last step.
		notLast := ConvertDType(GreaterThan(idx, ScalarZero(g, dtypes.Int32)), dt)
		xPrev = Add(mean, Mul(Mul(Exp(MulScalar(logVar, 0.5)), z), notLast))
	}

	// The method's own draws (projection's noised y, ps+'s jitter) come from rng, in the
	// order the guidance asks for them.
	var noisyY *Node
	step := guidance.Step{Xt: xt, X0Hat: x0, XPrev: xPrev, Y: y, Op: s.op, Noise: s.noise,
		Uniform: func(shape shapes.Shape) *Node {
			var u *Node
			rng, u = RandomUniform(rng, shape)
			return u
		},
		Normal: func(shape shapes.Shape) *Node {
			var n *Node
			rng, n = RandomNormal(rng, shape)
			return n
		},
	}
	step.NoisyY = func() *Node {
		if noisyY == nil {
			// The reference noises y to the current step's level: √ᾱ_t y + √(1−ᾱ_t) n.
			noisyY = Add(Mul(at(c.sqrtAlphaBar), y), Mul(at(c.sqrtOneMinusAlphaBar), step.Normal(y.Shape())))
		}
		return noisyY
	}
	next, dist = s.cfg.Guidance.Apply(step)
	return next, x0, dist, rng
}

// Step runs a single update at schedule index i (the diffusion step t when the schedule
// is not respaced) from x_t with the ancestral noise z given, as one reference DPS update
// does; seed feeds the method's own draws, if any. It returns x_{t−1}. For cross-checks
// against other implementations (dpsflow step).
func (s *Sampler) Step(xt *tensors.Tensor, i int, y, z *tensors.Tensor, seed uint64) (*tensors.Tensor, error) {
	if i < 0 || i >= s.sched.Len() {
		return nil, fmt.Errorf("sampler: step index %d is outside [0, %d)", i, s.sched.Len())
	}
	if !z.Shape().Equal(xt.Shape()) {
		return nil, fmt.Errorf("sampler: noise z has shape %s, x_t has %s", z.Shape(), xt.Shape())
	}
	if want, err := s.op.MeasurementShape(xt.Shape()); err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	} else if !y.Shape().Equal(want) {
		return nil, fmt.Errorf("sampler: measurement y has shape %s, but %s maps %s to %s", y.Shape(), s.op.Name(), xt.Shape(), want)
	}
	exec, err := mlctx.NewExec(s.backend, s.ctx, func(_ *mlctx.Context, in []*Node) *Node {
		next, _, _, _ := s.stepCore(in[0], in[1], in[2], in[3], in[4])
		return next
	})
	if err != nil {
		return nil, err
	}
	rng, err := RNGStateFromSeed(int64(seed))
	if err != nil {
		return nil, err
	}
	return exec.Exec1(xt, int32(i), y, z, rng)
}

// logVariance is the DDPM step's log-variance for the configured variance type.
func (s *Sampler) logVariance(v *Node, at func([]float64) *Node) *Node {
	kind := s.cfg.Variance
	if kind == "" {
		kind = FixedSmall
		if v != nil {
			kind = LearnedRange
		}
	}
	logBeta := at(s.sched.LogBetas())
	logBetaTilde := at(s.sched.PosteriorLogVarianceClipped)
	switch kind {
	case FixedLarge:
		return logBeta
	case LearnedRange:
		if v == nil {
			panic(errors.New("sampler: variance learned_range needs a prior with a variance output"))
		}
		frac := DivScalar(AddScalar(v, 1), 2)
		return Add(Mul(frac, logBeta), Mul(OneMinus(frac), logBetaTilde))
	default:
		return logBetaTilde
	}
}

// coefs are per-step coefficients computed in float64 on the host: in float32, 1 − ᾱ and
// 1 − ᾱ_t/ᾱ_{t−1} lose digits near t = 0.
type coefs struct {
	sqrtRecip, sqrtRecipM1               []float64 // Tweedie: √(1/ᾱ), √(1/ᾱ − 1)
	sqrtAlphaBar, sqrtOneMinusAlphaBar   []float64 // noising y (projection, MCG)
	sqrtAlphaBarPrev, ddimSigma, ddimDir []float64 // DDIM: √ᾱ_prev, σ, √(1 − ᾱ_prev − σ²)
}

func newCoefs(sched *schedule.Schedule, eta float64) coefs {
	var c coefs
	c.sqrtRecip, c.sqrtRecipM1 = tweedie.Coefs(sched.AlphaBars)
	for i, a := range sched.AlphaBars {
		ap := sched.AlphaBarsPrev[i]
		sigma := eta * math.Sqrt((1-ap)/(1-a)*(1-a/ap))
		c.sqrtAlphaBar = append(c.sqrtAlphaBar, math.Sqrt(a))
		c.sqrtOneMinusAlphaBar = append(c.sqrtOneMinusAlphaBar, math.Sqrt(1-a))
		c.sqrtAlphaBarPrev = append(c.sqrtAlphaBarPrev, math.Sqrt(ap))
		c.ddimSigma = append(c.ddimSigma, sigma)
		c.ddimDir = append(c.ddimDir, math.Sqrt(max(1-ap-sigma*sigma, 0)))
	}
	return c
}

// tableAt reads table[idx] inside the graph as a scalar of dtype dt.
func tableAt(g *Graph, table []float64, idx *Node, dt dtypes.DType) *Node {
	return Reshape(Gather(ConstAsDType(g, dt, table), Reshape(idx, 1)))
}

func tableAtInt(g *Graph, table []int, idx *Node) *Node {
	t32 := make([]int32, len(table))
	for i, v := range table {
		t32[i] = int32(v)
	}
	return Reshape(Gather(Const(g, t32), Reshape(idx, 1)))
}
