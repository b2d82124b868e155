package train

import (
	stdcontext "context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/schollz/progressbar/v3"
)

// Model predicts ε from (x_t, t); t is int32 [B], the step 0…T−1. v (learned-range
// variance) may be nil; when it is not, it is ignored by the loss (see the package doc).
type Model interface {
	Forward(ctx *context.Context, xt, t *graph.Node) (eps, v *graph.Node)
}

// Initializer is implemented by models that create their own weights (adm.Model does). New
// calls Init on a fresh run, not on a resumed one; models without it create their variables
// while Forward builds the graph, initialised by the context's initializers from the seed.
type Initializer interface {
	Init(ctx *context.Context, seed uint64)
}

// Images is a data set: N images of C×H×W, flattened NCHW row-major, values in [-1, 1].
type Images struct {
	Pixels     []float32
	N, C, H, W int
}

func (im Images) size() int { return im.C * im.H * im.W }

// ExportFunc writes weights (state-dict names → tensors) and string metadata to path, e.g.
// as safetensors.
type ExportFunc func(path string, weights map[string]*tensors.Tensor, metadata map[string]string) error

// Config of a training run. Steps, BatchSize, LR and EMADecay must be set; the rest have
// usable zero values.
type Config struct {
	OutDir          string  // checkpoints (and by default the export) go here; required
	Steps           int     // total optimizer steps, including those done before a resume
	BatchSize       int     // images per step
	LR              float64 // Adam learning rate (β = 0.9, 0.999, ε = 1e-8, no weight decay)
	WarmupSteps     int     // the LR ramps linearly up to LR over these first steps; 0: none
	LRSchedule      string  // after the warmup: "" or "constant" (LR), or "cosine" (see DecaySteps)
	DecaySteps      int     // cosine: the LR falls from LR to FinalLR along a half cosine, reaching it at this step and staying there; 0: Steps
	FinalLR         float64 // cosine: the LR from DecaySteps on; in [0, LR]
	EMADecay        float64 // ema ← d·ema + (1−d)·w after every step, e.g. 0.999; in [0, 1)
	CheckpointEvery int     // save every K steps; 0: only at the end and when interrupted
	Seed            uint64  // weights initialisation, batch order, t and ε

	// InitWeights, when set, replaces the model's initial weights on a fresh run (a warm
	// start from another run's export), by state-dict name (ExportName); every trainable
	// variable needs one of the same shape and dtype, and every entry must be used. Adam's
	// moments, the step counter and the schedule start afresh, and the EMA starts at these
	// weights. A resumed run takes its weights from its checkpoint and does not read them.
	InitWeights map[string]*tensors.Tensor
	InitFrom    string // names InitWeights (e.g. its file and sha256); required with them, and must not change across a resume

	// Network names the model's architecture when it is not the caller's default (e.g. its
	// config as JSON), so that a checkpoint of another network is refused by name instead of
	// failing on its first variable; it must not change across a resume. "" is the default
	// network, which every checkpoint made before this field was trained with.
	Network string

	EvalBatches int    // held-out batches of BatchSize test images; 0 means 8
	EvalSeed    uint64 // t and ε of the held-out loss: fixed, independent of Seed

	Quiet    bool                         // no progress bar
	Progress io.Writer                    // where the progress bar goes; nil: os.Stderr
	OnStep   func(step int, loss float64) // called after every step (logging, tests)
	Export   ExportFunc                   // called once at the end with the EMA weights; nil: no export
	ExportTo string                       // the path given to Export; "": OutDir/model.safetensors
	Metadata map[string]string            // added to the exported metadata
}

// Result summarises a finished run.
type Result struct {
	Steps          int     `json:"steps"`            // the step counter at the end
	StartStep      int     `json:"start_step"`       // where this process started (> 0 after a resume)
	RunningLoss    float64 `json:"running_loss"`     // bias-corrected moving average of the step losses (window ≈ 50 steps)
	HeldOutLoss    float64 `json:"held_out_loss"`    // ε-loss of the EMA weights on the test set
	Seconds        float64 `json:"seconds"`          // training time summed over all processes of the run
	StepsPerSecond float64 `json:"steps_per_second"` // in this process, compilation included
	ExportPath     string  `json:"export_path,omitempty"`
}

