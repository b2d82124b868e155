package adm

import (
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

type dtypesDType = dtypes.DType

const dtypeF32 = dtypes.Float32

// layer is one module of a TimestepEmbedSequential: it knows its weights (under a
// state-dict prefix) and how to apply itself.
type layer interface {
	params(prefix string) []param
	forward(w weights, prefix string, x, emb *Node) *Node
}

// seq is guided-diffusion's TimestepEmbedSequential: layers named prefix.0, prefix.1, …
type seq struct{ layers []layer }

func (s *seq) params(prefix string) (out []param) {
	for i, l := range s.layers {
		out = append(out, l.params(fmt.Sprintf("%s.%d", prefix, i))...)
	}
	return out
}

func (s *seq) forward(w weights, prefix string, x, emb *Node) *Node {
	for i, l := range s.layers {
		x = l.forward(w, fmt.Sprintf("%s.%d", prefix, i), x, emb)
	}
	return x
}

// Parameter lists of the PyTorch layers (weight then bias, as in a state dict).
func convParams(prefix string, in, out, k int) []param {
	fan := fmt.Sprintf("uniform:%d", in*k*k)
	return []param{{prefix + ".weight", []int{out, in, k, k}, fan}, {prefix + ".bias", []int{out}, fan}}
}

func conv1dParams(prefix string, in, out int) []param {
	fan := fmt.Sprintf("uniform:%d", in)
	return []param{{prefix + ".weight", []int{out, in, 1}, fan}, {prefix + ".bias", []int{out}, fan}}
}

func linearParams(prefix string, in, out int) []param {
	fan := fmt.Sprintf("uniform:%d", in)
	return []param{{prefix + ".weight", []int{out, in}, fan}, {prefix + ".bias", []int{out}, fan}}
}

func normParams(prefix string, ch int) []param {
	return []param{{prefix + ".weight", []int{ch}, "one"}, {prefix + ".bias", []int{ch}, "zero"}}
}

// zeroed marks layers that guided-diffusion initialises to zero (zero_module).
func zeroed(ps []param) []param {
	for i := range ps {
		ps[i].init = "zero"
	}
	return ps
}

// conv is a plain 3×3 convolution with padding 1 (input_blocks.0).
type conv struct{ in, out, k int }

func (c *conv) params(prefix string) []param { return convParams(prefix, c.in, c.out, c.k) }
func (c *conv) forward(w weights, prefix string, x, _ *Node) *Node {
	return w.conv(prefix, x, 1)
}

// resBlock is guided-diffusion's ResBlock; updown −1 down-samples, +1 up-samples (no
// convolution in the resampling, as with resblock_updown).
type resBlock struct {
	in, out, emb, updown int
	scaleShift           bool
}

func (r *resBlock) params(prefix string) []param {
	embOut := r.out
	if r.scaleShift {
		embOut = 2 * r.out
	}
	ps := normParams(prefix+".in_layers.0", r.in)
	ps = append(ps, convParams(prefix+".in_layers.2", r.in, r.out, 3)...)
	ps = append(ps, linearParams(prefix+".emb_layers.1", r.emb, embOut)...)
	ps = append(ps, normParams(prefix+".out_layers.0", r.out)...)
	ps = append(ps, zeroed(convParams(prefix+".out_layers.3", r.out, r.out, 3))...)
	if r.in != r.out {
		ps = append(ps, convParams(prefix+".skip_connection", r.in, r.out, 1)...)
	}
	return ps
}

func (r *resBlock) forward(w weights, prefix string, x, emb *Node) *Node {
	h := silu(w.groupNorm(prefix+".in_layers.0", x))
	switch r.updown {
	case -1:
		h, x = avgPool2(h), avgPool2(x)
	case +1:
		h, x = xla.UpsampleNearest2x(h), xla.UpsampleNearest2x(x)
	}
	h = w.conv(prefix+".in_layers.2", h, 1)
	e := w.linear(prefix+".emb_layers.1", silu(emb)) // [B, out or 2·out]
	e = Reshape(e, e.Shape().Dimensions[0], -1, 1, 1)
	if r.scaleShift {
		scale := Slice(e, AxisRange(), AxisRange(0, r.out))
		shift := Slice(e, AxisRange(), AxisRange(r.out, 2*r.out))
		h = Add(Mul(w.groupNorm(prefix+".out_layers.0", h), OnePlus(scale)), shift)
		h = silu(h)
	} else {
		h = silu(w.groupNorm(prefix+".out_layers.0", Add(h, e)))
	}
	// out_layers.2 is dropout: inference (and our training config) use none.
	h = w.conv(prefix+".out_layers.3", h, 1)
	if r.in != r.out {
		x = w.conv(prefix+".skip_connection", x, 1)
	}
	return Add(x, h)
}

func avgPool2(x *Node) *Node {
	return MeanPool(x).ChannelsAxis(images.ChannelsFirst).Window(2).Done()
}

// downsample and upsample are guided-diffusion's Downsample/Upsample with conv_resample
// (used when resblock_updown is false): a stride-2 3×3 conv ("op"), or nearest ×2 then a
// 3×3 conv ("conv").
type downsample struct{ ch int }

func (d *downsample) params(prefix string) []param { return convParams(prefix+".op", d.ch, d.ch, 3) }
func (d *downsample) forward(w weights, prefix string, x, _ *Node) *Node {
	return w.conv(prefix+".op", x, 2)
}

type upsample struct{ ch int }

func (u *upsample) params(prefix string) []param { return convParams(prefix+".conv", u.ch, u.ch, 3) }
func (u *upsample) forward(w weights, prefix string, x, _ *Node) *Node {
	return w.conv(prefix+".conv", xla.UpsampleNearest2x(x), 1)
}

// attention is guided-diffusion's AttentionBlock with QKVAttentionLegacy (heads split
// before q/k/v: channels ordered head × [q, k, v] × c) or QKVAttention (new order: q/k/v
// split first, then heads).
type attention struct {
	ch, heads int
	newOrder  bool
}

func (a *attention) params(prefix string) []param {
	ps := normParams(prefix+".norm", a.ch)
	ps = append(ps, conv1dParams(prefix+".qkv", a.ch, 3*a.ch)...)
	return append(ps, zeroed(conv1dParams(prefix+".proj_out", a.ch, a.ch))...)
}

func (a *attention) forward(w weights, prefix string, x, _ *Node) *Node {
	d := x.Shape().Dimensions
	b, c := d[0], d[1]
	flat := Reshape(x, b, c, -1) // [B, C, T]
	t := flat.Shape().Dimensions[2]
	qkv := w.conv1d(prefix+".qkv", w.groupNorm(prefix+".norm", flat)) // [B, 3C, T]
	hc := c / a.heads
	var q, k, v *Node
	if a.newOrder {
		part := func(i int) *Node {
			return Reshape(Slice(qkv, AxisRange(), AxisRange(i*c, (i+1)*c)), b*a.heads, hc, t)
		}
		q, k, v = part(0), part(1), part(2)
	} else {
		r := Reshape(qkv, b*a.heads, 3*hc, t)
		q = Slice(r, AxisRange(), AxisRange(0, hc))
		k = Slice(r, AxisRange(), AxisRange(hc, 2*hc))
		v = Slice(r, AxisRange(), AxisRange(2*hc, 3*hc))
	}
	scale := 1 / math.Sqrt(math.Sqrt(float64(hc)))
	weightsT := Softmax(Einsum("bct,bcs->bts", MulScalar(q, scale), MulScalar(k, scale)), -1)
	h := Reshape(Einsum("bts,bcs->bct", weightsT, v), b, c, t)
	h = w.conv1d(prefix+".proj_out", h)
	return Reshape(Add(flat, h), d...)
}
