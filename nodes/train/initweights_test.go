package train

import (
	stdcontext "context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// initConv is tinyConv with its variables created up front by Init (as adm.Model does), so
// that it can take initial weights.
type initConv struct{ tinyConv }

func (initConv) Init(ctx *context.Context, _ uint64) {
	for _, v := range []struct {
		scope string
		cout  int
		cin   int
	}{{"/net/0", 8, 1}, {"/net/2", 1, 8}} {
		c := ctx.InAbsPath(v.scope)
		c.VariableWithShape("weight", shapes.Make(dtypes.Float32, v.cout, v.cin, 3, 3))
		c.VariableWithShape("bias", shapes.Make(dtypes.Float32, v.cout))
	}
}

func newInit(t *testing.T, cfg Config) (*Trainer, error) {
	t.Helper()
	return New(backend(t), initConv{}, smooth(128, 1), smooth(32, 2), cfg)
}

// trainedWeights are the EMA weights of a 12-step run of initConv (seed 7).
func trainedWeights(t *testing.T) map[string]*tensors.Tensor {
	t.Helper()
	tr, err := newInit(t, tinyConfig(t.TempDir(), 12))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(stdcontext.Background()); err != nil {
		t.Fatal(err)
	}
	w, err := tr.EMAWeights()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestInitWeightsWarmStart(t *testing.T) {
	init := trainedWeights(t)
	cfg := resumeConfig(t.TempDir(), 10)
	cfg.Seed, cfg.EMADecay = 9, 0.8
	cfg.InitWeights, cfg.InitFrom = init, "run A"
	tr, err := newInit(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tr.Weights()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range init {
		if !got[name].Equal(w) {
			t.Errorf("%s: not the initial weight", name)
		}
	}
	if tr.GlobalStep() != 0 {
		t.Fatalf("warm start at step %d", tr.GlobalStep())
	}

	// The first step runs at the schedule's first rate and the EMA starts at the given weights.
	if _, err := tr.Step(); err != nil {
		t.Fatal(err)
	}
	if lr, want := learningRate(t, tr), cfg.LRAt(0); math.Abs(lr-want) > 1e-6*want {
		t.Errorf("first step's rate %g, want %g", lr, want)
	}
	raw, _ := tr.Weights()
	ema, _ := tr.EMAWeights()
	w0, w1, e1 := init["net.2.bias"].Value().([]float32)[0], raw["net.2.bias"].Value().([]float32)[0], ema["net.2.bias"].Value().([]float32)[0]
	if want := 0.8*float64(w0) + 0.2*float64(w1); math.Abs(float64(e1)-want) > 1e-6 || w1 == w0 {
		t.Errorf("EMA after one step %g, want 0.8·%g + 0.2·%g = %g", e1, w0, w1, want)
	}
	// Adam starts afresh: its first step moves every weight by about the rate (|m̂/√v̂| = 1).
	if d := math.Abs(float64(w1 - w0)); math.Abs(d-cfg.LRAt(0)) > 1e-3*cfg.LRAt(0) {
		t.Errorf("first Adam step moved net.2.bias by %g, want %g (fresh moments)", d, cfg.LRAt(0))
	}
}

func TestInitWeightsResume(t *testing.T) {
	init := trainedWeights(t)
	config := func(dir string) Config {
		cfg := resumeConfig(dir, 10)
		cfg.Seed, cfg.InitWeights, cfg.InitFrom = 9, init, "run A"
		return cfg
	}
	ref, err := newInit(t, config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Run(stdcontext.Background()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := config(dir)
	ctx, cancel := stdcontext.WithCancel(stdcontext.Background())
	cfg.OnStep = func(step int, _ float64) {
		if step == 4 {
			cancel()
		}
	}
	tr, err := newInit(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(ctx); !errors.Is(err, stdcontext.Canceled) {
		t.Fatalf("interrupted run returned %v", err)
	}
	// A resume takes every weight from its checkpoint: other initial weights under the same
	// name are not read.
	cfg = config(dir)
	cfg.InitWeights = trainedWeights(t)
	cfg.InitWeights["net.0.bias"] = tensors.FromValue(make([]float32, 8))
	tr, err = newInit(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr.GlobalStep() != 4 {
		t.Fatalf("resumed at step %d, want 4", tr.GlobalStep())
	}
	if _, err := tr.Run(stdcontext.Background()); err != nil {
		t.Fatal(err)
	}
	compareStates(t, "warm start resumed from step 4", state(t, tr), state(t, ref))

	// The checkpoint remembers where its weights came from.
	for _, c := range []struct {
		from string
		want string
	}{{"", "initial weights run A, now random"}, {"run B", "initial weights run A, now run B"}} {
		cfg := resumeConfig(dir, 10)
		cfg.Seed, cfg.InitFrom = 9, c.from
		if c.from != "" {
			cfg.InitWeights = init
		}
		if _, err := newInit(t, cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("resume with InitFrom %q: error %v, want %q", c.from, err, c.want)
		}
	}
}

func TestInitWeightsErrors(t *testing.T) {
	good := trainedWeights(t)
	with := func(edit func(map[string]*tensors.Tensor)) map[string]*tensors.Tensor {
		ws := make(map[string]*tensors.Tensor, len(good))
		for k, v := range good {
			ws[k] = v
		}
		edit(ws)
		return ws
	}
	for _, c := range []struct {
		name    string
		weights map[string]*tensors.Tensor
		want    []string
	}{
		{"missing", with(func(ws map[string]*tensors.Tensor) { delete(ws, "net.0.bias") }), []string{"file.safetensors do not fit the model: net.0.bias is missing"}},
		{"misshapen", with(func(ws map[string]*tensors.Tensor) { ws["net.2.bias"] = tensors.FromValue([]float32{1, 2}) }),
			[]string{"net.2.bias is (Float32)[2], the model's is (Float32)[1]"}},
		{"wrong dtype", with(func(ws map[string]*tensors.Tensor) { ws["net.2.bias"] = tensors.FromValue([]float64{1}) }),
			[]string{"net.2.bias is (Float64)[1], the model's is (Float32)[1]"}},
		{"surplus", with(func(ws map[string]*tensors.Tensor) { ws["time_embed.0.weight"] = tensors.FromValue([]float32{1}) }),
			[]string{"time_embed.0.weight is not a weight of the model"}},
	} {
		cfg := tinyConfig(t.TempDir(), 5)
		cfg.InitWeights, cfg.InitFrom = c.weights, "file.safetensors"
		_, err := newInit(t, cfg)
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", c.name, err, want)
			}
		}
	}

	cfg := tinyConfig(t.TempDir(), 5)
	cfg.InitWeights = good
	if _, err := newInit(t, cfg); err == nil || !strings.Contains(err.Error(), "initial weights and their name") {
		t.Errorf("weights without InitFrom: %v", err)
	}
	cfg.InitFrom = "run A"
	if _, err := New(backend(t), tinyConv{}, smooth(128, 1), smooth(32, 2), cfg); err == nil ||
		!strings.Contains(err.Error(), "need a model that creates its variables") {
		t.Errorf("a model without Init: %v", err)
	}
}
