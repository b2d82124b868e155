package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// ndarray is a minimal row-major float64 array for the independent references below.
type ndarray struct {
	dims []int
	data []float64
}

func newND(dims ...int) ndarray {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return ndarray{dims: append([]int{}, dims...), data: make([]float64, n)}
}

func randND(rng *rand.Rand, dims ...int) ndarray {
	a := newND(dims...)
	for i := range a.data {
		a.data[i] = rng.NormFloat64()
	}
	return a
}

func (a ndarray) flat(idx []int) int {
	f := 0
	for i, d := range a.dims {
		f = f*d + idx[i]
	}
	return f
}

func (a ndarray) tensor() *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(append([]float64{}, a.data...), a.dims...)
}

func fromTensor(t *tensors.Tensor) ndarray {
	return ndarray{dims: t.Shape().Dimensions, data: tensors.MustCopyFlatData[float64](t)}
}

// forEach calls f with every multi-index of dims, in row-major order.
func forEach(dims []int, f func(idx []int)) {
	n := 1
	for _, d := range dims {
		n *= d
	}
	for flat := 0; flat < n; flat++ {
		f(unflatten(flat, dims))
	}
}

// refPad is XLA's Pad written as loops: interior first, then edges (negative edges cut).
func refPad(x ndarray, fill float64, cfg []backends.PadAxis) ndarray {
	full := make([]backends.PadAxis, len(x.dims))
	copy(full, cfg)
	out := make([]int, len(x.dims))
	for i, d := range x.dims {
		c := full[i]
		out[i] = c.Start + c.End + d + max(d-1, 0)*c.Interior
	}
	y := newND(out...)
	for i := range y.data {
		y.data[i] = fill
	}
	forEach(x.dims, func(idx []int) {
		o := make([]int, len(idx))
		for i, v := range idx {
			o[i] = full[i].Start + v*(1+full[i].Interior)
			if o[i] < 0 || o[i] >= out[i] {
				return
			}
		}
		y.data[y.flat(o)] = x.data[x.flat(idx)]
	})
	return y
}

func mustBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run1(t testing.TB, b backends.Backend, fn func(x *graph.Node) *graph.Node, x ndarray) ndarray {
	t.Helper()
	exec, err := graph.NewExec(b, fn)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec1(x.tensor())
	if err != nil {
		t.Fatal(err)
	}
	return fromTensor(out)
}

func exactlyEqual(t *testing.T, name string, got, want ndarray) {
	t.Helper()
	if fmt.Sprint(got.dims) != fmt.Sprint(want.dims) {
		t.Fatalf("%s: shape %v, want %v", name, got.dims, want.dims)
	}
	for i := range want.data {
		if got.data[i] != want.data[i] {
			t.Fatalf("%s: element %d = %g, want %g", name, i, got.data[i], want.data[i])
		}
	}
}

func TestPadMatchesReference(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	x := randND(rng, 3, 4, 5)
	cases := map[string][]backends.PadAxis{
		"start-end":     {{Start: 1, End: 2}},
		"last-axis":     {{}, {}, {Start: 3, End: 1}},
		"negative":      {{Start: -1}, {End: -2}, {Start: -1, End: -1}},
		"interior":      {{Interior: 2}, {}, {Interior: 1}},
		"mixed":         {{Start: 2, End: -1, Interior: 1}, {Start: -1, End: 3, Interior: 2}, {Start: 1, Interior: 3}},
		"all-zero-cfgs": {{}, {}, {}},
		"none":          nil,
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			got := run1(t, b, func(x *graph.Node) *graph.Node {
				return graph.Pad(x, graph.Const(x.Graph(), 7.5), cfg...)
			}, x)
			exactlyEqual(t, name, got, refPad(x, 7.5, cfg))
		})
	}
}