// CheckpointFile is the name of the checkpoint in Config.OutDir.
const CheckpointFile = "checkpoint.gob"

// runningDecay weighs the running loss: an exponential average over about 50 steps.
const runningDecay = 0.98

// Trainer holds a run: the context with all variables, the compiled step and the host state.
type Trainer struct {
	cfg     Config
	backend backends.Backend
	model   Model
	train   Images
	test    Images
	sched   *schedule.Schedule

	ctx       *context.Context
	exec      *context.Exec
	step      int
	runSum    float64 // running loss = runSum / runWeight (bias-corrected EMA)
	runWeight float64
	seconds   float64
	startStep int
	permEpoch int
	perm      []int
}

// New prepares a run. If Config.OutDir holds a checkpoint, the run continues from it; the
// checkpoint must come from the same seed, batch size, learning rate, warmup, EMA decay and
// data set size (anything else would not reproduce the uninterrupted run).
func New(backend backends.Backend, model Model, trainSet, testSet Images, cfg Config) (*Trainer, error) {
	if err := cfg.validate(trainSet, testSet); err != nil {
		return nil, err
	}
	if cfg.EvalBatches == 0 {
		cfg.EvalBatches = 8
	}
	if cfg.ExportTo == "" {
		cfg.ExportTo = filepath.Join(cfg.OutDir, "model.safetensors")
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	t := &Trainer{cfg: cfg, backend: backend, model: model, train: trainSet, test: testSet,
		sched: schedule.Default(), ctx: context.New(), permEpoch: -1}
	// GoMLX draws initial weights from the context RNG; seeding it makes them reproducible.
	t.ctx.SetParam(context.ParamInitialSeed, int64(cfg.Seed))
	if err := t.load(); err != nil {
		return nil, err
	}
	if fresh := t.ctx.NumVariables() == 0; fresh {
		init, ok := model.(Initializer)
		if ok {
			init.Init(t.ctx, cfg.Seed)
		}
		if cfg.InitWeights != nil {
			if !ok {
				return nil, errors.New("train: initial weights need a model that creates its variables (an Initializer)")
			}
			if err := t.setWeights(cfg.InitWeights, cfg.InitFrom); err != nil {
				return nil, err
			}
		}
	}
	t.startStep = t.step
	var err error
	t.exec, err = context.NewExec(backend, t.ctx, t.stepGraph)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return t, nil
}

// scheduleString describes the learning rate after the warmup, e.g. "cosine to 2e-05 at step 9000".
func (c *Config) scheduleString() string {
	if c.LRSchedule != "cosine" {
		return "constant"
	}
	return fmt.Sprintf("cosine to %g at step %d", c.FinalLR, c.decaySteps())
}

func (c *Config) validate(trainSet, testSet Images) error {
	var bad []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	check(c.OutDir != "", "an output directory is required")
	check(c.Steps >= 1, "steps must be at least 1, got %d", c.Steps)
	check(c.BatchSize >= 1, "batch size must be at least 1, got %d", c.BatchSize)
	check(c.LR > 0 && !math.IsInf(c.LR, 0), "learning rate must be positive, got %g", c.LR)
	check(c.WarmupSteps >= 0, "warmup steps must not be negative, got %d", c.WarmupSteps)
	switch c.LRSchedule {
	case "", "constant":
		check(c.DecaySteps == 0 && c.FinalLR == 0, "decay steps and final learning rate are for the cosine schedule only")
	case "cosine":
		check(c.DecaySteps >= 0, "decay steps must not be negative, got %d", c.DecaySteps)
		check(c.FinalLR >= 0 && c.FinalLR <= c.LR, "final learning rate must be in [0, %g], got %g", c.LR, c.FinalLR)
		check(c.decaySteps() > c.WarmupSteps, "decay steps %d must exceed the %d warmup steps", c.decaySteps(), c.WarmupSteps)
	default:
		check(false, "learning-rate schedule %q: want constant or cosine", c.LRSchedule)
	}
	check(c.EMADecay >= 0 && c.EMADecay < 1, "EMA decay must be in [0, 1), got %g", c.EMADecay)
	check(c.CheckpointEvery >= 0, "checkpoint interval must not be negative, got %d", c.CheckpointEvery)
	check((c.InitWeights == nil) == (c.InitFrom == ""), "initial weights and their name (InitFrom) go together")
	check(c.EvalBatches >= 0, "eval batches must not be negative, got %d", c.EvalBatches)
	for _, d := range []struct {
		name string
		im   Images
	}{{"training", trainSet}, {"test", testSet}} {
		check(d.im.N >= 1 && d.im.size() >= 1 && len(d.im.Pixels) == d.im.N*d.im.size(),
			"%s set: %d pixels for %d images of %d×%d×%d", d.name, len(d.im.Pixels), d.im.N, d.im.C, d.im.H, d.im.W)
	}
	check(trainSet.C == testSet.C && trainSet.H == testSet.H && trainSet.W == testSet.W,
		"training and test images differ in shape")
	check(trainSet.N >= c.BatchSize, "batch size %d exceeds the %d training images", c.BatchSize, trainSet.N)
	if len(bad) > 0 {
		return fmt.Errorf("train: %s", strings.Join(bad, "; "))
	}
	return nil
}

// decaySteps is where a cosine schedule reaches FinalLR.
func (c *Config) decaySteps() int {
	if c.DecaySteps > 0 {
		return c.DecaySteps
	}
	return c.Steps
}

// LRAt is the learning rate of the step that follows `done` steps: the linear warmup, then
// the schedule. The training graph computes the same expression in float32.
func (c *Config) LRAt(done int) float64 {
	lr := c.LR
	if c.LRSchedule == "cosine" {
		d := c.decaySteps()
		p := min(1, max(0, float64(done-c.WarmupSteps)/float64(d-c.WarmupSteps)))
		lr = c.FinalLR + (c.LR-c.FinalLR)*0.5*(1+math.Cos(math.Pi*p))
	}
	if w := c.WarmupSteps; w > 0 {
		lr *= min(1, float64(done+1)/float64(w))
	}
	return lr
}

// GlobalStep is the number of optimizer steps taken so far (including before a resume).
func (t *Trainer) GlobalStep() int { return t.step }

// Context is the GoMLX context holding every variable of the run.
func (t *Trainer) Context() *context.Context { return t.ctx }

// RunningLoss is the bias-corrected moving average of the step losses.
func (t *Trainer) RunningLoss() float64 {
	if t.runWeight == 0 {
		return math.NaN()
	}
	return t.runSum / t.runWeight
}

// stepGraph is one training step: the loss, Adam's update and the EMA update.
func (t *Trainer) stepGraph(ctx *context.Context, x0, tt, eps, a, s *graph.Node) *graph.Node {
	g := x0.Graph()
	// Variables may already exist (resumed from a checkpoint): reuse them, as GoMLX's own
	// trainer does.
	ctx = ctx.Checked(false)
	ctx.SetTraining(g, true)
	step := optimizers.GetGlobalStepVar(ctx).ValueGraph(g) // steps done before this one
	loss := lossGraph(ctx, t.model, x0, tt, eps, a, s)

	var vars []*context.Variable
	var before []*graph.Node
	for v := range ctx.IterVariables() {
		if v.Trainable && v.InUseByGraph(g) {
			vars = append(vars, v)
			before = append(before, v.ValueGraph(g))
		}
	}
	if len(vars) == 0 {
		panic(errors.New("the model has no trainable variables"))
	}

	// Adam reads its learning rate from this variable, so a warmup is a graph value set
	// before the update. Computing it from the step counter keeps resumed runs exact.
	lr := lrGraph(&t.cfg, step)
	optimizers.LearningRateVar(ctx, dtypes.Float32, t.cfg.LR).SetValueGraph(lr)
	optimizers.Adam().LearningRate(t.cfg.LR).Epsilon(1e-8).Done().UpdateGraph(ctx, g, loss)

	// EMA: the average starts at the initial weights (guided-diffusion copies them), which
	// the zero-initialised variables learn at step 0.
	first := graph.Equal(step, graph.ScalarZero(g, step.DType()))
	d := t.cfg.EMADecay
	for i, v := range vars {
		ema := ctx.InAbsPath(emaScope(v.Scope())).WithInitializer(initializers.Zero).
			VariableWithShape(v.Name(), v.Shape()).SetTrainable(false)
		prev := graph.Where(first, before[i], ema.ValueGraph(g))
		ema.SetValueGraph(graph.Add(graph.MulScalar(prev, d), graph.MulScalar(v.ValueGraph(g), 1-d)))
	}
	return loss
}

// lrGraph is Config.LRAt(step) as a graph of the step counter (steps done before this one).
func lrGraph(c *Config, step *graph.Node) *graph.Node {
	g := step.Graph()
	done := graph.ConvertDType(step, dtypes.Float32)
	lr := graph.Const(g, float32(c.LR))
	if c.LRSchedule == "cosine" {
		d := c.decaySteps()
		p := graph.DivScalar(graph.AddScalar(done, -float64(c.WarmupSteps)), float64(d-c.WarmupSteps))
		p = graph.Min(graph.Max(p, graph.ScalarZero(g, dtypes.Float32)), graph.ScalarOne(g, dtypes.Float32))
		half := graph.MulScalar(graph.AddScalar(graph.Cos(graph.MulScalar(p, math.Pi)), 1), 0.5)
		lr = graph.AddScalar(graph.MulScalar(half, c.LR-c.FinalLR), c.FinalLR)
	}
	if w := c.WarmupSteps; w > 0 {
		frac := graph.DivScalar(graph.AddScalar(done, 1), float64(w))
		lr = graph.Mul(lr, graph.Min(frac, graph.ScalarOne(g, dtypes.Float32)))
	}
	return lr
}

// lossGraph is mean (ε̂(x_t, t) − ε)² with x_t = a·x0 + s·ε, a = √ᾱ_t and s = √(1−ᾱ_t)
// given per sample ([B]).
func lossGraph(ctx *context.Context, model Model, x0, tt, eps, a, s *graph.Node) *graph.Node {
	return graph.ReduceAllMean(squaredError(ctx, model, x0, tt, eps, a, s))
}

// perImageLoss is lossGraph's mean per image: [B].
func perImageLoss(ctx *context.Context, model Model, x0, tt, eps, a, s *graph.Node) *graph.Node {
	sq := squaredError(ctx, model, x0, tt, eps, a, s)
	axes := make([]int, sq.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	return graph.ReduceMean(sq, axes...)
}

// squaredError is (ε̂(x_t, t) − ε)² element by element.
func squaredError(ctx *context.Context, model Model, x0, tt, eps, a, s *graph.Node) *graph.Node {
	dims := make([]int, x0.Rank())
	for i := range dims {
		dims[i] = 1
	}
	dims[0] = x0.Shape().Dimensions[0]
	xt := graph.Add(graph.Mul(graph.Reshape(a, dims...), x0), graph.Mul(graph.Reshape(s, dims...), eps))
	epsHat, _ := model.Forward(ctx, xt, tt)
	if !epsHat.Shape().Equal(eps.Shape()) {
		panic(fmt.Errorf("model returned ε̂ of shape %s for x_t of shape %s", epsHat.Shape(), eps.Shape()))
	}
	return graph.Square(graph.Sub(epsHat, eps))
}

// emaScope is where the EMA copy of a variable in scope lives.
func emaScope(scope string) string {
	return strings.TrimSuffix(context.RootScope+"ema"+scope, context.ScopeSeparator)
}

// newRNG returns a generator for one purpose: a hash of (purpose, seed, n) keys ChaCha8, so
// streams for different steps or epochs are independent and need no stored state.
func newRNG(purpose string, seed, n uint64) *rand.Rand {
	return rand.New(rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "dpsflow/train %s %d %d", purpose, seed, n))))
}

