package xla

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck // graph code reads better unqualified
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// SelfCheckTolerance is the largest relative error between an autodiff gradient and its
// central finite difference (float64, step 1e-5) that a self-check accepts.
const SelfCheckTolerance = 1e-6

// Float32CheckTolerance is the largest relative error between a float32 autodiff gradient
// and the float64 one (itself checked against finite differences) that a self-check
// accepts: float32 rounding of sums of a few hundred terms, with room to spare. The float32
// checks run the code a DPS step runs (on embedded: the implicit-GEMM convolution, the
// SIMD kernels), which float64 does not.
const Float32CheckTolerance = 1e-5

// CheckResult is the outcome of one gradient self-check.
type CheckResult struct {
	Name     string  `json:"name"`
	RelError float64 `json:"rel_error"`
	// Tolerance is the largest RelError accepted: SelfCheckTolerance against finite
	// differences, Float32CheckTolerance for float32 against float64.
	Tolerance float64 `json:"tolerance"`
	OK        bool    `json:"ok"`
	// Error is set when the check could not run at all (e.g. an op the backend lacks).
	Error string `json:"error,omitempty"`
}

// gradCheck is a scalar loss of a few inputs whose gradient is checked.
type gradCheck struct {
	name   string
	inputs [][]int // shapes, NCHW for images
	loss   func(xs []*Node) *Node
}

// lossOf turns an op's output into a scalar whose gradient depends on the output's value
// too (not only on the Jacobian): Σ w⊙y + ½Σ y², with a fixed pseudo-random w.
func lossOf(y *Node) *Node {
	g := y.Graph()
	rng := rand.New(rand.NewPCG(42, uint64(y.Shape().Size())))
	w := make([]float64, y.Shape().Size())
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	wt := ConvertDType(Const(g, tensors.FromFlatDataAndDimensions(w, y.Shape().Dimensions...)), y.DType())
	return Add(ReduceAllSum(Mul(wt, y)), MulScalar(ReduceAllSum(Square(y)), 0.5))
}

// ReflectPad pads the spatial axes (2 and 3 of NCHW) by reflection without repeating the
// edge pixel (PyTorch's "reflect"), using Gather, since GoMLX defines no gradient for Pad.
func ReflectPad(x *Node, pad int) *Node {
	for _, axis := range []int{2, 3} {
		n := x.Shape().Dimensions[axis]
		idx := make([]int32, n+2*pad)
		for i := range idx {
			j := i - pad
			if j < 0 {
				j = -j
			}
			if j >= n {
				j = 2*(n-1) - j
			}
			idx[i] = int32(j)
		}
		perm := []int{axis}
		for a := 0; a < x.Rank(); a++ {
			if a != axis {
				perm = append(perm, a)
			}
		}
		moved := TransposeAllDims(x, perm...)
		gathered := Gather(moved, Const(x.Graph(), tensors.FromFlatDataAndDimensions(idx, len(idx), 1)))
		inv := make([]int, len(perm))
		for i, p := range perm {
			inv[p] = i
		}
		x = TransposeAllDims(gathered, inv...)
	}
	return x
}

// GroupNorm normalises NCHW x over groups of channels (eps 1e-5), with per-channel scale
// and shift. 1/Sqrt is used instead of Rsqrt, which has no gradient in GoMLX.
func GroupNorm(x, scale, shift *Node, groups int) *Node {
	d := x.Shape().Dimensions
	b, c, h, w := d[0], d[1], d[2], d[3]
	xg := Reshape(x, b, groups, c/groups, h, w)
	mean := ReduceAndKeep(xg, ReduceMean, 2, 3, 4)
	centred := Sub(xg, mean)
	variance := ReduceAndKeep(Square(centred), ReduceMean, 2, 3, 4)
	normed := Div(centred, Sqrt(AddScalar(variance, 1e-5)))
	y := Reshape(normed, b, c, h, w)
	return Add(Mul(y, Reshape(scale, 1, c, 1, 1)), Reshape(shift, 1, c, 1, 1))
}

// UpsampleNearest2x repeats every pixel of NCHW x twice along H and W.
func UpsampleNearest2x(x *Node) *Node {
	d := x.Shape().Dimensions
	b, c, h, w := d[0], d[1], d[2], d[3]
	y := BroadcastToDims(Reshape(x, b, c, h, 1, w, 1), b, c, h, 2, w, 2)
	return Reshape(y, b, c, 2*h, 2*w)
}

