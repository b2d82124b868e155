package adm

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

func backend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The reference FFHQ model has 93.6 M parameters (paper.md; guided-diffusion's count).
func TestFFHQConfigHasTheReferenceParameterCount(t *testing.T) {
	m, err := New(FFHQConfig())
	if err != nil {
		t.Fatal(err)
	}
	if n := m.NumParameters(); math.Abs(float64(n)-93.6e6) > 0.05e6 {
		t.Fatalf("%d parameters, want 93.6 M", n)
	}
	shapes := m.ParameterShapes()
	for name, dims := range map[string][]int{
		"time_embed.0.weight":                      {512, 128},
		"input_blocks.0.0.weight":                  {128, 3, 3, 3},
		"input_blocks.2.0.in_layers.0.weight":      {128},          // the first down-sampling res-block
		"input_blocks.9.1.qkv.weight":              {1536, 512, 1}, // attention at 16×16
		"middle_block.1.proj_out.weight":           {512, 512, 1},
		"output_blocks.0.0.skip_connection.weight": {512, 1024, 1, 1},
		"out.2.weight":                             {6, 128, 3, 3},
	} {
		got, ok := shapes[name]
		if !ok || len(got.Dimensions) != len(dims) {
			t.Errorf("%s: %v, want %v", name, got, dims)
			continue
		}
		for i := range dims {
			if got.Dimensions[i] != dims[i] {
				t.Errorf("%s: %v, want %v", name, got, dims)
				break
			}
		}
	}
}

// tinyConfig exercises every kind of block in a few thousand parameters.
func tinyConfig(updown, newOrder, scaleShift bool) Config {
	return Config{ImageSize: 8, NumChannels: 32, NumResBlocks: 1, ChannelMult: "1,2", LearnSigma: true,
		AttentionResolutions: "4", NumHeads: 2, NumHeadChannels: -1, NumHeadsUpsample: -1,
		UseScaleShiftNorm: scaleShift, ResblockUpdown: updown, UseNewAttentionOrder: newOrder, InChannels: 2}
}

// gradCheck compares the autodiff gradient of Σ w⊙f(x) (f a block or the whole model,
// float64) with central differences over a few random directions.
func gradCheck(t *testing.T, name string, ctx *context.Context, f func(x *Node) *Node, dims ...int) {
	t.Helper()
	b := backend(t)
	rng := rand.New(rand.NewPCG(1, uint64(len(name))))
	n := 1
	for _, d := range dims {
		n *= d
	}
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	loss := func(x *Node) *Node {
		y := f(x)
		w := make([]float64, y.Shape().Size())
		r := rand.New(rand.NewPCG(2, 3))
		for i := range w {
			w[i] = r.NormFloat64()
		}
		return ReduceAllSum(Mul(y, Const(x.Graph(), tensors.FromFlatDataAndDimensions(w, y.Shape().Dimensions...))))
	}
	lossExec := context.MustNewExec(b, ctx, func(_ *context.Context, x *Node) *Node { return loss(x) })
	gradExec := context.MustNewExec(b, ctx, func(_ *context.Context, x *Node) *Node { return Gradient(loss(x), x)[0] })
	grad := tensors.MustCopyFlatData[float64](gradExec.MustExec1(tensors.FromFlatDataAndDimensions(x, dims...)))
	for dir := range 3 {
		u := make([]float64, n)
		var analytic float64
		for i := range u {
			u[i] = rng.NormFloat64()
			analytic += grad[i] * u[i]
		}
		at := func(s float64) float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = x[i] + s*u[i]
			}
			return tensors.ToScalar[float64](lossExec.MustExec1(tensors.FromFlatDataAndDimensions(v, dims...)))
		}
		const h = 1e-5
		fd := (at(h) - at(-h)) / (2 * h)
		if math.Abs(fd-analytic) > 1e-6*(1+math.Abs(fd)) {
			t.Errorf("%s direction %d: autodiff %.10g, finite differences %.10g", name, dir, analytic, fd)
		}
	}
}

// nonZeroInit gives every weight (even the zero-initialised ones) a random value, so
// gradients flow through every path.
func nonZeroInit(m *Model, ctx *context.Context) {
	rng := rand.New(rand.NewPCG(4, 5))
	for _, p := range m.params {
		size := 1
		for _, d := range p.dims {
			size *= d
		}
		v := make([]float32, size)
		for i := range v {
			v[i] = float32(0.3 * rng.NormFloat64())
		}
		setVar(ctx, p.name, tensors.FromFlatDataAndDimensions(v, p.dims...))
	}
}

