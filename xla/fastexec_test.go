package xla

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// refDot is DotGeneral written as loops over the output (batch, lhs cross, rhs cross).
func refDot(l, r ndarray, lc, lb, rc, rb []int) ndarray {
	role := func(rank int, c, b []int) (cross []int) {
		used := map[int]bool{}
		for _, a := range append(append([]int{}, c...), b...) {
			used[a] = true
		}
		for a := range rank {
			if !used[a] {
				cross = append(cross, a)
			}
		}
		return
	}
	lx, rx := role(len(l.dims), lc, lb), role(len(r.dims), rc, rb)
	var outDims, cDims []int
	for _, a := range lb {
		outDims = append(outDims, l.dims[a])
	}
	for _, a := range lx {
		outDims = append(outDims, l.dims[a])
	}
	for _, a := range rx {
		outDims = append(outDims, r.dims[a])
	}
	for _, a := range lc {
		cDims = append(cDims, l.dims[a])
	}
	out := newND(outDims...)
	forEach(outDims, func(o []int) {
		li, ri := make([]int, len(l.dims)), make([]int, len(r.dims))
		for i := range lb {
			li[lb[i]], ri[rb[i]] = o[i], o[i]
		}
		for i, a := range lx {
			li[a] = o[len(lb)+i]
		}
		for i, a := range rx {
			ri[a] = o[len(lb)+len(lx)+i]
		}
		sum := 0.0
		forEach(cDims, func(c []int) {
			for i := range lc {
				li[lc[i]], ri[rc[i]] = c[i], c[i]
			}
			sum += l.data[l.flat(li)] * r.data[r.flat(ri)]
		})
		out.data[out.flat(o)] = sum
	})
	return out
}

func TestDotGeneralLayoutsMatchLoops(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(9, 10))
	type tc struct {
		l, r           []int
		lc, lb, rc, rb []int
	}
	cases := []tc{
		{[]int{5, 7}, []int{7, 3}, []int{1}, nil, []int{0}, nil},                             // NN
		{[]int{7, 5}, []int{7, 3}, []int{0}, nil, []int{0}, nil},                             // TN
		{[]int{5, 7}, []int{3, 7}, []int{1}, nil, []int{1}, nil},                             // NT
		{[]int{7, 5}, []int{3, 7}, []int{0}, nil, []int{1}, nil},                             // TT
		{[]int{2, 4, 6}, []int{2, 6, 3}, []int{2}, []int{0}, []int{1}, []int{0}},             // batched
		{[]int{3, 2, 4, 5}, []int{3, 4, 5, 6}, []int{2, 3}, []int{0}, []int{1, 2}, []int{0}}, // two contracting axes
		{[]int{4, 3, 5}, []int{5, 3, 2}, []int{2}, []int{1}, []int{0}, []int{1}},             // batch not first: fallback
		{[]int{4, 6, 5}, []int{5, 2, 4}, []int{0, 2}, nil, []int{2, 0}, nil},                 // out-of-order contracting: fallback
		{[]int{64, 40}, []int{40, 70}, []int{1}, nil, []int{0}, nil},                         // big enough for gonum's parallel path
		{[]int{9, 1, 8}, []int{9, 8, 1}, []int{2}, []int{0}, []int{1}, []int{0}},             // unit dims
		// Contracting block between cross axes: one product per outer index.
		{[]int{6, 4}, []int{3, 4, 5}, []int{1}, nil, []int{1}, nil},                             // "oc,bct->obt" (attention's projections)
		{[]int{3, 4, 5}, []int{4, 2}, []int{1}, nil, []int{0}, nil},                             // lhs outer and inner
		{[]int{2, 3, 4, 5}, []int{2, 6, 4, 7}, []int{2}, []int{0}, []int{2}, []int{0}},          // both, batched
		{[]int{2, 3, 4, 5, 2}, []int{2, 4, 5, 3}, []int{2, 3}, []int{0}, []int{1, 2}, []int{0}}, // two contracting axes in the middle
		{[]int{48, 32}, []int{4, 32, 40}, []int{1}, nil, []int{1}, nil},                         // big enough for the SIMD kernel
	}
	before := fastHits[backends.OpTypeDotGeneral].Load()
	for i, c := range cases {
		l, r := randND(rng, c.l...), randND(rng, c.r...)
		want := refDot(l, r, c.lc, c.lb, c.rc, c.rb)
		for _, f32 := range []bool{false, true} {
			exec, err := graph.NewExec(b, func(x, y *graph.Node) *graph.Node {
				if f32 {
					x, y = graph.ConvertDType(x, dtypes.Float32), graph.ConvertDType(y, dtypes.Float32)
				}
				out := graph.DotGeneral(x, c.lc, c.lb, y, c.rc, c.rb)
				return graph.ConvertDType(out, dtypes.Float64)
			})
			if err != nil {
				t.Fatal(err)
			}
			got := fromTensor(exec.MustExec1(l.tensor(), r.tensor()))
			tol := 1e-12
			if f32 {
				tol = 1e-4
			}
			closeTo(t, fmt.Sprintf("case %d (f32=%v)", i, f32), got, want, tol)
		}
	}
	if fastHits[backends.OpTypeDotGeneral].Load() == before {
		t.Fatal("the gonum DotGeneral executor never engaged on the embedded backend")
	}
}