// noised draws t and ε from rng and returns the step inputs for images x0 (flattened).
func (t *Trainer) noised(rng *rand.Rand, x0 []float32, B int, im Images) []any {
	ts, a, s, eps := make([]int32, B), make([]float32, B), make([]float32, B), make([]float32, len(x0))
	drawNoise(t.sched, rng, ts, a, s, eps)
	return stepInputs(x0, ts, eps, a, s, im)
}

// drawNoise fills ts with steps t ~ U{0…T−1}, a and s with √ᾱ_t and √(1−ᾱ_t), then eps with
// N(0, 1) draws, in that order.
func drawNoise(sched *schedule.Schedule, rng *rand.Rand, ts []int32, a, s, eps []float32) {
	for i := range ts {
		ts[i] = int32(rng.IntN(sched.Len()))
		ab := sched.AlphaBars[ts[i]]
		a[i], s[i] = float32(math.Sqrt(ab)), float32(math.Sqrt(1-ab))
	}
	for i := range eps {
		eps[i] = float32(rng.NormFloat64())
	}
}

// stepInputs are the loss graph's inputs (x0, t, ε, a, s) for len(ts) images of im's shape.
func stepInputs(x0 []float32, ts []int32, eps, a, s []float32, im Images) []any {
	B := len(ts)
	return []any{
		tensors.FromFlatDataAndDimensions(x0, B, im.C, im.H, im.W),
		tensors.FromFlatDataAndDimensions(ts, B),
		tensors.FromFlatDataAndDimensions(eps, B, im.C, im.H, im.W),
		tensors.FromFlatDataAndDimensions(a, B),
		tensors.FromFlatDataAndDimensions(s, B),
	}
}

