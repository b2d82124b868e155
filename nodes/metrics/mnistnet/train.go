package mnistnet

import (
	stdcontext "context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"strings"
	"time"

	"github.com/dpsflow/dpsflow/internal/procstat"
	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// TrainConfig is the recipe of a training run; every field is recorded in train.json and
// in the checkpoint's metadata.
type TrainConfig struct {
	Steps       int     `json:"steps"`        // optimizer steps
	Batch       int     `json:"batch"`        // images per step
	LR          float64 `json:"lr"`           // Adam's peak learning rate
	WarmupSteps int     `json:"warmup_steps"` // linear warmup to LR; then a cosine decay to 0 at Steps
	Seed        uint64  `json:"seed"`         // initial weights, batch order and shifts
	Shift       int     `json:"shift"`        // augmentation: each image moves by dx, dy uniform in [−Shift, Shift]
	Backend     string  `json:"backend"`      // backend spec ("" is the default, embedded)
	TestImages  int     `json:"test_images"`  // test images scored at the end; 0: all 10000

	// Fixed parts of the recipe, recorded for completeness.
	Optimizer string  `json:"optimizer"` // "adam"
	Beta1     float64 `json:"beta1"`
	Beta2     float64 `json:"beta2"`
	Epsilon   float64 `json:"epsilon"`
	Init      string  `json:"init"` // weight initialisation
	Loss      string  `json:"loss"`
}

// DefaultTrainConfig is the recipe of the shipped network.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Steps: 2000, Batch: 128, LR: 2e-3, WarmupSteps: 100, Seed: 1, Shift: 2}.withFixed()
}

func (c TrainConfig) withFixed() TrainConfig {
	c.Optimizer, c.Beta1, c.Beta2, c.Epsilon = "adam", 0.9, 0.999, 1e-8
	c.Init = "weights U(±√(6/fan_in)) (He uniform), biases 0; ChaCha8 keyed by SHA-256 of the seed"
	c.Loss = "mean softmax cross-entropy"
	return c
}

// TrainResult summarises a finished run.
type TrainResult struct {
	Config       TrainConfig `json:"config"`
	Steps        int         `json:"steps"`
	Epochs       float64     `json:"epochs"`           // Steps·Batch / 60000
	FinalLoss    float64     `json:"final_train_loss"` // mean step loss over the last 100 steps (or all, if fewer)
	FirstLoss    float64     `json:"first_train_loss"` // mean step loss over the first 100 steps
	TestAccuracy float64     `json:"test_accuracy"`    // fraction of TestImages classified right
	TestImages   int         `json:"test_images"`
	Params       int         `json:"params"`
	TrainSeconds float64     `json:"train_seconds"` // wall time of the optimizer steps, compilation included
	EvalSeconds  float64     `json:"eval_seconds"`
	Backend      string      `json:"backend"` // the backend's name and description
	procstat.Machine
	Out          string `json:"out"`
	Architecture string `json:"architecture"`
	TrainImages  int    `json:"train_images"`
}

// Architecture describes the network in one line.
const Architecture = "conv3x3(1→16)+ReLU, maxpool2, conv3x3(16→32)+ReLU, maxpool2, conv3x3(32→64)+ReLU, maxpool2, " +
	"flatten(64·4·4), fc1(1024→128)+ReLU = features, fc2(128→10) = logits"

func (c TrainConfig) validate() error {
	var bad []string
	if c.Steps < 1 {
		bad = append(bad, fmt.Sprintf("steps must be at least 1, got %d", c.Steps))
	}
	if c.Batch < 1 {
		bad = append(bad, fmt.Sprintf("batch must be at least 1, got %d", c.Batch))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		bad = append(bad, fmt.Sprintf("learning rate must be positive, got %g", c.LR))
	}
	if c.WarmupSteps < 0 {
		bad = append(bad, fmt.Sprintf("warmup steps must not be negative, got %d", c.WarmupSteps))
	}
	if c.Shift < 0 || c.Shift > 8 {
		bad = append(bad, fmt.Sprintf("shift must be in [0, 8], got %d", c.Shift))
	}
	if c.TestImages < 0 {
		bad = append(bad, fmt.Sprintf("test images must not be negative, got %d", c.TestImages))
	}
	if len(bad) > 0 {
		return fmt.Errorf("mnistnet: %s", strings.Join(bad, "; "))
	}
	return nil
}

// lrAt is the learning rate of step s (0-based): linear warmup, then cosine decay to 0.
func (c TrainConfig) lrAt(s int) float64 {
	if c.WarmupSteps > 0 && s < c.WarmupSteps {
		return c.LR * float64(s+1) / float64(c.WarmupSteps)
	}
	span := c.Steps - c.WarmupSteps
	if span <= 0 {
		return c.LR
	}
	frac := float64(s-c.WarmupSteps) / float64(span)
	return c.LR * 0.5 * (1 + math.Cos(math.Pi*frac))
}