func TestSliceMatchesReferenceAndSimpleGo(t *testing.T) {
	emb := mustBackend(t)
	plain, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	x := randND(rng, 3, 5, 7, 6)
	specs := [][]graph.SliceAxisSpec{
		{graph.AxisRange(1, 3), graph.AxisRange(), graph.AxisRange(2, 7).Stride(2), graph.AxisRange(1, 5)},
		{graph.AxisRange().Stride(2), graph.AxisRange(4), graph.AxisRange(), graph.AxisRange().Stride(3)},
		{graph.AxisRange(2, 3), graph.AxisRange(0, 1), graph.AxisRange(6), graph.AxisRange(5)},
	}
	for i, spec := range specs {
		fn := func(x *graph.Node) *graph.Node { return graph.Slice(x, spec...) }
		hits := fastHits[backends.OpTypeSlice].Load()
		got := run1(t, emb, fn, x)
		if fastHits[backends.OpTypeSlice].Load() == hits {
			t.Fatalf("spec %d: the row-copy Slice executor did not engage", i)
		}
		hits = fastHits[backends.OpTypeSlice].Load()
		want := run1(t, plain, fn, x)
		if fastHits[backends.OpTypeSlice].Load() != hits {
			t.Fatalf("spec %d: the fast executor ran on a plain SimpleGo backend", i)
		}
		exactlyEqual(t, fmt.Sprint("slice spec ", i), got, want)
	}
	// Integer slices are left to SimpleGo.
	ints := tensors.FromFlatDataAndDimensions([]int32{1, 2, 3, 4, 5, 6}, 2, 3)
	exec, err := graph.NewExec(emb, func(x *graph.Node) *graph.Node {
		return graph.Slice(x, graph.AxisRange(), graph.AxisRange(1).Stride(2))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(exec.MustExec1(ints).Value()); got != "[[2] [5]]" {
		t.Fatalf("int32 slice = %s, want [[2] [5]]", got)
	}
}

func TestBroadcastArithmeticMatchesSimpleGo(t *testing.T) {
	emb := mustBackend(t)
	plain, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	pairs := [][2][]int{
		{{2, 4, 3, 5}, {1, 4, 1, 1}},       // per-channel scale
		{{2, 2, 3, 4, 5}, {2, 2, 1, 1, 1}}, // group mean
		{{1, 3, 1}, {4, 3, 5}},             // both broadcast
		{{6, 1}, {1, 7}},                   // outer product
		{{64, 40, 32}, {64, 1, 32}},        // large enough to split across cores
		{{2, 3, 4}, {1, 1, 1}},             // a one-element operand of full rank
	}
	ops := map[string]func(x, y *graph.Node) *graph.Node{"add": graph.Add, "sub": graph.Sub, "mul": graph.Mul, "div": graph.Div}
	hits := fastHits[backends.OpTypeMul].Load() + fastHits[backends.OpTypeDiv].Load()
	for i, pr := range pairs {
		x, y := randND(rng, pr[0]...), randND(rng, pr[1]...)
		for name, op := range ops {
			for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
				fn := func(a, b *graph.Node) *graph.Node {
					return graph.ConvertDType(op(graph.ConvertDType(a, dt), graph.ConvertDType(b, dt)), dtypes.Float64)
				}
				var outs [2]ndarray
				for k, backend := range []backends.Backend{emb, plain} {
					exec, err := graph.NewExec(backend, fn)
					if err != nil {
						t.Fatal(err)
					}
					outs[k] = fromTensor(exec.MustExec1(x.tensor(), y.tensor()))
				}
				exactlyEqual(t, fmt.Sprintf("pair %d %s %s", i, name, dt), outs[0], outs[1])
			}
		}
	}
	if fastHits[backends.OpTypeMul].Load()+fastHits[backends.OpTypeDiv].Load() == hits {
		t.Fatal("the broadcasting executors never engaged")
	}
}

func TestTransposeMatchesSimpleGo(t *testing.T) {
	emb := mustBackend(t)
	plain, err := simplego.New("ops_sequential")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(17, 18))
	cases := []struct {
		dims, perm []int
	}{
		{[]int{2, 3, 4, 5}, []int{1, 0, 2, 3}}, // NCHW → CNHW: rows copied
		{[]int{2, 3, 4, 5}, []int{0, 2, 3, 1}}, // to channels-last: strided
		{[]int{6, 1, 7}, []int{2, 1, 0}},
		{[]int{64, 48, 33}, []int{2, 0, 1}}, // large enough to split across cores
		{[]int{1, 1}, []int{1, 0}},
	}
	hits := fastHits[backends.OpTypeTranspose].Load()
	for i, c := range cases {
		x := randND(rng, c.dims...)
		fn := func(x *graph.Node) *graph.Node { return graph.TransposeAllDims(x, c.perm...) }
		exactlyEqual(t, fmt.Sprint("transpose ", i), run1(t, emb, fn, x), run1(t, plain, fn, x))
	}
	if fastHits[backends.OpTypeTranspose].Load() == hits {
		t.Fatal("the row-copy transpose never engaged")
	}
}
