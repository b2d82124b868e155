package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// bigDims has more elements than parallelMinSize, so the multi-core paths run.
var bigDims = []int{2, 16, 32, 40}

// shapesToTry covers scalars, size-1 axes, empty tensors and sizes on both sides of the
// parallel threshold.
var shapesToTry = [][]int{{}, {1}, {7}, {3, 1, 5}, {2, 0, 3}, {4, 8, 8}, bigDims}

// randTensor is a tensor of dtype with normal values, and a few special values (±0, ±Inf,
// NaN, large magnitudes) mixed in when special is true.
func randTensor(rng *rand.Rand, dtype dtypes.DType, special bool, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 80, -80, 1e-30, -745}
	vals := make([]float64, n)
	for i := range vals {
		vals[i] = rng.NormFloat64() * 3
		if special && rng.IntN(8) == 0 {
			vals[i] = specials[rng.IntN(len(specials))]
		}
	}
	switch dtype {
	case dtypes.Float32:
		f := make([]float32, n)
		for i, v := range vals {
			f[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	case dtypes.Int32:
		f := make([]int32, n)
		for i := range f {
			f[i] = int32(rng.IntN(200) - 100)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	case dtypes.Int64:
		f := make([]int64, n)
		for i := range f {
			f[i] = int64(rng.IntN(200) - 100)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	}
	return tensors.FromFlatDataAndDimensions(vals, dims...)
}

// plainBackend is SimpleGo without our executors: the reference.
func plainBackend(t testing.TB) backends.Backend {
	t.Helper()
	b, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runGraph runs fn (a func of *graph.Node arguments returning *graph.Node) on backend.
func runGraph(t testing.TB, backend backends.Backend, fn any, inputs ...*tensors.Tensor) *tensors.Tensor {
	t.Helper()
	exec, err := graph.NewExecAny(backend, fn)
	if err != nil {
		t.Fatal(err)
	}
	args := make([]any, len(inputs))
	for i, x := range inputs {
		c, err := x.LocalClone() // a tensor stays tied to the first backend that uses it
		if err != nil {
			t.Fatal(err)
		}
		args[i] = c
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return outs[0]
}

// bitsEqual fails unless got and want have the same shape and bit-identical elements
// (so NaNs must match, and -0 ≠ +0).
func bitsEqual(t *testing.T, name string, got, want *tensors.Tensor) {
	t.Helper()
	if !got.Shape().Equal(want.Shape()) {
		t.Fatalf("%s: shape %s, want %s", name, got.Shape(), want.Shape())
	}
	var g, w []uint64
	switch got.DType() {
	case dtypes.Float32:
		for _, v := range tensors.MustCopyFlatData[float32](got) {
			g = append(g, uint64(math.Float32bits(v)))
		}
		for _, v := range tensors.MustCopyFlatData[float32](want) {
			w = append(w, uint64(math.Float32bits(v)))
		}
	case dtypes.Float64:
		for _, v := range tensors.MustCopyFlatData[float64](got) {
			g = append(g, math.Float64bits(v))
		}
		for _, v := range tensors.MustCopyFlatData[float64](want) {
			w = append(w, math.Float64bits(v))
		}
	default:
		gs, ws := fmt.Sprint(got.Value()), fmt.Sprint(want.Value())
		if gs != ws {
			t.Fatalf("%s: got %.200s, want %.200s", name, gs, ws)
		}
		return
	}
	for i := range w {
		// NaN payloads and signs are not compared: the compiler may swap the operands of a
		// commutative + or *, and x86 then propagates the other NaN.
		if bothNaN := g[i] != w[i] && isNaNBits(got.DType(), g[i]) && isNaNBits(got.DType(), w[i]); g[i] != w[i] && !bothNaN {
			t.Fatalf("%s: element %d has bits %#x, want %#x", name, i, g[i], w[i])
		}
	}
}

// checkAgainstSimpleGo runs fn on the embedded and the plain SimpleGo backend, requires
// bit-identical outputs, and returns how many times op's fast executor ran.
func checkAgainstSimpleGo(t *testing.T, name string, op backends.OpType, fn any, inputs ...*tensors.Tensor) int64 {
	t.Helper()
	emb, plain := mustBackend(t), plainBackend(t)
	before := fastHits[op].Load()
	got := runGraph(t, emb, fn, inputs...)
	hits := fastHits[op].Load() - before
	before = fastHits[op].Load()
	want := runGraph(t, plain, fn, inputs...)
	if fastHits[op].Load() != before {
		t.Fatalf("%s: the fast %s executor ran on a plain SimpleGo backend", name, op)
	}
	bitsEqual(t, name, got, want)
	return hits
}

var unaryOps = map[backends.OpType]func(*graph.Node) *graph.Node{
	backends.OpTypeLogistic: graph.Logistic,
	backends.OpTypeExp:      graph.Exp,
	backends.OpTypeNeg:      graph.Neg,
	backends.OpTypeSqrt:     graph.Sqrt,
	backends.OpTypeRsqrt:    graph.Rsqrt,
	backends.OpTypeTanh:     graph.Tanh,
	backends.OpTypeLog:      graph.Log,
	backends.OpTypeAbs:      graph.Abs,
}

func TestUnaryMatchesSimpleGoBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for op, f := range unaryOps {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			for _, dims := range shapesToTry {
				x := randTensor(rng, dt, true, dims...)
				// The second application gets an input SimpleGo owns: it runs in place.
				fn := func(x *graph.Node) *graph.Node { return f(f(x)) }
				name := fmt.Sprintf("%s %s %v", op, dt, dims)
				hits := checkAgainstSimpleGo(t, name, op, fn, x)
				if len(dims) == 4 && hits != 2 {
					t.Fatalf("%s: the fast executor ran %d times of 2", name, hits)
				}
			}
		}
	}
	// Integers are SimpleGo's.
	x := randTensor(rng, dtypes.Int32, false, bigDims...)
	if hits := checkAgainstSimpleGo(t, "neg int32", backends.OpTypeNeg, graph.Neg, x); hits != 0 {
		t.Fatal("the float executor took an int32 Neg")
	}
}

var binaryOps = map[backends.OpType]func(x, y *graph.Node) *graph.Node{
	backends.OpTypeAdd: graph.Add,
	backends.OpTypeSub: graph.Sub,
	backends.OpTypeMul: graph.Mul,
	backends.OpTypeDiv: graph.Div,
	backends.OpTypeMax: graph.Max,
	backends.OpTypeMin: graph.Min,
}

func TestSameShapeBinaryMatchesSimpleGoBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for op, f := range binaryOps {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			for _, dims := range shapesToTry {
				x, y := randTensor(rng, dt, true, dims...), randTensor(rng, dt, true, dims...)
				// Three applications: neither operand owned, lhs owned, rhs owned.
				fn := func(x, y *graph.Node) *graph.Node { return f(x, f(f(x, y), y)) }
				name := fmt.Sprintf("%s %s %v", op, dt, dims)
				hits := checkAgainstSimpleGo(t, name, op, fn, x, y)
				if len(dims) == 4 && hits != 3 {
					t.Fatalf("%s: the fast executor ran %d times of 3", name, hits)
				}
			}
		}
	}
}

func TestScalarOperandBinaryMatchesSimpleGoBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for op, f := range binaryOps {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			for _, scalarDims := range [][]int{{}, {1, 1, 1, 1}} {
				x, s := randTensor(rng, dt, true, bigDims...), randTensor(rng, dt, false, scalarDims...)
				// x op s, s op x, and each on an owned operand.
				fn := func(x, s *graph.Node) *graph.Node { return f(s, f(f(x, s), s)) }
				name := fmt.Sprintf("%s %s scalar %v", op, dt, scalarDims)
				if hits := checkAgainstSimpleGo(t, name, op, fn, x, s); hits != 3 {
					t.Fatalf("%s: the fast executor ran %d times of 3", name, hits)
				}
			}
		}
	}
}

func TestBinaryIntegersFallBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	for _, dt := range []dtypes.DType{dtypes.Int32, dtypes.Int64} {
		x, y := randTensor(rng, dt, false, bigDims...), randTensor(rng, dt, false, bigDims...)
		for op, f := range binaryOps {
			if op == backends.OpTypeDiv {
				continue // random integers include 0
			}
			if hits := checkAgainstSimpleGo(t, fmt.Sprint(op, dt), op, f, x, y); hits != 0 {
				t.Fatalf("%s %s: the float executor took integers", op, dt)
			}
		}
	}
}

// The broadcasting Add and Sub (fastbinary.go) engage too; TestBroadcastArithmeticMatchesSimpleGo
// checks only Mul and Div.
func TestBroadcastAddSubEngage(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	x := randTensor(rng, dtypes.Float32, false, bigDims...)
	c := randTensor(rng, dtypes.Float32, false, 1, bigDims[1], 1, 1)
	for _, op := range []backends.OpType{backends.OpTypeAdd, backends.OpTypeSub} {
		f := binaryOps[op]
		fn := func(x, c *graph.Node) *graph.Node { return f(c, f(x, c)) }
		if hits := checkAgainstSimpleGo(t, fmt.Sprint(op, " broadcast"), op, fn, x, c); hits != 2 {
			t.Fatalf("broadcast %s: the fast executor ran %d times of 2", op, hits)
		}
	}
}

