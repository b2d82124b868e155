package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/blas"
)

// f32ND rounds an array to float32 values (kept as float64 for the references).
func f32ND(a ndarray) ndarray {
	out := newND(a.dims...)
	for i, v := range a.data {
		out.data[i] = float64(float32(v))
	}
	return out
}

func (a ndarray) tensor32() *tensors.Tensor {
	d := make([]float32, len(a.data))
	for i, v := range a.data {
		d[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(d, a.dims...)
}

func fromTensor32(t *tensors.Tensor) ndarray {
	d := tensors.MustCopyFlatData[float32](t)
	out := ndarray{dims: t.Shape().Dimensions, data: make([]float64, len(d))}
	for i, v := range d {
		out.data[i] = float64(v)
	}
	return out
}

func absND(a ndarray) ndarray {
	out := newND(a.dims...)
	for i, v := range a.data {
		out.data[i] = math.Abs(v)
	}
	return out
}

var nchwAxes = backends.ConvolveAxesConfig{
	InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
	KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
	OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
}

// Channels-last input and kernel, a 1-D and a 3-D convolution: other strides and ranks
// through the same packers, checked against refConv2D on rearranged copies.
func TestFastConvLayoutsAndRanks(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(27, 28))
	check := func(name string, got, want, scale ndarray) {
		t.Helper()
		for i := range want.data {
			if d := math.Abs(got.data[i] - want.data[i]); d > 1e-6*scale.data[i]+1e-30 {
				t.Fatalf("%s: element %d = %.9g, want %.9g", name, i, got.data[i], want.data[i])
			}
		}
	}
	conv := func(axes backends.ConvolveAxesConfig, pad [][2]int, x, k ndarray) ndarray {
		exec, err := graph.NewExec(b, func(x, k *graph.Node) *graph.Node {
			return graph.ConvGeneral(x, k, axes, nil, pad, nil, nil, 1, 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec1(x.tensor32(), k.tensor32())
		if err != nil {
			t.Fatal(err)
		}
		return fromTensor32(out)
	}

	// NHWC input, HWIO kernel, NHWC output.
	x, k := f32ND(randND(rng, 2, 9, 10, 7)), f32ND(randND(rng, 3, 3, 7, 20))
	nhwc := backends.ConvolveAxesConfig{
		InputBatch: 0, InputChannels: 3, InputSpatial: []int{1, 2},
		KernelInputChannels: 2, KernelOutputChannels: 3, KernelSpatial: []int{0, 1},
		OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2},
	}
	got := conv(nhwc, [][2]int{{1, 1}, {1, 1}}, x, k)
	xn, kn := newND(2, 7, 9, 10), newND(20, 7, 3, 3)
	forEach(x.dims, func(i []int) { xn.data[xn.flat([]int{i[0], i[3], i[1], i[2]})] = x.data[x.flat(i)] })
	forEach(k.dims, func(i []int) { kn.data[kn.flat([]int{i[3], i[2], i[0], i[1]})] = k.data[k.flat(i)] })
	pad := [2][2]int{{1, 1}, {1, 1}}
	toNHWC := func(r ndarray) ndarray {
		out := newND(r.dims[0], r.dims[2], r.dims[3], r.dims[1])
		forEach(r.dims, func(i []int) { out.data[out.flat([]int{i[0], i[2], i[3], i[1]})] = r.data[r.flat(i)] })
		return out
	}
	one := [2]int{1, 1}
	check("NHWC", got, toNHWC(refConv2D(xn, kn, [2][2]int{{1}, {1}}, pad, one, one, 1)),
		toNHWC(refConv2D(absND(xn), absND(kn), [2][2]int{{1}, {1}}, pad, one, one, 1)))

	// 1-D: [B, C, W] as a 2-D convolution with H = 1.
	x1, k1 := f32ND(randND(rng, 3, 4, 37)), f32ND(randND(rng, 5, 4, 5))
	axes1 := backends.ConvolveAxesConfig{
		InputBatch: 0, InputChannels: 1, InputSpatial: []int{2},
		KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2},
	}
	got1 := conv(axes1, [][2]int{{2, 1}}, x1, k1)
	as2 := func(a ndarray) ndarray { return ndarray{dims: []int{a.dims[0], a.dims[1], 1, a.dims[2]}, data: a.data} }
	pad1 := [2][2]int{{0, 0}, {2, 1}}
	want1 := refConv2D(as2(x1), as2(k1), [2][2]int{{1}, {1}}, pad1, one, one, 1)
	check("1-D", got1, want1, refConv2D(absND(as2(x1)), absND(as2(k1)), [2][2]int{{1}, {1}}, pad1, one, one, 1))

	// 3-D with depth 1 in the kernel: equals the 2-D convolution of each depth slice.
	x3, k3 := f32ND(randND(rng, 1, 2, 3, 6, 5)), f32ND(randND(rng, 4, 2, 1, 3, 3))
	axes3 := backends.ConvolveAxesConfig{
		InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3, 4},
		KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3, 4},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3, 4},
	}
	got3 := conv(axes3, [][2]int{{0, 0}, {1, 1}, {0, 0}}, x3, k3)
	k2 := ndarray{dims: []int{4, 2, 3, 3}, data: k3.data}
	pad3 := [2][2]int{{1, 1}, {0, 0}}
	for d := range 3 {
		slice := newND(1, 2, 6, 5)
		forEach(slice.dims, func(i []int) {
			slice.data[slice.flat(i)] = x3.data[x3.flat([]int{i[0], i[1], d, i[2], i[3]})]
		})
		want := refConv2D(slice, k2, [2][2]int{{1}, {1}}, pad3, one, one, 1)
		scale := refConv2D(absND(slice), absND(k2), [2][2]int{{1}, {1}}, pad3, one, one, 1)
		gotD := newND(want.dims...)
		forEach(want.dims, func(i []int) {
			gotD.data[gotD.flat(i)] = got3.data[got3.flat([]int{i[0], i[1], d, i[2], i[3]})]
		})
		check(fmt.Sprintf("3-D depth %d", d), gotD, want, scale)
	}
}

