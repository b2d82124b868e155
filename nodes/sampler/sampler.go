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
	// Eta is DDIM's η.
	Eta float64
	// NoClip keeps x̂0 unclipped (the reference clips it to [-1, 1]).
	NoClip bool
	// Variance defaults to LearnedRange when the prior returns v, else FixedSmall.
	Variance VarianceType
	// Return defaults to ReturnSample.
	Return   Return
	Guidance guidance.Config
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
	if cfg.Steps > 0 && cfg.Steps != sched.Len() {
		var err error
		if sched, err = sched.Respace(cfg.Steps); err != nil {
			return nil, fmt.Errorf("sampler: steps: %w", err)
		}
	}
	var err error
	if cfg.Guidance, err = cfg.Guidance.Validate(op); err != nil {
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
type Progress func(done, total int, dist []float64)

// Result is what a run returns.
type Result struct {
	// X is the final sample or the last x̂0, per Config.Return, shaped like the state.
	X *tensors.Tensor
	// Distances is the last step's per-sample ‖y − A(x̂0)‖.
	Distances []float64
}

// DivergedError reports a state that stopped being finite.
type DivergedError struct {
	// Step counts the steps done before the bad one; Timestep is the bad step's diffusion
	// step index (in the base schedule).
	Step, Timestep int
	// LastGood is the last finite state x_t, from which a run could be resumed or inspected.
	LastGood *tensors.Tensor
}

func (e *DivergedError) Error() string {
	return fmt.Sprintf("sampler: the state became NaN or Inf at step %d (diffusion step t=%d); the last finite state is kept", e.Step+1, e.Timestep)
}

// Run samples images of xShape (e.g. [B, C, H, W], the prior's dtype) for measurement y,
// from seed. It stops between steps when ctx is cancelled, returning ctx's error.
func (s *Sampler) Run(ctx context.Context, y *tensors.Tensor, xShape shapes.Shape, seed uint64, progress Progress) (*Result, error) {
	return s.RunWith(ctx, y, xShape, seed, Hooks{Progress: progress})
}

// Hooks observe a run and let it be resumed. All fields are optional.
type Hooks struct {
	// Progress is called after every step.
	Progress Progress
	// Snapshot is called every SnapshotEvery steps and after the last one with the number
	// of steps done, the new state x_{t−1} and the step's x̂0 (host copies the callee owns).
	SnapshotEvery int
	Snapshot      func(done int, xt, x0 *tensors.Tensor)
	// Checkpoint is called every CheckpointEvery steps with a State that Resume continues
	// from bit for bit; an error stops the run.
	CheckpointEvery int
	Checkpoint      func(State) error
	// Resume continues a run from a checkpoint instead of drawing x_T; y, the shape, the
	// seed and the sampler must be those of the checkpointed run.
	Resume *State
}

// State is a point of a run from which it can continue: the steps done, the state x_t
// and the random-number state.
type State struct {
	Done   int
	X, RNG *tensors.Tensor
}

// RunWith is Run with hooks; see Hooks.
func (s *Sampler) RunWith(ctx context.Context, y *tensors.Tensor, xShape shapes.Shape, seed uint64, h Hooks) (*Result, error) {
	if !xShape.DType.IsFloat() || xShape.Rank() < 2 {
		return nil, fmt.Errorf("sampler: state shape %s must be a float batch [B, ...]", xShape)
	}
	wantY, err := s.op.MeasurementShape(xShape)
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	if y == nil || !y.Shape().Equal(wantY) {
		var got shapes.Shape
		if y != nil {
			got = y.Shape()
		}
		return nil, fmt.Errorf("sampler: measurement y has shape %s, but %s maps %s to %s", got, s.op.Name(), xShape, wantY)
	}
	// The caller's y may live on another backend instance (GoMLX ties a tensor to the
	// first one that used it): run on our own copy.
	y, err = y.OnDeviceClone(s.backend, 0)
	if err != nil {
		return nil, fmt.Errorf("sampler: copying the measurement y: %w", err)
	}
	defer y.FinalizeAll()
	n := s.sched.Len()
	var rng, x *tensors.Tensor
	done := 0
	if r := h.Resume; r != nil {
		if r.Done < 0 || r.Done > n || r.X == nil || r.RNG == nil || !r.X.Shape().Equal(xShape) {
			return nil, fmt.Errorf("sampler: the resume state (step %d of %d) does not fit this run of shape %s", r.Done, n, xShape)
		}
		if x, err = r.X.OnDeviceClone(s.backend, 0); err == nil {
			rng, err = r.RNG.OnDeviceClone(s.backend, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("sampler: loading the resume state: %w", err)
		}
		done = r.Done
	} else {
		if rng, err = RNGStateFromSeed(int64(seed)); err != nil {
			return nil, err
		}
		outs, err := s.init.Exec(rng, tensors.FromShape(xShape))
		if err != nil {
			return nil, fmt.Errorf("sampler: drawing x_T: %w", err)
		}
		rng, x = outs[0], outs[1]
	}
	var x0 *tensors.Tensor
	var dist []float64
	for i := n - 1 - done; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		outs, err := s.step.Exec(x, int32(i), rng, y)
		if err != nil {
			return nil, fmt.Errorf("sampler: step %d of %d: %w", n-i, n, err)
		}
		next, newX0, d, finite, newRNG := outs[0], outs[1], outs[2], outs[3], outs[4]
		if !tensors.ToScalar[bool](finite) {
			return nil, &DivergedError{Step: n - 1 - i, Timestep: s.sched.Timesteps[i], LastGood: x}
		}
		// Only the finiteness flag must come back every step; the residuals only when asked
		// for, or at the end.
		if h.Progress != nil || i == 0 {
			dist = toFloat64s(d)
		}
		if h.Progress != nil {
			h.Progress(n-i, n, dist)
		}
		if h.Snapshot != nil && (i == 0 || (h.SnapshotEvery > 0 && (n-i)%h.SnapshotEvery == 0)) {
			c, err := hostCopies(next, newX0)
			if err != nil {
				return nil, fmt.Errorf("sampler: snapshot after step %d: %w", n-i, err)
			}
			h.Snapshot(n-i, c[0], c[1])
		}
		if h.Checkpoint != nil && i > 0 && h.CheckpointEvery > 0 && (n-i)%h.CheckpointEvery == 0 {
			c, err := hostCopies(next, newRNG)
			if err == nil {
				err = h.Checkpoint(State{Done: n - i, X: c[0], RNG: c[1]})
			}
			if err != nil {
				return nil, fmt.Errorf("sampler: checkpoint after step %d: %w", n-i, err)
			}
		}
		x.FinalizeAll()
		rng.FinalizeAll()
		if x0 != nil {
			x0.FinalizeAll()
		}
		x, x0, rng = next, newX0, newRNG
	}
	if x0 == nil { // resumed at the very end: nothing left to run
		return nil, fmt.Errorf("sampler: the resume state is already at the last step (%d of %d)", done, n)
	}
	res := &Result{X: x, Distances: dist}
	if s.cfg.Return == ReturnX0Hat {
		res.X = x0
	}
	return res, nil
}

// hostCopies copies tensors to host memory, for callers that keep them past the step.
func hostCopies(ts ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	out := make([]*tensors.Tensor, len(ts))
	for i, t := range ts {
		c, err := t.LocalClone()
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
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

	step := guidance.Step{Xt: xt, X0Hat: x0, XPrev: xPrev, Y: y}
	if s.cfg.Guidance.UsesProjection() {
		// The reference noises y to the current step's level: √ᾱ_t y + √(1−ᾱ_t) n.
		var n *Node
		rng, n = RandomNormal(rng, y.Shape())
		step.NoisyY = Add(Mul(at(c.sqrtAlphaBar), y), Mul(at(c.sqrtOneMinusAlphaBar), n))
	}
	for range s.cfg.Guidance.PlusSamples {
		var u *Node
		rng, u = RandomUniform(rng, x0.Shape())
		step.Jitter = append(step.Jitter, u)
	}
	next, dist = guidance.Apply(s.cfg.Guidance, s.op, s.noise, step)
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

func toFloat64s(t *tensors.Tensor) []float64 {
	switch v := t.Value().(type) {
	case []float64:
		return v
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	return nil
}