// batch returns the inputs of step `step`: epochs are seeded permutations of the training
// set (the last partial batch of an epoch is dropped), t and ε come from the step's stream.
func (t *Trainer) batch(step int) []any {
	B, im := t.cfg.BatchSize, t.train
	perEpoch := im.N / B
	if epoch := step / perEpoch; epoch != t.permEpoch {
		t.perm, t.permEpoch = newRNG("epoch", t.cfg.Seed, uint64(epoch)).Perm(im.N), epoch
	}
	k, n := step%perEpoch, im.size()
	x0 := make([]float32, B*n)
	for i, idx := range t.perm[k*B : (k+1)*B] {
		copy(x0[i*n:(i+1)*n], im.Pixels[idx*n:(idx+1)*n])
	}
	return t.noised(newRNG("step", t.cfg.Seed, uint64(step)), x0, B, im)
}

// Step takes one optimizer step and returns its loss.
func (t *Trainer) Step() (float64, error) {
	start := time.Now()
	out, err := t.exec.Exec(t.batch(t.step)...)
	if err != nil {
		return 0, fmt.Errorf("train: step %d: %w", t.step+1, err)
	}
	loss := float64(tensors.ToScalar[float32](out[0]))
	t.step++
	t.seconds += time.Since(start).Seconds()
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, fmt.Errorf("train: loss is %g at step %d (try a lower learning rate or a warmup)", loss, t.step)
	}
	t.runSum = runningDecay*t.runSum + (1-runningDecay)*loss
	t.runWeight = runningDecay*t.runWeight + (1 - runningDecay)
	return loss, nil
}