func TestReverseMatchesReference(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(3, 4))
	x := randND(rng, 2, 3, 1, 4)
	for _, axes := range [][]int{{0}, {1}, {3}, {1, 3}, {0, 1, 2, 3}, {2}} {
		got := run1(t, b, func(x *graph.Node) *graph.Node { return graph.Reverse(x, axes...) }, x)
		want := newND(x.dims...)
		forEach(x.dims, func(idx []int) {
			src := append([]int{}, idx...)
			for _, a := range axes {
				src[a] = x.dims[a] - 1 - idx[a]
			}
			want.data[want.flat(idx)] = x.data[x.flat(src)]
		})
		exactlyEqual(t, fmt.Sprint("reverse", axes), got, want)
	}
}

// refConv2D is a direct NCHW convolution with XLA semantics (input dilation, padding,
// stride, kernel dilation, channel groups); kernel is [Cout, Cin/groups, KH, KW].
func refConv2D(x, k ndarray, stride, pad [2][2]int, inDil, kDil [2]int, groups int) ndarray {
	_ = pad
	B, C, H, W := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	Cout, Cg, KH, KW := k.dims[0], k.dims[1], k.dims[2], k.dims[3]
	sp := [2]int{H, W}
	kd := [2]int{KH, KW}
	var O [2]int
	for i := range 2 {
		dil := (sp[i]-1)*inDil[i] + 1 + pad[i][0] + pad[i][1]
		eff := (kd[i]-1)*kDil[i] + 1
		O[i] = (dil-eff)/stride[i][0] + 1
	}
	y := newND(B, Cout, O[0], O[1])
	coutPerGroup := Cout / groups
	_ = C
	forEach(y.dims, func(idx []int) {
		b, co, oh, ow := idx[0], idx[1], idx[2], idx[3]
		g := co / coutPerGroup
		sum := 0.0
		for ci := 0; ci < Cg; ci++ {
			for kh := 0; kh < KH; kh++ {
				for kw := 0; kw < KW; kw++ {
					ph := oh*stride[0][0] + kh*kDil[0] - pad[0][0]
					pw := ow*stride[1][0] + kw*kDil[1] - pad[1][0]
					if ph < 0 || pw < 0 || ph%inDil[0] != 0 || pw%inDil[1] != 0 {
						continue
					}
					ih, iw := ph/inDil[0], pw/inDil[1]
					if ih >= H || iw >= W {
						continue
					}
					sum += x.data[x.flat([]int{b, g*Cg + ci, ih, iw})] * k.data[k.flat([]int{co, ci, kh, kw})]
				}
			}
		}
		y.data[y.flat(idx)] = sum
	})
	return y
}

func closeTo(t *testing.T, name string, got, want ndarray, tol float64) {
	t.Helper()
	if fmt.Sprint(got.dims) != fmt.Sprint(want.dims) {
		t.Fatalf("%s: shape %v, want %v", name, got.dims, want.dims)
	}
	for i := range want.data {
		if d := math.Abs(got.data[i] - want.data[i]); d > tol*(1+math.Abs(want.data[i])) {
			t.Fatalf("%s: element %d = %.15g, want %.15g", name, i, got.data[i], want.data[i])
		}
	}
}

