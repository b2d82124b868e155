package train

import (
	"bytes"
	stdcontext "context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

var (
	backendOnce sync.Once
	backendVal  backends.Backend
)

func backend(t testing.TB) backends.Backend {
	backendOnce.Do(func() {
		var err error
		if backendVal, err = xla.New("embedded"); err != nil {
			t.Fatal(err)
		}
	})
	return backendVal
}

// tinyConv is ε̂ = conv3×3(silu(conv3×3(x_t))) with 8 hidden channels; it ignores t. Its
// variables are created while the graph is built and initialised by the context.
type tinyConv struct{}

func (tinyConv) Forward(ctx *context.Context, xt, _ *graph.Node) (*graph.Node, *graph.Node) {
	conv := func(ctx *context.Context, x *graph.Node, cout int) *graph.Node {
		cin := x.Shape().Dimensions[1]
		w := ctx.VariableWithShape("weight", shapes.Make(xt.DType(), cout, cin, 3, 3)).ValueGraph(xt.Graph())
		b := ctx.VariableWithShape("bias", shapes.Make(xt.DType(), cout)).ValueGraph(xt.Graph())
		y := graph.Convolve(x, w).ChannelsAxis(images.ChannelsFirst).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
		return graph.Add(y, graph.Reshape(b, 1, cout, 1, 1))
	}
	h := conv(ctx.In("net").In("0"), xt, 8)
	h = graph.Mul(h, graph.Sigmoid(h))
	return conv(ctx.In("net").In("2"), h, xt.Shape().Dimensions[1]), nil
}

// smooth returns n 1×8×8 images that are smooth random ramps in [-1, 1], so there is
// structure to learn.
func smooth(n int, seed uint64) Images {
	rng := rand.New(rand.NewPCG(seed, 1))
	im := Images{N: n, C: 1, H: 8, W: 8, Pixels: make([]float32, n*64)}
	for i := range n {
		a, b, c := rng.Float64()*2-1, rng.Float64()*2-1, rng.Float64()*0.5
		for y := range 8 {
			for x := range 8 {
				v := c + a*float64(x-4)/4 + b*float64(y-4)/4
				im.Pixels[i*64+y*8+x] = float32(max(-1, min(1, v)))
			}
		}
	}
	return im
}

func tinyConfig(dir string, steps int) Config {
	return Config{OutDir: dir, Steps: steps, BatchSize: 16, LR: 1e-2, WarmupSteps: 3, EMADecay: 0.9,
		Seed: 7, EvalBatches: 2, Quiet: true}
}

func newTiny(t *testing.T, cfg Config) *Trainer {
	t.Helper()
	tr, err := New(backend(t), tinyConv{}, smooth(128, 1), smooth(32, 2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestLossDecreases(t *testing.T) {
	cfg := tinyConfig(t.TempDir(), 60)
	var losses []float64
	cfg.OnStep = func(_ int, loss float64) { losses = append(losses, loss) }
	var exported map[string]*tensors.Tensor
	var meta map[string]string
	cfg.Export = func(path string, w map[string]*tensors.Tensor, m map[string]string) error {
		exported, meta = w, m
		return os.WriteFile(path, []byte("fake"), 0o644)
	}
	tr := newTiny(t, cfg)
	start := time.Now()
	res, err := tr.Run(stdcontext.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tiny model: %d steps in %.2fs (%.0f steps/s incl. compile), running loss %.3f, held-out %.3f",
		res.Steps, time.Since(start).Seconds(), res.StepsPerSecond, res.RunningLoss, res.HeldOutLoss)
	first, last := mean(losses[:10]), mean(losses[len(losses)-10:])
	if !(last < 0.7*first) {
		t.Errorf("loss did not decrease: first 10 steps %.3f, last 10 %.3f", first, last)
	}
	if res.Steps != 60 || res.StartStep != 0 || math.IsNaN(res.RunningLoss) {
		t.Errorf("result %+v", res)
	}
	// The held-out loss is deterministic and uses the EMA weights (not the raw ones).
	if !(res.HeldOutLoss > 0 && res.HeldOutLoss < first) {
		t.Errorf("held-out loss %g (first training losses %g)", res.HeldOutLoss, first)
	}
	if again, err := tr.HeldOutLoss(); err != nil || again != res.HeldOutLoss {
		t.Errorf("held-out loss not reproducible: %g then %g (%v)", res.HeldOutLoss, again, err)
	}

	// Export: EMA weights under state-dict names, differing from the raw weights.
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range exported {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"net.0.bias", "net.0.weight", "net.2.bias", "net.2.weight"}; !slices.Equal(names, want) {
		t.Fatalf("exported %v, want %v", names, want)
	}
	if res.ExportPath != filepath.Join(cfg.OutDir, "model.safetensors") || meta["dpsflow.weights"] != "ema" ||
		meta["dpsflow.steps"] != "60" {
		t.Errorf("export path %q, metadata %v", res.ExportPath, meta)
	}
	raw, _ := tr.Weights()
	ema, _ := tr.EMAWeights()
	if !ema["net.0.weight"].Equal(exported["net.0.weight"]) || raw["net.0.weight"].Equal(ema["net.0.weight"]) {
		t.Error("export is not the EMA, or the EMA equals the raw weights")
	}

	// Running the finished command again continues from the final checkpoint: no steps.
	tr2 := newTiny(t, cfg)
	res2, err := tr2.Run(stdcontext.Background())
	if err != nil || res2.Steps != 60 || res2.StartStep != 60 || res2.HeldOutLoss != res.HeldOutLoss {
		t.Errorf("rerun after completion: %+v, %v", res2, err)
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// state is every variable of a run, bit for bit, plus the host state.
func state(t *testing.T, tr *Trainer) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for v := range tr.Context().IterVariables() {
		v.MustValue().ConstBytes(func(b []byte) { out[v.ScopeAndName()] = slices.Clone(b) })
	}
	out["host"] = fmt.Appendf(nil, "step %d running loss %x", tr.GlobalStep(), math.Float64bits(tr.RunningLoss()))
	return out
}

func compareStates(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d variables, want %d", what, len(got), len(want))
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Errorf("%s: %s differs from the uninterrupted run", what, name)
		}
	}
}

// resumeConfig is tinyConfig with a cosine schedule, so resuming must also restore the
// learning rate's place in it.
func resumeConfig(dir string, steps int) Config {
	cfg := tinyConfig(dir, steps)
	cfg.LRSchedule, cfg.DecaySteps, cfg.FinalLR = "cosine", 10, 1e-3
	return cfg
}

func TestResumeMatchesUninterruptedRun(t *testing.T) {
	const steps, every = 12, 5
	ref := newTiny(t, resumeConfig(t.TempDir(), steps))
	if _, err := ref.Run(stdcontext.Background()); err != nil {
		t.Fatal(err)
	}
	want := state(t, ref)
	for _, name := range []string{"/net/0/weight", "/ema/net/0/weight", "/AdamOptimizer/net/0/weight_1st_moment",
		"/global_step", "/AdamOptimizer/global_step"} {
		if want[name] == nil {
			t.Fatalf("no variable %s in %v", name, slices.Collect(func(yield func(string) bool) {
				for k := range want {
					yield(k)
				}
			}))
		}
	}

	// Interrupted at step 8 (Ctrl-C: a checkpoint is saved), then crash-like: only the
	// checkpoint of step 5, copied aside when step 6 ran, survives.
	dir, crashDir := t.TempDir(), t.TempDir()
	cfg := resumeConfig(dir, steps)
	cfg.CheckpointEvery = every
	ctx, cancel := stdcontext.WithCancel(stdcontext.Background())
	cfg.OnStep = func(step int, _ float64) {
		switch step {
		case every + 1:
			b, err := os.ReadFile(filepath.Join(dir, CheckpointFile))
			if err == nil {
				err = os.WriteFile(filepath.Join(crashDir, CheckpointFile), b, 0o644)
			}
			if err != nil {
				t.Error(err)
			}
		case 8:
			cancel()
		}
	}
	if _, err := newTiny(t, cfg).Run(ctx); !errors.Is(err, stdcontext.Canceled) {
		t.Fatalf("interrupted run returned %v", err)
	}

	for _, c := range []struct {
		dir  string
		from int
	}{{dir, 8}, {crashDir, every}} {
		cfg := resumeConfig(c.dir, steps)
		cfg.CheckpointEvery = every
		tr := newTiny(t, cfg) // a new process: nothing but the directory carries over
		if tr.GlobalStep() != c.from {
			t.Fatalf("resumed at step %d, want %d", tr.GlobalStep(), c.from)
		}
		res, err := tr.Run(stdcontext.Background())
		if err != nil {
			t.Fatal(err)
		}
		if res.StartStep != c.from || res.Steps != steps {
			t.Errorf("result %+v", res)
		}
		compareStates(t, fmt.Sprint("resumed from step ", c.from), state(t, tr), want)
	}

	// Different settings cannot continue the checkpoint.
	bad := resumeConfig(dir, steps)
	bad.Seed, bad.BatchSize, bad.FinalLR, bad.Network = 8, 8, 2e-3, "wide"
	if _, err := New(backend(t), tinyConv{}, smooth(128, 1), smooth(32, 2), bad); err == nil ||
		!strings.Contains(err.Error(), "seed 7, now 8") || !strings.Contains(err.Error(), "batch size 16, now 8") ||
		!strings.Contains(err.Error(), "learning-rate schedule cosine to 0.001 at step 10, now cosine to 0.002 at step 10") ||
		!strings.Contains(err.Error(), "network the default, now wide") {
		t.Errorf("mismatched settings: %v", err)
	}
	// More steps may follow: the decay's end was fixed at the start, the rate stays at FinalLR.
	more := resumeConfig(dir, steps+3)
	tr := newTiny(t, more)
	if _, err := tr.Run(stdcontext.Background()); err != nil {
		t.Fatalf("continuing with more steps: %v", err)
	}
	if got := learningRate(t, tr); math.Abs(got-more.FinalLR) > 1e-9 {
		t.Errorf("after the decay: learning rate %g, want %g", got, more.FinalLR)
	}
}

// learningRate is the rate Adam used in the last step.
func learningRate(t *testing.T, tr *Trainer) float64 {
	t.Helper()
	v := tr.ctx.GetVariableByScopeAndName("/optimizers", "learning_rate")
	if v == nil {
		t.Fatal("no learning-rate variable")
	}
	return float64(tensors.ToScalar[float32](v.MustValue()))
}

func TestLRAtClosedForm(t *testing.T) {
	cos := Config{LR: 1, WarmupSteps: 4, LRSchedule: "cosine", DecaySteps: 14, FinalLR: 0.1}
	for _, c := range []struct {
		cfg  Config
		done int
		want float64
	}{
		{cos, 0, 0.25}, {cos, 2, 0.75}, {cos, 3, 1}, {cos, 4, 1}, // warmup, then the top
		{cos, 9, 0.55},                 // halfway: (LR + FinalLR) / 2
		{cos, 14, 0.1}, {cos, 40, 0.1}, // the end of the decay, and after it
		{Config{LR: 1, WarmupSteps: 4}, 1, 0.5}, {Config{LR: 1, WarmupSteps: 4}, 99, 1}, // constant
	} {
		if got := c.cfg.LRAt(c.done); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s, warmup %d: LRAt(%d) = %g, want %g", c.cfg.scheduleString(), c.cfg.WarmupSteps, c.done, got, c.want)
		}
	}
}

func TestTrainingUsesLRAt(t *testing.T) {
	cfg := tinyConfig(t.TempDir(), 12)
	cfg.LRSchedule, cfg.DecaySteps, cfg.FinalLR = "cosine", 9, 1e-3
	tr := newTiny(t, cfg)
	for done := range 12 {
		if _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
		want := cfg.LRAt(done)
		if got := learningRate(t, tr); math.Abs(got-want) > 1e-6*want {
			t.Errorf("step %d: Adam used %g, LRAt says %g", done+1, got, want)
		}
	}
}

// scalar is ε̂ = w·x_t with one weight, created by Init so that w₀ is known.
type scalar struct{}

func (scalar) Init(ctx *context.Context, _ uint64) {
	ctx.InAbsPath("/").VariableWithValue("w", float32(0.5))
}

func (scalar) Forward(ctx *context.Context, xt, _ *graph.Node) (*graph.Node, *graph.Node) {
	w := ctx.GetVariableByScopeAndName("/", "w").ValueGraph(xt.Graph())
	return graph.Mul(xt, w), nil
}

func TestEMAFollowsTheFormula(t *testing.T) {
	cfg := tinyConfig(t.TempDir(), 10)
	cfg.EMADecay = 0.8
	tr, err := New(backend(t), scalar{}, smooth(64, 1), smooth(16, 2), cfg)
	if err != nil {
		t.Fatal(err)
	}
	value := func(get func() (map[string]*tensors.Tensor, error)) float64 {
		m, err := get()
		if err != nil {
			t.Fatal(err)
		}
		return float64(tensors.ToScalar[float32](m["w"]))
	}
	if w0 := value(tr.Weights); w0 != 0.5 {
		t.Fatalf("Init not applied: w = %g", w0)
	}
	ema := 0.5 // guided-diffusion's EMA starts at the initial weights
	for step := 1; step <= 10; step++ {
		if _, err := tr.Step(); err != nil {
			t.Fatal(err)
		}
		w := value(tr.Weights)
		ema = 0.8*ema + 0.2*w
		got := value(tr.EMAWeights)
		if math.Abs(got-ema) > 1e-6 {
			t.Fatalf("step %d: EMA %.8f, formula %.8f (w %.8f)", step, got, ema, w)
		}
		if got == w {
			t.Fatalf("step %d: EMA equals the raw weight %g", step, w)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(backend(t), tinyConv{}, smooth(8, 1), smooth(8, 2),
		Config{OutDir: t.TempDir(), Steps: 0, BatchSize: 16, LR: -1, EMADecay: 1})
	for _, want := range []string{"steps must be", "learning rate", "EMA decay", "exceeds the 8 training images"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	for _, c := range []struct {
		schedule   string
		decay      int
		final, max float64
		want       string
	}{
		{"linear", 0, 0, 1, `schedule "linear": want constant or cosine`},
		{"constant", 5, 0, 1, "for the cosine schedule only"},
		{"cosine", 10, 2, 1, "final learning rate must be in [0, 1], got 2"},
		{"cosine", 3, 0, 1, "decay steps 3 must exceed the 3 warmup steps"},
	} {
		cfg := tinyConfig(t.TempDir(), 5)
		cfg.LR, cfg.LRSchedule, cfg.DecaySteps, cfg.FinalLR = c.max, c.schedule, c.decay, c.final
		if _, err := New(backend(t), tinyConv{}, smooth(32, 1), smooth(8, 2), cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s decay %d final %g: error %v, want %q", c.schedule, c.decay, c.final, err, c.want)
		}
	}
}

func TestExportName(t *testing.T) {
	for _, c := range [][3]string{
		{"/input_blocks/0/0", "weight", "input_blocks.0.0.weight"},
		{"/", "w", "w"},
		{"/out/2", "bias", "out.2.bias"},
	} {
		if got := ExportName(c[0], c[1]); got != c[2] {
			t.Errorf("ExportName(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	if got := emaScope("/net/0"); got != "/ema/net/0" {
		t.Errorf("emaScope = %q", got)
	}
	if got := emaScope("/"); got != "/ema" {
		t.Errorf("emaScope(root) = %q", got)
	}
}

// BenchmarkTinyStep times one training step of the tiny model (batch 16, 1×8×8), EMA and
// Adam included.
func BenchmarkTinyStep(b *testing.B) {
	cfg := tinyConfig(b.TempDir(), 1<<30)
	tr, err := New(backend(b), tinyConv{}, smooth(128, 1), smooth(32, 2), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.Step(); err != nil { // compile outside the timing
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := tr.Step(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
}