func conv3x3(x, k *Node, stride int) *Node {
	return Convolve(x, k).ChannelsAxis(images.ChannelsFirst).Strides(stride).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
}

// selfChecks are the building blocks of a DPS step: the UNet's convolutions (both
// strides), reflect-padded blur, average pooling (a super-resolution operator), strided
// slicing, group normalisation, attention and nearest upsampling.
var selfChecks = []gradCheck{
	// Kernels are OIHW, PyTorch's layout.
	{"conv3x3 stride 1", [][]int{{2, 3, 6, 5}, {4, 3, 3, 3}}, func(xs []*Node) *Node {
		return lossOf(conv3x3(xs[0], xs[1], 1))
	}},
	{"conv3x3 stride 2", [][]int{{1, 2, 7, 8}, {3, 2, 3, 3}}, func(xs []*Node) *Node {
		return lossOf(conv3x3(xs[0], xs[1], 2))
	}},
	{"reflect pad + conv", [][]int{{1, 2, 6, 6}, {2, 1, 5, 5}}, func(xs []*Node) *Node {
		// Per-channel blur, as the Gaussian-deblur operator applies it.
		return lossOf(Convolve(ReflectPad(xs[0], 2), xs[1]).ChannelsAxis(images.ChannelsFirst).NoPadding().ChannelGroupCount(2).Done())
	}},
	{"mean pool 2x2", [][]int{{2, 3, 6, 8}}, func(xs []*Node) *Node {
		return lossOf(MeanPool(xs[0]).ChannelsAxis(images.ChannelsFirst).Window(2).Done())
	}},
	{"strided slice", [][]int{{2, 3, 7, 6}}, func(xs []*Node) *Node {
		return lossOf(Slice(xs[0], AxisRange(), AxisRange(1, 3), AxisRange().Stride(2), AxisRange(1).Stride(3)))
	}},
	{"group norm", [][]int{{2, 4, 3, 5}, {4}, {4}}, func(xs []*Node) *Node {
		return lossOf(GroupNorm(xs[0], xs[1], xs[2], 2))
	}},
	{"softmax attention", [][]int{{2, 4, 3, 3}, {12, 4}}, func(xs []*Node) *Node {
		// ADM-style: 1×1 qkv projection, softmax over keys, weighted sum of values.
		x := xs[0]
		b, c := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
		tok := Reshape(x, b, c, -1)                   // [B, C, T]
		qkv := Einsum("oc,bct->bot", xs[1], tok)      // [B, 3C, T]
		q := Slice(qkv, AxisRange(), AxisRange(0, c)) // [B, C, T]
		k := Slice(qkv, AxisRange(), AxisRange(c, 2*c))
		v := Slice(qkv, AxisRange(), AxisRange(2*c, 3*c))
		scale := 1 / math.Sqrt(math.Sqrt(float64(c)))
		weights := Softmax(Einsum("bct,bcs->bts", MulScalar(q, scale), MulScalar(k, scale)), -1)
		return lossOf(Einsum("bts,bcs->bct", weights, v))
	}},
	{"nearest upsample 2x", [][]int{{2, 3, 3, 4}}, func(xs []*Node) *Node {
		return lossOf(UpsampleNearest2x(xs[0]))
	}},
}

// SelfCheck runs every gradient self-check on backend and returns one result per check,
// in a fixed order: each check in float64 against finite differences, then each in float32
// against float64. It never panics: a failure to build or run is reported in Error.
func SelfCheck(backend backends.Backend) []CheckResult {
	results := make([]CheckResult, 0, 2*len(selfChecks))
	for _, c := range selfChecks {
		results = append(results, runGradCheck(backend, c))
	}
	for _, c := range selfChecks {
		results = append(results, runFloat32Check(backend, c))
	}
	return results
}

// checkInputs are a check's pseudo-random inputs (float64).
func checkInputs(c gradCheck) [][]float64 {
	rng := rand.New(rand.NewPCG(7, uint64(len(c.name))))
	inputs := make([][]float64, len(c.inputs))
	for i, dims := range c.inputs {
		n := 1
		for _, d := range dims {
			n *= d
		}
		inputs[i] = make([]float64, n)
		for j := range inputs[i] {
			inputs[i][j] = rng.NormFloat64()
		}
	}
	return inputs
}