// Every case runs in float64 (the im2col path, 1e-12) and in float32 (the implicit-GEMM
// executor, which must engage; |got − want| ≤ 1e-6·Σ|x·k| per element, float32 rounding).
func TestConvGeneralMatchesDirectConvolution(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(5, 6))
	type tc struct {
		name            string
		x, k            []int
		stride, inDil   [2]int
		kDil            [2]int
		pad             [2][2]int
		groups          int
		expectFewerOuts bool
	}
	cases := []tc{
		{name: "3x3 same", x: []int{2, 3, 7, 6}, k: []int{4, 3, 3, 3}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{1, 1}, {1, 1}}, groups: 1},
		{name: "3x3 stride2", x: []int{1, 2, 8, 9}, k: []int{3, 2, 3, 3}, stride: [2]int{2, 2}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{1, 1}, {0, 1}}, groups: 1},
		{name: "1x1", x: []int{2, 5, 4, 4}, k: []int{3, 5, 1, 1}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, groups: 1},
		{name: "input dilation", x: []int{1, 2, 4, 5}, k: []int{2, 2, 3, 2}, stride: [2]int{1, 1}, inDil: [2]int{2, 3}, kDil: [2]int{1, 1}, pad: [2][2]int{{2, 1}, {1, 0}}, groups: 1},
		{name: "kernel dilation", x: []int{1, 2, 9, 9}, k: []int{2, 2, 3, 3}, stride: [2]int{1, 2}, inDil: [2]int{1, 1}, kDil: [2]int{2, 3}, groups: 1},
		{name: "groups", x: []int{2, 4, 5, 5}, k: []int{6, 2, 3, 3}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{1, 1}, {1, 1}}, groups: 2},
		{name: "negative padding", x: []int{1, 1, 6, 6}, k: []int{1, 1, 2, 2}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{-1, 0}, {0, -2}}, groups: 1},
		{name: "big kernel, few outputs", x: []int{2, 3, 9, 9}, k: []int{2, 3, 8, 7}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, groups: 1, expectFewerOuts: true},
		{name: "too many pieces: direct loop", x: []int{1, 2, 30, 30}, k: []int{2, 2, 23, 23}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{11, 11}, {11, 11}}, groups: 1},
		// k = 40·9 = 360 > one k-block of the GEMM, 646 columns: several chunks, both workers, edge tiles.
		{name: "several k-blocks and chunks", x: []int{2, 40, 17, 19}, k: []int{35, 40, 3, 3}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{1, 1}, {1, 1}}, groups: 1},
		// More taps than fillRuns2D's table, wider than the output: packed in runs along k.
		{name: "wide kernel, k-runs", x: []int{2, 3, 12, 12}, k: []int{2, 3, 11, 10}, stride: [2]int{1, 1}, inDil: [2]int{1, 1}, kDil: [2]int{1, 1}, pad: [2][2]int{{1, 1}, {2, 2}}, groups: 1},
		{name: "stride2 with input dilation", x: []int{2, 3, 5, 6}, k: []int{4, 3, 3, 3}, stride: [2]int{2, 1}, inDil: [2]int{2, 2}, kDil: [2]int{1, 1}, pad: [2][2]int{{1, 2}, {2, 1}}, groups: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, k := randND(rng, c.x...), randND(rng, c.k...)
			want := refConv2D(x, k, [2][2]int{{c.stride[0]}, {c.stride[1]}}, c.pad, c.inDil, c.kDil, c.groups)
			exec, err := graph.NewExec(b, func(x, k *graph.Node) *graph.Node {
				axes := backends.ConvolveAxesConfig{
					InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
					KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
					OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3},
				}
				return graph.ConvGeneral(x, k, axes, c.stride[:], c.pad[:], c.inDil[:], c.kDil[:], c.groups, 1)
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Exec1(x.tensor(), k.tensor())
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, c.name, fromTensor(out), want, 1e-12)
			if c.expectFewerOuts && want.dims[2]*want.dims[3] >= c.k[2]*c.k[3] {
				t.Fatalf("case does not exercise the few-outputs path")
			}

			x32, k32 := f32ND(x), f32ND(k)
			stride := [2][2]int{{c.stride[0]}, {c.stride[1]}}
			want32 := refConv2D(x32, k32, stride, c.pad, c.inDil, c.kDil, c.groups)
			scale := refConv2D(absND(x32), absND(k32), stride, c.pad, c.inDil, c.kDil, c.groups)
			before := fastHits[backends.OpTypeConvGeneral].Load()
			out, err = exec.Exec1(x32.tensor32(), k32.tensor32())
			if err != nil {
				t.Fatal(err)
			}
			if fastHits[backends.OpTypeConvGeneral].Load() == before {
				t.Fatal("float32: the implicit-GEMM executor did not run")
			}
			got := fromTensor32(out)
			for i := range want32.data {
				if d := math.Abs(got.data[i] - want32.data[i]); d > 1e-6*scale.data[i]+1e-30 {
					t.Fatalf("float32 element %d = %.9g, want %.9g (Σ|x·k| %.3g)", i, got.data[i], want32.data[i], scale.data[i])
				}
			}
		})
	}
}