// The executor adds in the order im2col + Sgemm did (k = channel-major then tap, blocks of
// 256): results are bit-identical to Sgemm on an explicit patch matrix.
func TestFastConvBitIdenticalToIm2colSgemm(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(29, 30))
	for _, c := range []struct{ x, k []int }{
		{[]int{3, 20, 13, 11}, []int{30, 20, 3, 3}}, // k = 180
		{[]int{2, 48, 9, 9}, []int{20, 48, 3, 3}},   // k = 432: two blocks
	} {
		B, C, H, W := c.x[0], c.x[1], c.x[2], c.x[3]
		Cout := c.k[0]
		x, k := f32ND(randND(rng, c.x...)), f32ND(randND(rng, c.k...))
		exec, err := graph.NewExec(b, func(x, k *graph.Node) *graph.Node {
			return graph.ConvGeneral(x, k, nchwAxes, nil, [][2]int{{1, 1}, {1, 1}}, nil, nil, 1, 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec1(x.tensor32(), k.tensor32())
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[float32](out)
		K, N := C*9, B*H*W
		patches := make([]float32, K*N)
		for ci := range C {
			for tap := range 9 {
				for bi := range B {
					for y := range H {
						for xx := range W {
							sy, sx := y+tap/3-1, xx+tap%3-1
							if sy >= 0 && sy < H && sx >= 0 && sx < W {
								patches[(ci*9+tap)*N+bi*H*W+y*W+xx] = float32(x.data[x.flat([]int{bi, ci, sy, sx})])
							}
						}
					}
				}
			}
		}
		kf := make([]float32, len(k.data))
		for i, v := range k.data {
			kf[i] = float32(v)
		}
		prod := make([]float32, Cout*N)
		Sgemm(blas.NoTrans, blas.NoTrans, Cout, N, K, kf, K, patches, N, prod, N)
		for bi := range B {
			for co := range Cout {
				for p := range H * W {
					g, w := got[(bi*Cout+co)*H*W+p], prod[co*N+bi*H*W+p]
					if math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("x %v: output (%d, %d, %d) = %g, im2col+Sgemm gives %g", c.x, bi, co, p, g, w)
					}
				}
			}
		}
	}
}

// Gradients of a strided, padded convolution w.r.t. input and kernel (the input-dilated
// and the batch/channel-swapped convolutions autodiff emits) run on the executor in
// float32 and agree with the same graph in float64 (the im2col path, itself checked
// against loops above) to float32 rounding.
func TestFastConvGradients(t *testing.T) {
	for _, stride := range []int{2, 1} {
		t.Run(fmt.Sprintf("stride %d", stride), func(t *testing.T) { checkConvGradients(t, stride) })
	}
}

func checkConvGradients(t *testing.T, stride int) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(31, uint64(stride)))
	outH, outW := (11+2-3)/stride+1, (10+1-3)/stride+1
	x, k, w := f32ND(randND(rng, 2, 6, 11, 10)), f32ND(randND(rng, 8, 6, 3, 3)), randND(rng, 2, 8, outH, outW)
	fn := func(x, k, w *graph.Node) []*graph.Node {
		y := graph.ConvGeneral(x, k, nchwAxes, []int{stride, stride}, [][2]int{{1, 1}, {0, 1}}, nil, nil, 1, 1)
		loss := graph.ReduceAllSum(graph.Mul(graph.Square(y), graph.ConvertDType(w, y.DType()))) // needs y: all three convolutions run
		return graph.Gradient(loss, x, k)
	}
	exec, err := graph.NewExec(b, fn)
	if err != nil {
		t.Fatal(err)
	}
	flipped := func() (n int) {
		kernelFlipsOf.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	flipsBefore := flipped()
	before := fastHits[backends.OpTypeConvGeneral].Load()
	g32, err := exec.Exec(x.tensor32(), k.tensor32(), w.tensor())
	if err != nil {
		t.Fatal(err)
	}
	if flipped() == flipsBefore {
		t.Error("the input gradient's reversed kernel was not folded into its convolution")
	}
	if n := fastHits[backends.OpTypeConvGeneral].Load() - before; n < 3 {
		t.Fatalf("%d convolutions ran on the executor, want 3 (forward, input and kernel gradients)", n)
	}
	g64, err := exec.Exec(x.tensor(), k.tensor(), w.tensor())
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"d/dx", "d/dk"} {
		got, want := fromTensor32(g32[i]), fromTensor(g64[i])
		var maxAbs float64
		for _, v := range want.data {
			maxAbs = max(maxAbs, math.Abs(v))
		}
		for j := range want.data {
			if d := math.Abs(got.data[j] - want.data[j]); d > 2e-6*(maxAbs+1) {
				t.Fatalf("%s element %d = %.9g, float64 gives %.9g", name, j, got.data[j], want.data[j])
			}
		}
	}
}