// runFloat32Check compares the check's gradient computed in float32 (inputs rounded to
// float32) with the float64 gradient of the same rounded inputs.
func runFloat32Check(backend backends.Backend, c gradCheck) (res CheckResult) {
	res.Name, res.Tolerance = c.name+", float32", Float32CheckTolerance
	defer func() {
		if r := recover(); r != nil {
			res.OK, res.RelError, res.Error = false, math.NaN(), fmt.Sprint(r)
		}
	}()
	inputs := checkInputs(c)
	args := make([]any, len(inputs))
	for i, v := range inputs {
		for j := range v {
			v[j] = float64(float32(v[j]))
		}
		args[i] = tensors.FromFlatDataAndDimensions(v, c.inputs[i]...)
	}
	gradients := func(dtype dtypes.DType) [][]float64 {
		exec, err := NewExec(backend, func(xs []*Node) []*Node {
			for i := range xs {
				xs[i] = ConvertDType(xs[i], dtype)
			}
			grads := Gradient(c.loss(xs), xs...)
			for i := range grads {
				grads[i] = ConvertDType(grads[i], dtypes.Float64)
			}
			return grads
		})
		if err != nil {
			panic(err)
		}
		var out [][]float64
		for _, g := range exec.MustExec(args...) {
			out = append(out, tensors.MustCopyFlatData[float64](g))
		}
		return out
	}
	want, got := gradients(dtypes.Float64), gradients(dtypes.Float32)
	var num, den float64
	for i := range want {
		for j := range want[i] {
			num += (got[i][j] - want[i][j]) * (got[i][j] - want[i][j])
			den += want[i][j] * want[i][j]
		}
	}
	res.RelError = math.Sqrt(num / max(den, 1e-300))
	res.OK = res.RelError <= res.Tolerance
	return res
}

func runGradCheck(backend backends.Backend, c gradCheck) (res CheckResult) {
	res.Name, res.Tolerance = c.name, SelfCheckTolerance
	defer func() {
		if r := recover(); r != nil {
			res.OK, res.RelError, res.Error = false, math.NaN(), fmt.Sprint(r)
		}
	}()
	inputs := checkInputs(c)
	args := func() []any {
		out := make([]any, len(inputs))
		for i, v := range inputs {
			out[i] = tensors.FromFlatDataAndDimensions(append([]float64{}, v...), c.inputs[i]...)
		}
		return out
	}
	lossExec, err := NewExec(backend, c.loss)
	if err != nil {
		panic(err)
	}
	gradExec, err := NewExec(backend, func(xs []*Node) []*Node { return Gradient(c.loss(xs), xs...) })
	if err != nil {
		panic(err)
	}
	grads := gradExec.MustExec(args()...)
	const h = 1e-5
	var num, den float64
	for i := range inputs {
		analytic := tensors.MustCopyFlatData[float64](grads[i])
		for j := range inputs[i] {
			orig := inputs[i][j]
			inputs[i][j] = orig + h
			fPlus := tensors.ToScalar[float64](lossExec.MustExec1(args()...))
			inputs[i][j] = orig - h
			fMinus := tensors.ToScalar[float64](lossExec.MustExec1(args()...))
			inputs[i][j] = orig
			fd := (fPlus - fMinus) / (2 * h)
			num += (analytic[j] - fd) * (analytic[j] - fd)
			den += fd * fd
		}
	}
	res.RelError = math.Sqrt(num / max(den, 1e-300))
	res.OK = res.RelError <= SelfCheckTolerance
	return res
}

// MarshalJSON writes a non-finite rel_error (a check that could not run) as null, which
// encoding/json cannot otherwise encode.
func (r CheckResult) MarshalJSON() ([]byte, error) {
	type plain CheckResult
	var rel *float64
	if !math.IsNaN(r.RelError) && !math.IsInf(r.RelError, 0) {
		rel = &r.RelError
	}
	return json.Marshal(struct {
		plain
		RelError *float64 `json:"rel_error"`
	}{plain(r), rel})
}