// newRNG returns a generator for one purpose: ChaCha8 keyed by a hash of (purpose, seed, n),
// so every epoch's order and every step's shifts are independent streams.
func newRNG(purpose string, seed, n uint64) *rand.Rand {
	return rand.New(rand.NewChaCha8(sha256.Sum256(fmt.Appendf(nil, "dpsflow/mnistnet %s %d %d", purpose, seed, n))))
}

// InitWeights returns seeded initial weights: He-uniform kernels, zero biases.
func InitWeights(seed uint64) map[string]*tensors.Tensor {
	rng := newRNG("init", seed, 0)
	out := map[string]*tensors.Tensor{}
	for _, name := range names() { // sorted: the draw order is fixed
		s := Shapes()[name]
		v := make([]float32, s.Size())
		if strings.HasSuffix(name, ".weight") {
			fanIn := s.Size() / s.Dimensions[0]
			bound := math.Sqrt(6 / float64(fanIn))
			for i := range v {
				v[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		out[name] = tensors.FromFlatDataAndDimensions(v, s.Dimensions...)
	}
	return out
}

// shifted copies image src (32×32) into dst moved by (dx, dy), filling with −1 (background).
func shifted(dst, src []float32, dx, dy int) {
	for y := range Size {
		for x := range Size {
			sx, sy := x-dx, y-dy
			if sx < 0 || sy < 0 || sx >= Size || sy >= Size {
				dst[y*Size+x] = -1
			} else {
				dst[y*Size+x] = src[sy*Size+sx]
			}
		}
	}
}

// batcher draws the training batches: each epoch is a seeded permutation (the last partial
// batch is dropped), each step's shifts come from that step's own stream.
type batcher struct {
	cfg       TrainConfig
	set       *mnist.Set
	perm      []int
	permEpoch int
}

func (b *batcher) batch(step int) (x []float32, y []int32) {
	B, n := b.cfg.Batch, Size*Size
	perEpoch := b.set.N / B
	if epoch := step / perEpoch; epoch != b.permEpoch || b.perm == nil {
		b.perm, b.permEpoch = newRNG("epoch", b.cfg.Seed, uint64(epoch)).Perm(b.set.N), epoch
	}
	rng := newRNG("shift", b.cfg.Seed, uint64(step))
	x, y = make([]float32, B*n), make([]int32, B)
	k := step % perEpoch
	for i, idx := range b.perm[k*B : (k+1)*B] {
		dx, dy := 0, 0
		if s := b.cfg.Shift; s > 0 {
			dx, dy = rng.IntN(2*s+1)-s, rng.IntN(2*s+1)-s
		}
		shifted(x[i*n:(i+1)*n], b.set.Image(idx), dx, dy)
		y[i] = int32(b.set.Labels[idx])
	}
	return x, y
}

// lossGraph is the mean softmax cross-entropy of the logits of x against labels y.
func lossGraph(ctx *context.Context, x, y *graph.Node) *graph.Node {
	_, logits := forward(ctx, x)
	onehot := graph.OneHot(y, NumClasses, dtypes.Float32)
	return graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(onehot, graph.LogSoftmax(logits, -1)), -1)))
}

// Train fits the network on the MNIST training split in dataDir ("" finds the GoMNIST
// module, see mnist.Dir), scores it on the test split and writes the weights to out as
// safetensors (float32, the names of Shapes, the recipe and result in the metadata).
// progress (may be nil) is called after every step. When ctx is cancelled Train stops
// between steps and returns ctx's error without writing out.
func Train(ctx stdcontext.Context, cfg TrainConfig, dataDir, out string, progress func(step int, loss float64)) (TrainResult, error) {
	cfg = cfg.withFixed()
	if err := cfg.validate(); err != nil {
		return TrainResult{}, err
	}
	trainSet, testSet, err := mnist.Load(dataDir)
	if err != nil {
		return TrainResult{}, err
	}
	if trainSet.N < cfg.Batch {
		return TrainResult{}, fmt.Errorf("mnistnet: batch %d exceeds the %d training images", cfg.Batch, trainSet.N)
	}
	backend, release, err := xla.Shared(cfg.Backend)
	if err != nil {
		return TrainResult{}, err
	}
	defer release()

	res := TrainResult{Config: cfg, Steps: cfg.Steps, Params: NumParams(), Out: out, Architecture: Architecture,
		Backend: backend.Name() + " (" + backend.Description() + ")", Machine: procstat.ThisMachine(), TrainImages: trainSet.N,
		Epochs: float64(cfg.Steps*cfg.Batch) / float64(trainSet.N)}

	weights, losses, secs, err := fit(ctx, backend, cfg, trainSet, progress)
	if err != nil {
		return TrainResult{}, err
	}
	res.TrainSeconds = secs
	res.FirstLoss = mean(losses[:min(100, len(losses))])
	res.FinalLoss = mean(losses[max(0, len(losses)-100):])

	start := time.Now()
	net, err := FromWeights(weights, "trained weights")
	if err != nil {
		return TrainResult{}, err
	}
	nTest := testSet.N
	if cfg.TestImages > 0 {
		nTest = min(nTest, cfg.TestImages)
	}
	acc, err := net.Accuracy(backend, testSet.Images[:nTest*Size*Size], testSet.Labels[:nTest])
	if err != nil {
		return TrainResult{}, err
	}
	res.TestAccuracy, res.TestImages, res.EvalSeconds = acc, nTest, time.Since(start).Seconds()
	if err := ctx.Err(); err != nil {
		return TrainResult{}, fmt.Errorf("mnistnet: training stopped before %s was written: %w", out, err)
	}
	// The metadata holds only what the seed determines (no times, no paths), so that equal
	// recipes write byte-identical files.
	recipe, err := json.Marshal(cfg)
	if err != nil {
		return TrainResult{}, err
	}
	if err := checkpoint.WriteSafetensors(out, weights, map[string]string{
		"dpsflow.model":                  "mnistnet",
		"dpsflow.mnistnet.architecture":  Architecture,
		"dpsflow.mnistnet.recipe":        string(recipe),
		"dpsflow.mnistnet.final_loss":    fmt.Sprint(res.FinalLoss),
		"dpsflow.mnistnet.test_accuracy": fmt.Sprintf("%g on %d test images", res.TestAccuracy, nTest),
	}); err != nil {
		return TrainResult{}, err
	}
	return res, nil
}