// modelVars are the model's weights: the trainable variables (EMA copies, Adam's moments
// and the counters are not trainable).
func (t *Trainer) modelVars() []*context.Variable {
	var out []*context.Variable
	for v := range t.ctx.IterVariables() {
		if v.Trainable {
			out = append(out, v)
		}
	}
	return out
}

// ExportName turns a variable's scope and name into its state-dict name:
// ("/input_blocks/0/0", "weight") → "input_blocks.0.0.weight".
func ExportName(scope, name string) string {
	scope = strings.Trim(scope, context.ScopeSeparator)
	if scope == "" {
		return name
	}
	return strings.ReplaceAll(scope, context.ScopeSeparator, ".") + "." + name
}

// weights copies the model's weights (ema: their EMA) to host tensors by state-dict name.
func (t *Trainer) weights(ema bool) (map[string]*tensors.Tensor, error) {
	vars := t.modelVars()
	if len(vars) == 0 {
		return nil, errors.New("train: the model has no weights yet (take a step first)")
	}
	out := make(map[string]*tensors.Tensor, len(vars))
	for _, v := range vars {
		src := v
		if ema {
			if src = t.ctx.GetVariableByScopeAndName(emaScope(v.Scope()), v.Name()); src == nil || !src.HasValue() {
				return nil, fmt.Errorf("train: no EMA of %s", v.ScopeAndName())
			}
		}
		value, err := src.Value()
		if err == nil {
			value, err = value.LocalClone()
		}
		if err != nil {
			return nil, fmt.Errorf("train: reading %s: %w", src.ScopeAndName(), err)
		}
		out[ExportName(v.Scope(), v.Name())] = value
	}
	return out, nil
}