// BenchmarkConv2D times float32 3×3 convolutions of UNet shapes (forward only) on the
// implicit-GEMM executor; GFLOP/s counts 2·Cout·Cin·9·B·H·W.
func BenchmarkConv2D(b *testing.B) {
	backend := mustBackend(b)
	rng := rand.New(rand.NewPCG(33, 34))
	for _, c := range []struct{ batch, cin, cout, size int }{
		{8, 32, 32, 32}, {8, 64, 64, 16}, {1, 128, 128, 64}, {1, 256, 256, 32},
	} {
		b.Run(fmt.Sprintf("b%d/%dto%d/%dpx", c.batch, c.cin, c.cout, c.size), func(b *testing.B) {
			x := f32ND(randND(rng, c.batch, c.cin, c.size, c.size)).tensor32()
			k := f32ND(randND(rng, c.cout, c.cin, 3, 3)).tensor32()
			exec, err := graph.NewExec(backend, func(x, k *graph.Node) *graph.Node {
				return graph.ConvGeneral(x, k, nchwAxes, nil, [][2]int{{1, 1}, {1, 1}}, nil, nil, 1, 1)
			})
			if err != nil {
				b.Fatal(err)
			}
			exec.MustExec1(x, k).FinalizeAll()
			b.ResetTimer()
			for range b.N {
				exec.MustExec1(x, k).FinalizeAll()
			}
			flops := 2.0 * float64(c.cout*c.cin*9*c.batch*c.size*c.size)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