// Accuracy is the fraction of images (as Run takes them) whose predicted digit is the label.
func (net *Net) Accuracy(backend backends.Backend, imgs []float32, labels []uint8) (float64, error) {
	_, classes, err := net.Run(backend, imgs, len(labels))
	if err != nil {
		return 0, err
	}
	if len(labels) == 0 {
		return math.NaN(), nil
	}
	right := 0
	for i, c := range classes {
		if c == int(labels[i]) {
			right++
		}
	}
	return float64(right) / float64(len(labels)), nil
}

// fit runs the optimizer steps and returns the final weights, every step's loss and the
// wall time.
func fit(ctx stdcontext.Context, backend backends.Backend, cfg TrainConfig, set *mnist.Set,
	progress func(int, float64)) (map[string]*tensors.Tensor, []float64, float64, error) {
	start := time.Now()
	gctx := context.New()
	for name, t := range InitWeights(cfg.Seed) {
		scope, vname, _ := strings.Cut(name, ".")
		gctx.In(scope).VariableWithValue(vname, t)
	}
	exec, err := context.NewExec(backend, gctx, func(ctx *context.Context, x, y, lr *graph.Node) *graph.Node {
		g := x.Graph()
		ctx = ctx.Checked(false) // Adam creates its moments on the first build
		loss := lossGraph(ctx, x, y)
		// Adam reads its rate from this variable; setting it from an input makes the schedule
		// a host-side function of the step.
		optimizers.LearningRateVar(ctx, dtypes.Float32, cfg.LR).SetValueGraph(lr)
		optimizers.Adam().LearningRate(cfg.LR).Betas(cfg.Beta1, cfg.Beta2).Epsilon(cfg.Epsilon).Done().UpdateGraph(ctx, g, loss)
		return loss
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("mnistnet: %w", err)
	}
	b := &batcher{cfg: cfg, set: set}
	losses := make([]float64, 0, cfg.Steps)
	for step := range cfg.Steps {
		if err := ctx.Err(); err != nil {
			return nil, nil, 0, fmt.Errorf("mnistnet: training stopped at step %d of %d, nothing written: %w", step, cfg.Steps, err)
		}
		x, y := b.batch(step)
		outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(x, cfg.Batch, Channels, Size, Size),
			tensors.FromFlatDataAndDimensions(y, cfg.Batch), float32(cfg.lrAt(step)))
		if err != nil {
			return nil, nil, 0, fmt.Errorf("mnistnet: step %d: %w", step+1, err)
		}
		loss := float64(tensors.ToScalar[float32](outs[0]))
		outs[0].FinalizeAll()
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, nil, 0, fmt.Errorf("mnistnet: loss is %g at step %d (lower the learning rate)", loss, step+1)
		}
		losses = append(losses, loss)
		if progress != nil {
			progress(step+1, loss)
		}
	}
	weights := map[string]*tensors.Tensor{}
	for _, name := range names() {
		scope, vname, _ := strings.Cut(name, ".")
		v := gctx.GetVariableByScopeAndName(context.RootScope+scope, vname)
		if v == nil {
			return nil, nil, 0, fmt.Errorf("mnistnet: lost variable %s", name)
		}
		t, err := v.MustValue().LocalClone()
		if err != nil {
			return nil, nil, 0, err
		}
		weights[name] = t
	}
	return weights, losses, time.Since(start).Seconds(), nil
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