// setWeights overwrites every trainable variable with the entry of ws under its state-dict
// name; a missing, surplus or misshapen entry is an error naming it and source.
func (t *Trainer) setWeights(ws map[string]*tensors.Tensor, source string) error {
	seen := make(map[string]bool, len(ws))
	var bad []string
	for _, v := range t.modelVars() {
		name := ExportName(v.Scope(), v.Name())
		w, ok := ws[name]
		seen[name] = ok
		switch {
		case !ok:
			bad = append(bad, name+" is missing")
		case !w.Shape().Equal(v.Shape()):
			bad = append(bad, fmt.Sprintf("%s is %s, the model's is %s", name, w.Shape(), v.Shape()))
		default:
			value, err := w.LocalClone()
			if err == nil {
				err = v.SetValue(value)
			}
			if err != nil {
				return fmt.Errorf("train: initial weights %s: %s: %w", source, name, err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ws)) {
		if !seen[name] {
			bad = append(bad, name+" is not a weight of the model")
		}
	}
	if len(bad) > 0 {
		if len(bad) > 8 {
			bad = append(bad[:8], fmt.Sprintf("and %d more", len(bad)-8))
		}
		return fmt.Errorf("train: initial weights %s do not fit the model: %s", source, strings.Join(bad, "; "))
	}
	return nil
}

// Weights returns a copy of the current (raw) weights by state-dict name.
func (t *Trainer) Weights() (map[string]*tensors.Tensor, error) { return t.weights(false) }

// EMAWeights returns a copy of the EMA weights by state-dict name.
func (t *Trainer) EMAWeights() (map[string]*tensors.Tensor, error) { return t.weights(true) }

// HeldOutLoss is the ε-loss of the EMA weights on EvalBatches batches of test images taken
// in order (wrapping around), with t and ε from EvalSeed: the same numbers for every run and
// every training seed.
func (t *Trainer) HeldOutLoss() (float64, error) {
	// The EMA weights go into a fresh context under the model's own names, so the model
	// reads them as it reads its weights; Reuse makes a missing name an error.
	evalCtx := context.New()
	for _, v := range t.modelVars() {
		ema := t.ctx.GetVariableByScopeAndName(emaScope(v.Scope()), v.Name())
		if ema == nil || !ema.HasValue() {
			return 0, fmt.Errorf("train: no EMA of %s (take a step first)", v.ScopeAndName())
		}
		value, err := ema.MustValue().LocalClone()
		if err != nil {
			return 0, err
		}
		evalCtx.InAbsPath(v.Scope()).VariableWithValue(v.Name(), value)
	}
	if evalCtx.NumVariables() == 0 {
		return 0, errors.New("train: the model has no weights yet (take a step first)")
	}
	exec, err := context.NewExec(t.backend, evalCtx.Reuse(),
		func(ctx *context.Context, x0, tt, eps, a, s *graph.Node) *graph.Node {
			return lossGraph(ctx, t.model, x0, tt, eps, a, s)
		})
	if err != nil {
		return 0, err
	}
	defer exec.Finalize()
	B, im := t.cfg.BatchSize, t.test
	n := im.size()
	rng := newRNG("eval", t.cfg.EvalSeed, 0)
	sum := 0.0
	for b := range t.cfg.EvalBatches {
		x0 := make([]float32, B*n)
		for i := range B {
			idx := (b*B + i) % im.N
			copy(x0[i*n:(i+1)*n], im.Pixels[idx*n:(idx+1)*n])
		}
		out, err := exec.Exec(t.noised(rng, x0, B, im)...)
		if err != nil {
			return 0, fmt.Errorf("train: held-out loss: %w", err)
		}
		sum += float64(tensors.ToScalar[float32](out[0]))
	}
	return sum / float64(t.cfg.EvalBatches), nil
}

// Run trains until Config.Steps, checkpointing every CheckpointEvery steps and at the end,
// then computes the held-out loss and exports the EMA weights. When ctx is cancelled it
// saves a checkpoint and returns an error wrapping ctx.Err(); running again continues.
func (t *Trainer) Run(ctx stdcontext.Context) (*Result, error) {
	var bar *progressbar.ProgressBar
	if !t.cfg.Quiet && t.step < t.cfg.Steps {
		w := t.cfg.Progress
		if w == nil {
			w = os.Stderr
		}
		bar = progressbar.NewOptions(t.cfg.Steps-t.step, progressbar.OptionSetWriter(w),
			progressbar.OptionSetItsString("steps"), progressbar.OptionShowIts(), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }))
	}
	wall := time.Now()
	for t.step < t.cfg.Steps {
		if err := ctx.Err(); err != nil {
			if serr := t.SaveCheckpoint(); serr != nil {
				return nil, errors.Join(err, serr)
			}
			return nil, fmt.Errorf("train: stopped at step %d, checkpoint saved in %s (run again to continue): %w",
				t.step, t.cfg.OutDir, err)
		}
		loss, err := t.Step()
		if err != nil {
			return nil, err
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("step %d loss %.4f", t.step, t.RunningLoss()))
			_ = bar.Add(1)
		}
		if t.cfg.OnStep != nil {
			t.cfg.OnStep(t.step, loss)
		}
		if k := t.cfg.CheckpointEvery; k > 0 && t.step%k == 0 {
			if err := t.SaveCheckpoint(); err != nil {
				return nil, err
			}
		}
	}
	elapsed := time.Since(wall).Seconds()
	if err := t.SaveCheckpoint(); err != nil {
		return nil, err
	}
	res := &Result{Steps: t.step, StartStep: t.startStep, RunningLoss: t.RunningLoss(), Seconds: t.seconds}
	if done := t.step - t.startStep; done > 0 && elapsed > 0 {
		res.StepsPerSecond = float64(done) / elapsed
	}
	var err error
	if res.HeldOutLoss, err = t.HeldOutLoss(); err != nil {
		return nil, err
	}
	if t.cfg.Export != nil {
		if err := t.export(res); err != nil {
			return nil, err
		}
		res.ExportPath = t.cfg.ExportTo
	}
	return res, nil
}

