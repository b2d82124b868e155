package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/dpsflow/dpsflow/internal/procstat"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// benchUNet is a small ADM-shaped UNet (channels-first, float32): conv in, one res-block
// per level at channel multipliers (1, 2, 2), 2×2 average-pool down-sampling, attention at
// the lowest level, nearest up-sampling with skip concatenation, GroupNorm-SiLU-conv out.
// testdata/bench_unet.py is the same network in PyTorch, for the baseline.
type benchUNet struct {
	rng *rand.Rand
	g   *Graph
}

func (u benchUNet) weight(dims ...int) *Node {
	n := 1
	for _, d := range dims {
		n *= d
	}
	fanIn := n / dims[0]
	w := make([]float32, n)
	for i := range w {
		w[i] = float32(u.rng.NormFloat64() / math.Sqrt(float64(fanIn)))
	}
	return Const(u.g, tensors.FromFlatDataAndDimensions(w, dims...))
}

func (u benchUNet) conv(x *Node, cout, k int) *Node {
	cin := x.Shape().Dimensions[1]
	p := k / 2
	return Convolve(x, u.weight(cout, cin, k, k)).ChannelsAxis(images.ChannelsFirst).Strides(1).
		PaddingPerDim([][2]int{{p, p}, {p, p}}).Done()
}

func (u benchUNet) norm(x *Node) *Node {
	c := x.Shape().Dimensions[1]
	return GroupNorm(x, OnesLike(u.weight(c)), ZerosLike(u.weight(c)), min(32, c))
}

func (u benchUNet) res(x *Node, cout int) *Node {
	h := u.conv(silu(u.norm(x)), cout, 3)
	h = u.conv(silu(u.norm(h)), cout, 3)
	if x.Shape().Dimensions[1] != cout {
		x = u.conv(x, cout, 1)
	}
	return Add(x, h)
}

func (u benchUNet) attention(x *Node) *Node {
	d := x.Shape().Dimensions
	b, c := d[0], d[1]
	tok := Reshape(u.norm(x), b, c, -1)
	qkv := Einsum("oc,bct->bot", u.weight(3*c, c), tok)
	q := Slice(qkv, AxisRange(), AxisRange(0, c))
	k := Slice(qkv, AxisRange(), AxisRange(c, 2*c))
	v := Slice(qkv, AxisRange(), AxisRange(2*c, 3*c))
	s := 1 / math.Sqrt(math.Sqrt(float64(c)))
	w := Softmax(Einsum("bct,bcs->bts", MulScalar(q, s), MulScalar(k, s)), -1)
	h := Einsum("bts,bcs->bct", w, v)
	h = Einsum("oc,bct->bot", u.weight(c, c), h)
	return Add(x, Reshape(h, d...))
}

func (u benchUNet) forward(x *Node, ch int) *Node {
	down := func(x *Node) *Node { return MeanPool(x).ChannelsAxis(images.ChannelsFirst).Window(2).Done() }
	h0 := u.res(u.conv(x, ch, 3), ch)
	h1 := u.res(down(h0), 2*ch)
	h2 := u.attention(u.res(down(h1), 2*ch))
	h := u.res(Concatenate([]*Node{UpsampleNearest2x(h2), h1}, 1), 2*ch)
	h = u.res(Concatenate([]*Node{UpsampleNearest2x(h), h0}, 1), ch)
	return u.conv(silu(u.norm(h)), 3, 3)
}

func benchInput(size int) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 3*size*size)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(x, 1, 3, size, size)
}

// unetStep is the DPS-shaped work: forward and the gradient of a scalar w.r.t. the input.
func unetStep(ch int) func(x *Node) (*Node, *Node) {
	return func(x *Node) (*Node, *Node) {
		u := benchUNet{rng: rand.New(rand.NewPCG(2, 2)), g: x.Graph()}
		y := u.forward(x, ch)
		loss := ReduceAllSum(Square(y))
		return loss, Gradient(loss, x)[0]
	}
}

func unetForward(ch int) func(x *Node) *Node {
	return func(x *Node) *Node {
		return benchUNet{rng: rand.New(rand.NewPCG(2, 2)), g: x.Graph()}.forward(x, ch)
	}
}

func benchExec(b *testing.B, backend backends.Backend, fn any, x *tensors.Tensor) {
	exec, err := NewExecAny(backend, fn)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := exec.Exec(x); err != nil { // compile outside the timer
		b.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		outs, err := exec.Exec(x)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range outs {
			o.FinalizeAll()
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "MiB-alloc/op")
	b.ReportMetric(float64(after.Sys)/(1<<20), "MiB-sys")
	if hwm := procstat.PeakRSSMiB(); hwm > 0 {
		b.ReportMetric(hwm, "MiB-peak-rss") // whole process: run one sub-benchmark at a time
	}
}

// BenchmarkUNetStep: forward + input gradient on the embedded backend.
func BenchmarkUNetStep(b *testing.B) {
	for _, size := range []int{32, 64} {
		b.Run(fmt.Sprintf("embedded/%dpx/32ch", size), func(b *testing.B) {
			benchExec(b, mustBackend(b), unetStep(32), benchInput(size))
		})
	}
}

// BenchmarkUNetForward compares the forward pass with GoMLX's plain SimpleGo (which cannot
// differentiate this network: it lacks Pad and Reverse).
func BenchmarkUNetForward(b *testing.B) {
	for _, size := range []int{32, 64} {
		b.Run(fmt.Sprintf("embedded/%dpx/32ch", size), func(b *testing.B) {
			benchExec(b, mustBackend(b), unetForward(32), benchInput(size))
		})
		b.Run(fmt.Sprintf("simplego/%dpx/32ch", size), func(b *testing.B) {
			plain, err := simplego.New("ops_sequential")
			if err != nil {
				b.Fatal(err)
			}
			benchExec(b, plain, unetForward(32), benchInput(size))
		})
	}
}

func silu(x *Node) *Node { return Mul(x, Sigmoid(x)) }