func TestConvGeneralChannelsLastAndNilStrides(t *testing.T) {
	// GoMLX's input-gradient convolution passes nil strides: they must mean 1.
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(7, 8))
	x, k := randND(rng, 1, 5, 6, 3), randND(rng, 3, 3, 3, 2) // NHWC, HWIO
	exec, err := graph.NewExec(b, func(x, k *graph.Node) *graph.Node {
		axes := backends.ConvolveAxesConfig{
			InputBatch: 0, InputChannels: 3, InputSpatial: []int{1, 2},
			KernelInputChannels: 2, KernelOutputChannels: 3, KernelSpatial: []int{0, 1},
			OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2},
		}
		return graph.ConvGeneral(x, k, axes, nil, nil, nil, nil, 1, 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec1(x.tensor(), k.tensor())
	if err != nil {
		t.Fatal(err)
	}
	// Reference: transpose to NCHW / OIHW, convolve, transpose back.
	xn := newND(1, 3, 5, 6)
	forEach(x.dims, func(i []int) { xn.data[xn.flat([]int{i[0], i[3], i[1], i[2]})] = x.data[x.flat(i)] })
	kn := newND(2, 3, 3, 3)
	forEach(k.dims, func(i []int) { kn.data[kn.flat([]int{i[3], i[2], i[0], i[1]})] = k.data[k.flat(i)] })
	r := refConv2D(xn, kn, [2][2]int{{1}, {1}}, [2][2]int{}, [2]int{1, 1}, [2]int{1, 1}, 1)
	want := newND(1, 3, 4, 2)
	forEach(r.dims, func(i []int) { want.data[want.flat([]int{i[0], i[2], i[3], i[1]})] = r.data[r.flat(i)] })
	closeTo(t, "NHWC", fromTensor(out), want, 1e-12)
}

func TestEmbeddedRegisteredWithGoMLX(t *testing.T) {
	b, err := backends.NewWithConfig("embedded")
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != EmbeddedName || !b.Capabilities().Operations[backends.OpTypePad] {
		t.Fatalf("GoMLX returned %q without Pad capability", b.Name())
	}
}

func TestGoMLXDefaultIsEmbedded(t *testing.T) {
	t.Setenv(backends.ConfigEnvVar, "")
	os.Unsetenv(backends.ConfigEnvVar)
	b, err := backends.New()
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != EmbeddedName {
		t.Fatalf("backends.New() without %s gave %q, want %q (GoMLX's default would download XLA)", backends.ConfigEnvVar, b.Name(), EmbeddedName)
	}
}

// TestConcurrentMatrixProductsFinish guards against SimpleGo's deadlock when several
// matrix products run at once: graphs with independent products, executed from several
// goroutines, must all finish (the bound is for a hang, not for speed). Plain SimpleGo
// in its default mode hangs on this test.
func TestConcurrentMatrixProductsFinish(t *testing.T) {
	b := mustBackend(t)
	exec, err := graph.NewExec(b, func(x *graph.Node) *graph.Node {
		var outs []*graph.Node
		for i := range 6 {
			y := graph.MulScalar(x, float64(i+1))
			outs = append(outs, graph.ReduceAllSum(graph.Einsum("ij,jk->ik", y, x)))
		}
		return graph.Add(graph.Add(outs[0], outs[1]), graph.Add(graph.Add(outs[2], outs[3]), graph.Add(outs[4], outs[5])))
	})
	if err != nil {
		t.Fatal(err)
	}
	x := randND(rand.New(rand.NewPCG(1, 1)), 384, 384) // large enough for SimpleGo's worker-pool product path
	done := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := exec.Exec(x.tensor())
			done <- err
		}()
	}
	timeout := time.After(5 * time.Minute)
	for range 4 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("concurrent matrix products did not finish: deadlock")
		}
	}
}
