package adm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/xla"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Model is an ADM UNet built from a Config. It holds the architecture only; the weights
// live in a GoMLX context, under the PyTorch state-dict names (scope "/input_blocks/1/0",
// variable "weight" is "input_blocks.1.0.weight").
type Model struct {
	cfg     resolved
	input   []*seq // input_blocks
	middle  *seq
	output  []*seq
	outNorm int // channels of the final GroupNorm
	params  []param
}

// param is one weight tensor of the model.
type param struct {
	name string
	dims []int
	init string // "uniform:<fan_in>", "zero", "one"
}

// New lays out the network exactly as guided-diffusion's UNetModel does.
func New(cfg Config) (*Model, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: r}
	C := r.NumChannels
	ch := r.mult[0] * C
	m.input = append(m.input, &seq{layers: []layer{&conv{in: r.InChannels, out: ch, k: 3}}})
	chans := []int{ch}
	ds := 1
	for level, mult := range r.mult {
		for range r.NumResBlocks {
			s := &seq{layers: []layer{m.resBlock(ch, mult*C, 0)}}
			ch = mult * C
			if r.attentionDS[ds] {
				s.layers = append(s.layers, m.attention(ch, r.NumHeads))
			}
			m.input = append(m.input, s)
			chans = append(chans, ch)
		}
		if level != len(r.mult)-1 {
			var down layer = &downsample{ch: ch}
			if r.ResblockUpdown {
				down = m.resBlock(ch, ch, -1)
			}
			m.input = append(m.input, &seq{layers: []layer{down}})
			chans = append(chans, ch)
			ds *= 2
		}
	}
	m.middle = &seq{layers: []layer{m.resBlock(ch, ch, 0), m.attention(ch, r.NumHeads), m.resBlock(ch, ch, 0)}}
	for level := len(r.mult) - 1; level >= 0; level-- {
		mult := r.mult[level]
		for i := range r.NumResBlocks + 1 {
			ich := chans[len(chans)-1]
			chans = chans[:len(chans)-1]
			s := &seq{layers: []layer{m.resBlock(ch+ich, C*mult, 0)}}
			ch = C * mult
			if r.attentionDS[ds] {
				s.layers = append(s.layers, m.attention(ch, r.NumHeadsUpsample))
			}
			if level > 0 && i == r.NumResBlocks {
				var up layer = &upsample{ch: ch}
				if r.ResblockUpdown {
					up = m.resBlock(ch, ch, +1)
				}
				s.layers = append(s.layers, up)
				ds /= 2
			}
			m.output = append(m.output, s)
		}
	}
	m.outNorm = ch
	m.collectParams()
	return m, nil
}

func (m *Model) resBlock(in, out, updown int) *resBlock {
	return &resBlock{in: in, out: out, updown: updown, emb: 4 * m.cfg.NumChannels, scaleShift: m.cfg.UseScaleShiftNorm}
}

func (m *Model) attention(ch, heads int) *attention {
	if m.cfg.NumHeadChannels > 0 {
		heads = ch / m.cfg.NumHeadChannels
	}
	return &attention{ch: ch, heads: heads, newOrder: m.cfg.UseNewAttentionOrder}
}

// collectParams lists every weight in state-dict order.
func (m *Model) collectParams() {
	C, E := m.cfg.NumChannels, 4*m.cfg.NumChannels
	add := func(p ...param) { m.params = append(m.params, p...) }
	add(linearParams("time_embed.0", C, E)...)
	add(linearParams("time_embed.2", E, E)...)
	for i, s := range m.input {
		add(s.params(fmt.Sprintf("input_blocks.%d", i))...)
	}
	add(m.middle.params("middle_block")...)
	for i, s := range m.output {
		add(s.params(fmt.Sprintf("output_blocks.%d", i))...)
	}
	add(normParams("out.0", m.outNorm)...)
	add(zeroed(convParams("out.2", m.outNorm, m.cfg.outChannels, 3))...)
}

// Prior is the model with its weights as a prior.Prior for the samplers.
type Prior struct {
	m   *Model
	ctx *context.Context
}

// Prior returns the model, with the weights in ctx, as a DPS prior.
func (m *Model) Prior(ctx *context.Context) *Prior { return &Prior{m: m, ctx: ctx} }

// Predict implements prior.Prior.
func (p *Prior) Predict(xt, t *Node) (eps, v *Node) { return p.m.Forward(p.ctx, xt, t) }