func isNaNBits(dt dtypes.DType, bits uint64) bool {
	if dt == dtypes.Float32 {
		return math.IsNaN(float64(math.Float32frombits(uint32(bits))))
	}
	return math.IsNaN(math.Float64frombits(bits))
}

// BenchmarkFastOps compares each fast executor with SimpleGo's on one op of UNet size
// (batch 8, 64 channels, 32²: 524,288 float32 values).
func BenchmarkFastOps(b *testing.B) {
	rng := rand.New(rand.NewPCG(51, 52))
	dims := []int{8, 64, 32, 32}
	x := randTensor(rng, dtypes.Float32, false, dims...)
	y := randTensor(rng, dtypes.Float32, false, dims...)
	perChannel := randTensor(rng, dtypes.Float32, false, 64)
	ops := []struct {
		name   string
		fn     any
		inputs []*tensors.Tensor
	}{
		{"Logistic", graph.Logistic, []*tensors.Tensor{x}},
		{"Mul", graph.Mul, []*tensors.Tensor{x, y}},
		{"ReduceSum-GroupNorm", func(x *graph.Node) *graph.Node {
			return graph.ReduceSum(graph.Reshape(x, 8, 32, 2*32*32), 2)
		}, []*tensors.Tensor{x}},
		{"ReduceSum-bias-gradient", func(x *graph.Node) *graph.Node { return graph.ReduceSum(x, 0, 2, 3) }, []*tensors.Tensor{x}},
		{"BroadcastInDim-per-channel", func(c *graph.Node) *graph.Node {
			return graph.ExpandAndBroadcast(c, dims, []int{0, 2, 3})
		}, []*tensors.Tensor{perChannel}},
		{"Concatenate-channels", func(x, y *graph.Node) *graph.Node {
			return graph.Concatenate([]*graph.Node{x, y}, 1)
		}, []*tensors.Tensor{x, y}},
	}
	for _, op := range ops {
		for _, name := range []string{"embedded", "simplego"} {
			b.Run(op.name+"/"+name, func(b *testing.B) {
				backend := mustBackend(b)
				if name == "simplego" {
					backend = plainBackend(b)
				}
				exec, err := graph.NewExecAny(backend, op.fn)
				if err != nil {
					b.Fatal(err)
				}
				args := make([]any, len(op.inputs))
				for i, t := range op.inputs {
					if args[i], err = t.OnDeviceClone(backend, 0); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				for range b.N {
					outs, err := exec.Exec(args...)
					if err != nil {
						b.Fatal(err)
					}
					outs[0].FinalizeAll()
				}
			})
		}
	}
}