func (t *Trainer) export(res *Result) error {
	weights, err := t.EMAWeights()
	if err != nil {
		return err
	}
	meta := map[string]string{
		"dpsflow.kind":          "ddpm-eps",
		"dpsflow.weights":       "ema",
		"dpsflow.ema_decay":     fmt.Sprint(t.cfg.EMADecay),
		"dpsflow.steps":         fmt.Sprint(res.Steps),
		"dpsflow.batch_size":    fmt.Sprint(t.cfg.BatchSize),
		"dpsflow.lr":            fmt.Sprint(t.cfg.LR),
		"dpsflow.lr_schedule":   t.cfg.scheduleString(),
		"dpsflow.seed":          fmt.Sprint(t.cfg.Seed),
		"dpsflow.held_out_loss": fmt.Sprint(res.HeldOutLoss),
		"dpsflow.schedule":      "linear 1000 1e-4 0.02",
	}
	if t.cfg.InitFrom != "" {
		meta["dpsflow.init_from"] = t.cfg.InitFrom // the steps above are this run's, after those weights
	}
	for k, v := range t.cfg.Metadata {
		meta[k] = v
	}
	if err := t.cfg.Export(t.cfg.ExportTo, weights, meta); err != nil {
		return fmt.Errorf("train: exporting %s: %w", t.cfg.ExportTo, err)
	}
	return nil
}