// Context implements prior.WithContext: the sampler compiles its step with it, so the
// weights are fed to the graph instead of being baked in as constants.
func (p *Prior) Context() *context.Context { return p.ctx }

// ParameterShapes maps every state-dict name to its shape.
func (m *Model) ParameterShapes() map[string]shapes.Shape {
	out := make(map[string]shapes.Shape, len(m.params))
	for _, p := range m.params {
		out[p.name] = shapes.Make(dtypeF32, p.dims...)
	}
	return out
}

// NumParameters counts the model's scalars.
func (m *Model) NumParameters() int {
	n := 0
	for _, p := range m.params {
		size := 1
		for _, d := range p.dims {
			size *= d
		}
		n += size
	}
	return n
}

// Config returns the configuration the model was built from.
func (m *Model) Config() Config { return m.cfg.Config }

// Init creates every weight in ctx with PyTorch's default initialisation (uniform
// ±1/√fan_in for convolutions and linear layers, ones and zeros for GroupNorm, zeros for
// the layers guided-diffusion zeroes), drawn from seed.
func (m *Model) Init(ctx *context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for _, p := range m.params {
		size := 1
		for _, d := range p.dims {
			size *= d
		}
		v := make([]float32, size)
		switch {
		case p.init == "one":
			for i := range v {
				v[i] = 1
			}
		case strings.HasPrefix(p.init, "uniform:"):
			var fanIn float64
			fmt.Sscanf(p.init, "uniform:%g", &fanIn)
			bound := 1 / math.Sqrt(fanIn)
			for i := range v {
				v[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		setVar(ctx, p.name, tensors.FromFlatDataAndDimensions(v, p.dims...))
	}
}

// Load puts a state dict into ctx after checking it against the model: every missing,
// extra or mis-shaped tensor is reported by name, and nothing is loaded then.
func (m *Model) Load(ctx *context.Context, weights map[string]*tensors.Tensor) error {
	var problems []string
	want := m.ParameterShapes()
	for _, p := range m.params {
		t, ok := weights[p.name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing %s %v", p.name, p.dims))
		case !slices.Equal(t.Shape().Dimensions, p.dims):
			problems = append(problems, fmt.Sprintf("mis-shaped %s: checkpoint %v, model %v", p.name, t.Shape().Dimensions, p.dims))
		}
	}
	for name := range weights {
		if _, ok := want[name]; !ok {
			problems = append(problems, "extra "+name)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return fmt.Errorf("adm: the checkpoint does not match the model config (%d problems):\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	for _, p := range m.params {
		t := weights[p.name]
		if t.DType() != dtypeF32 {
			return fmt.Errorf("adm: tensor %s is %s; float32 expected", p.name, t.DType())
		}
		setVar(ctx, p.name, t)
	}
	return nil
}

// StateDict returns the weights in ctx under their state-dict names.
func (m *Model) StateDict(ctx *context.Context) (map[string]*tensors.Tensor, error) {
	out := make(map[string]*tensors.Tensor, len(m.params))
	for _, p := range m.params {
		scope, name := splitName(p.name)
		v := ctx.GetVariableByScopeAndName(scope, name)
		if v == nil {
			return nil, fmt.Errorf("adm: weight %s is not in the context", p.name)
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("adm: weight %s: %w", p.name, err)
		}
		out[p.name] = t
	}
	return out, nil
}

// Forward runs the UNet on x [B, C, H, W] at integer steps t [B] and returns ε̂ and, for
// learn_sigma models, the variance interpolation v (else nil). The weights must already
// be in ctx (Init or Load).
func (m *Model) Forward(ctx *context.Context, x, t *Node) (eps, v *Node) {
	d := x.Shape().Dimensions
	if len(d) != 4 || d[1] != m.cfg.InChannels || d[2] != m.cfg.ImageSize || d[3] != m.cfg.ImageSize {
		panic(fmt.Errorf("adm: input %s does not fit the model: want [B, %d, %d, %d]", x.Shape(), m.cfg.InChannels, m.cfg.ImageSize, m.cfg.ImageSize))
	}
	w := weights{ctx: ctx, g: x.Graph(), dtype: x.DType()}
	emb := timestepEmbedding(t, m.cfg.NumChannels, x.DType())
	emb = w.linear("time_embed.0", emb)
	emb = w.linear("time_embed.2", silu(emb))
	h := x
	var hs []*Node
	for i, s := range m.input {
		h = s.forward(w, fmt.Sprintf("input_blocks.%d", i), h, emb)
		hs = append(hs, h)
	}
	h = m.middle.forward(w, "middle_block", h, emb)
	for i, s := range m.output {
		h = Concatenate([]*Node{h, hs[len(hs)-1]}, 1)
		hs = hs[:len(hs)-1]
		h = s.forward(w, fmt.Sprintf("output_blocks.%d", i), h, emb)
	}
	h = w.conv("out.2", silu(w.groupNorm("out.0", h)), 1)
	if !m.cfg.LearnSigma {
		return h, nil
	}
	c := m.cfg.InChannels
	return Slice(h, AxisRange(), AxisRange(0, c)), Slice(h, AxisRange(), AxisRange(c, 2*c))
}

// timestepEmbedding is guided-diffusion's: [cos(t·f), sin(t·f)] with f_i =
// exp(−ln(10000)·i/half), for the integer step t (not rescaled).
func timestepEmbedding(t *Node, dim int, dtype dtypesDType) *Node {
	half := dim / 2
	freqs := make([]float64, half)
	for i := range freqs {
		freqs[i] = math.Exp(-math.Log(10000) * float64(i) / float64(half))
	}
	args := Mul(ExpandAxes(ConvertDType(t, dtype), -1), ExpandAxes(ConstAsDType(t.Graph(), dtype, freqs), 0))
	emb := Concatenate([]*Node{Cos(args), Sin(args)}, -1)
	if dim%2 == 1 {
		emb = Concatenate([]*Node{emb, ZerosLike(Slice(emb, AxisRange(), AxisRange(0, 1)))}, -1)
	}
	return emb
}

func silu(x *Node) *Node { return Mul(x, Sigmoid(x)) }

// weights fetches the model's variables while building a graph.
type weights struct {
	ctx   *context.Context
	g     *Graph
	dtype dtypesDType
}

func (w weights) get(name string) *Node {
	scope, v := splitName(name)
	variable := w.ctx.GetVariableByScopeAndName(scope, v)
	if variable == nil {
		panic(fmt.Errorf("adm: weight %s is not in the context: Init or Load the model first", name))
	}
	return ConvertDType(variable.ValueGraph(w.g), w.dtype)
}

func (w weights) conv(name string, x *Node, stride int) *Node {
	k := w.get(name + ".weight")
	pad := k.Shape().Dimensions[2] / 2
	y := Convolve(x, k).ChannelsAxis(images.ChannelsFirst).Strides(stride).
		PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
	return Add(y, Reshape(w.get(name+".bias"), 1, -1, 1, 1))
}

// conv1d applies a 1×1 "conv_nd(1, …)" layer (weights [out, in, 1]) to x [B, C, T].
func (w weights) conv1d(name string, x *Node) *Node {
	k := w.get(name + ".weight")
	k = Reshape(k, k.Shape().Dimensions[0], k.Shape().Dimensions[1])
	return Add(Einsum("oc,bct->bot", k, x), Reshape(w.get(name+".bias"), 1, -1, 1))
}

func (w weights) linear(name string, x *Node) *Node {
	return Add(Einsum("bi,oi->bo", x, w.get(name+".weight")), ExpandAxes(w.get(name+".bias"), 0))
}

// groupNorm is GroupNorm(32, C), eps 1e-5, over [B, C, ...].
func (w weights) groupNorm(name string, x *Node) *Node {
	d := x.Shape().Dimensions
	flat := Reshape(x, d[0], d[1], 1, -1)
	y := xla.GroupNorm(flat, w.get(name+".weight"), w.get(name+".bias"), 32)
	return Reshape(y, d...)
}

func splitName(name string) (scope, variable string) {
	i := strings.LastIndex(name, ".")
	return "/" + strings.ReplaceAll(name[:i], ".", "/"), name[i+1:]
}

func setVar(ctx *context.Context, name string, value *tensors.Tensor) {
	scope, v := splitName(name)
	if existing := ctx.GetVariableByScopeAndName(scope, v); existing != nil {
		if err := existing.SetValue(value); err != nil {
			panic(err)
		}
		return
	}
	ctx.InAbsPath(scope).Checked(false).VariableWithValue(v, value)
}