func TestEveryBlockGradientMatchesFiniteDifferences(t *testing.T) {
	emb := func(g *Graph) *Node {
		v := make([]float64, 2*128)
		for i := range v {
			v[i] = math.Sin(float64(i))
		}
		return Const(g, tensors.FromFlatDataAndDimensions(v, 2, 128))
	}
	blocks := map[string]layer{
		"resblock":            &resBlock{in: 32, out: 64, emb: 128, scaleShift: true},
		"resblock no-ss":      &resBlock{in: 32, out: 32, emb: 128},
		"resblock down":       &resBlock{in: 32, out: 32, emb: 128, scaleShift: true, updown: -1},
		"resblock up":         &resBlock{in: 32, out: 32, emb: 128, scaleShift: true, updown: +1},
		"attention legacy":    &attention{ch: 32, heads: 2},
		"attention new order": &attention{ch: 32, heads: 2, newOrder: true},
		"downsample conv":     &downsample{ch: 32},
		"upsample conv":       &upsample{ch: 32},
	}
	for name, l := range blocks {
		ctx := context.New()
		m := &Model{params: l.params("blk")}
		nonZeroInit(m, ctx)
		gradCheck(t, name, ctx, func(x *Node) *Node {
			w := weights{ctx: ctx, g: x.Graph(), dtype: x.DType()}
			return l.forward(w, "blk", x, emb(x.Graph()))
		}, 2, 32, 4, 4)
	}
}

func TestWholeModelGradientMatchesFiniteDifferences(t *testing.T) {
	for _, c := range []Config{tinyConfig(true, false, true), tinyConfig(false, true, false)} {
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.New()
		nonZeroInit(m, ctx)
		gradCheck(t, "unet", ctx, func(x *Node) *Node {
			eps, v := m.Forward(ctx, x, Const(x.Graph(), []int32{3, 770}))
			return Concatenate([]*Node{eps, v}, 1)
		}, 2, 2, 8, 8)
	}
}

func TestLoadReportsEveryMismatchByName(t *testing.T) {
	m, err := New(tinyConfig(true, false, true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	m.Init(ctx, 1)
	sd, err := m.StateDict(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.New(), sd); err != nil {
		t.Fatalf("its own state dict does not load: %v", err)
	}
	delete(sd, "middle_block.1.qkv.weight")
	sd["out.2.bias"] = tensors.FromFlatDataAndDimensions([]float32{1, 2, 3}, 3)
	sd["label_emb.weight"] = tensors.FromFlatDataAndDimensions([]float32{1}, 1)
	err = m.Load(context.New(), sd)
	for _, want := range []string{"missing middle_block.1.qkv.weight", "mis-shaped out.2.bias: checkpoint [3], model [4]", "extra label_emb.weight", "3 problems"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

func TestLoadConfigReadsTheReferenceYAML(t *testing.T) {
	dir := t.TempDir()
	ref := `image_size: 256
num_channels: 128
num_res_blocks: 1
channel_mult: ""
learn_sigma: True
class_cond: False
use_checkpoint: False
attention_resolutions: 16
num_heads: 4
num_head_channels: 64
num_heads_upsample: -1
use_scale_shift_norm: True
dropout: 0.0
resblock_updown: True
use_fp16: False
use_new_attention_order: False
model_path: models/ffhq_10m.pt
`
	path := filepath.Join(dir, "model_config.yaml")
	if err := os.WriteFile(path, []byte(ref), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := FFHQConfig()
	if cfg != want {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	bad := map[string]string{
		"unknown key":   ref + "use_flash: true\n",
		"wrong type":    strings.Replace(ref, "num_channels: 128", "num_channels: many", 1),
		"bad mult":      strings.Replace(ref, `channel_mult: ""`, `channel_mult: "1,x"`, 1),
		"class cond":    strings.Replace(ref, "class_cond: False", "class_cond: True", 1),
		"bad attention": strings.Replace(ref, "attention_resolutions: 16", "attention_resolutions: 15", 1),
	}
	for name, text := range bad {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}
