package xla

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	_ "unsafe" // for go:linkname

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Faster executors for the ops a UNet step spends its time in on the embedded backend:
//
//   - DotGeneral: SimpleGo's kernels run at 2–3 GFLOP/s on two cores; float32 products in
//     matrix layout go to Sgemm (sgemm.go, 25–50 GFLOP/s), float64 ones to gonum's Dgemm.
//   - Slice (im2col is made of strided slices): SimpleGo copies element by element with
//     index arithmetic; we copy whole rows.
//   - Add, Sub, Mul, Div with broadcasting: see fastbinary.go.
//   - Transpose: see fasttranspose.go.
//   - Convolution: see convexec.go.
//   - Element-wise ops, reductions, BroadcastInDim, Concatenate: fastelementwise.go,
//     fastreduce.go, fastbroadcast.go.
//
// SimpleGo keeps its op table private but reserves a priority for user overrides, so we
// reach it with go:linkname. Each fast executor hands what it does not handle back to
// SimpleGo's own, and acts only on backends made by NewEmbedded: plain SimpleGo backends
// in the same process are untouched. Node parameters are read by reflection (read-only);
// if a GoMLX upgrade changes their layout, the fast path declines and SimpleGo runs (the
// engage tests, which count fastHits, fail, and so does TestLinknameHooksMatchBuiltGoMLX,
// which pins the GoMLX version these were written against).

type nodeExecutor = func(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoSetNodeExecutor github.com/gomlx/gomlx/backends/simplego.setNodeExecutor
func simplegoSetNodeExecutor(op backends.OpType, priority int, exec nodeExecutor)

//go:linkname simplegoExecDotGeneral github.com/gomlx/gomlx/backends/simplego.execDotGeneral
func simplegoExecDotGeneral(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecSlice github.com/gomlx/gomlx/backends/simplego.execSlice
func simplegoExecSlice(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

// priorityUser is SimpleGo's registerPriority for "custom user overrides".
const priorityUser = 100

var (
	// fastBackends are the SimpleGo backends inside Embedded backends.
	fastBackends sync.Map // *simplego.Backend → struct{}
	// fastHits counts the ops the fast executors handled, per op type (for tests).
	fastHits [backends.OpTypeLast]atomic.Int64
	gemm     = gonum.Implementation{}
)

func init() {
	installFast(backends.OpTypeDotGeneral, fastDotGeneral, simplegoExecDotGeneral)
	installFast(backends.OpTypeSlice, fastSlice, simplegoExecSlice)
	installFast(backends.OpTypeTranspose, fastTranspose, simplegoExecTranspose)
	// Add, Sub, Mul, Div (fastBinary's broadcasting included): fastelementwise.go.
}

// installFast puts fast in front of SimpleGo's executor orig for op: on backends made by
// NewEmbedded it runs first, and orig runs whenever fast returns nil ("not handled").
func installFast(op backends.OpType, fast func(*simplego.Backend, *simplego.Node, []*simplego.Buffer) *simplego.Buffer, orig nodeExecutor) {
	installOwned(op, func(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, _ []bool) *simplego.Buffer {
		return fast(b, n, in)
	}, orig)
}

// operandLayout is how a DotGeneral operand maps onto matrices: [batch..., outer...,
// contracting..., inner...] with the contracting axes one consecutive block. Per index of
// the outer axes the operand is one matrix: [cross, contracting] when inner is empty
// (then outer is the cross block itself and there is one matrix), [contracting, inner]
// otherwise.
type operandLayout struct {
	outer, inner int  // sizes of the cross axes before and after the contracting block
	contractLast bool // no inner axes: the matrix is [outer, contracting]
}

func layoutOf(dims, batch, contracting []int) (operandLayout, bool) {
	for i, a := range batch {
		if a != i {
			return operandLayout{}, false
		}
	}
	nb := len(batch)
	start := nb
	if len(contracting) > 0 {
		start = contracting[0]
	}
	for i, a := range contracting {
		if a != start+i || a < nb {
			return operandLayout{}, false
		}
	}
	size := func(ds []int) int {
		n := 1
		for _, d := range ds {
			n *= d
		}
		return n
	}
	l := operandLayout{outer: size(dims[nb:start]), inner: size(dims[start+len(contracting):])}
	l.contractLast = start+len(contracting) == len(dims)
	return l, true
}

// matrices says how many matrices the operand is per batch element and each one's cross
// size.
func (l operandLayout) matrices() (count, cross int) {
	if l.contractLast {
		return 1, l.outer
	}
	return l.outer, l.inner
}

// fastDotGeneral runs a float32/float64 DotGeneral whose operands map onto matrices
// (operandLayout) on Sgemm or gonum's Dgemm; nil means "not handled".
func fastDotGeneral(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *simplego.Buffer {
	ls, err1 := backend.BufferShape(inputs[0])
	rs, err2 := backend.BufferShape(inputs[1])
	ax, ok := nodeInts(node, "lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes")
	if err1 != nil || err2 != nil || !ok || (ls.DType != dtypes.Float32 && ls.DType != dtypes.Float64) {
		return nil
	}
	axes := dotAxes{ax[0], ax[1], ax[2], ax[3]}
	ll, ok1 := layoutOf(ls.Dimensions, axes.lhsBatch, axes.lhsContracting)
	rl, ok2 := layoutOf(rs.Dimensions, axes.rhsBatch, axes.rhsContracting)
	if !ok1 || !ok2 {
		return nil
	}
	nb := len(axes.lhsBatch)
	batchDims := ls.Dimensions[:nb]
	B := 1
	for _, d := range batchDims {
		B *= d
	}
	K := 1
	for _, a := range axes.lhsContracting {
		K *= ls.Dimensions[a]
	}
	crossDims := func(s shapes.Shape, batch, contracting []int) []int {
		var out []int
		for a, d := range s.Dimensions {
			if !slices.Contains(batch, a) && !slices.Contains(contracting, a) {
				out = append(out, d)
			}
		}
		return out
	}
	outShape := shapes.Make(ls.DType, slices.Concat(batchDims,
		crossDims(ls, axes.lhsBatch, axes.lhsContracting), crossDims(rs, axes.rhsBatch, axes.rhsContracting))...)
	out := backend.NewBuffer(outShape)
	if out == nil {
		return nil
	}
	lf, _ := backend.BufferData(inputs[0])
	rf, _ := backend.BufferData(inputs[1])
	of, _ := backend.BufferData(out)
	lCount, M := ll.matrices()
	rCount, N := rl.matrices()
	if B*lCount*M*rCount*N == 0 || K == 0 {
		return out.Zeros()
	}
	// lhs matrix is [M, K] (lda K), or [K, M] transposed; rhs is [K, N] (ldb N), or [N, K]
	// transposed. Output per batch element is [lCount, M, rCount, N]: the (lo, ro) product
	// is a block with row stride rCount·N.
	tA, lda := blas.NoTrans, K
	if !ll.contractLast {
		tA, lda = blas.Trans, M
	}
	tB, ldb := blas.NoTrans, N
	if rl.contractLast {
		tB, ldb = blas.Trans, K
	}
	ldc := rCount * N
	lSize, rSize, oSize := lCount*M*K, rCount*K*N, lCount*M*rCount*N
	one := func(job int) {
		i, lo, ro := job/(lCount*rCount), job/rCount%lCount, job%rCount
		la, rb, oc := i*lSize+lo*M*K, i*rSize+ro*K*N, i*oSize+lo*M*ldc+ro*N
		switch l := lf.(type) {
		case []float32:
			Sgemm(tA, tB, M, N, K, l[la:la+M*K], lda, rf.([]float32)[rb:rb+K*N], ldb, of.([]float32)[oc:oc+(M-1)*ldc+N], ldc)
		case []float64:
			gemm.Dgemm(tA, tB, M, N, K, 1, l[la:la+M*K], lda, rf.([]float64)[rb:rb+K*N], ldb, 0, of.([]float64)[oc:oc+(M-1)*ldc+N], ldc)
		}
	}
	jobs := B * lCount * rCount
	// Sgemm and Dgemm parallelise one large product themselves; many small ones go one per core.
	workers := min(jobs, runtime.GOMAXPROCS(0))
	if jobs == 1 || M*N*K >= 64*64*64 || workers <= 1 {
		for j := range jobs {
			one(j)
		}
		return out
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < jobs; j += workers {
				one(j)
			}
		}()
	}
	wg.Wait()
	return out
}

// dotAxes are a DotGeneral's axes.
type dotAxes struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

// fastSlice copies a float32/float64 slice row by row (copy() when the last axis has
// stride 1); nil means "not handled".
func fastSlice(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *simplego.Buffer {
	in, err := backend.BufferShape(inputs[0])
	p, ok := nodeInts(node, "starts", "limits", "strides")
	if err != nil || !ok || in.Rank() == 0 || len(p[0]) != in.Rank() || len(p[2]) != in.Rank() {
		return nil
	}
	starts, limits, steps := p[0], p[1], p[2]
	dims := make([]int, in.Rank())
	for i := range dims {
		if steps[i] <= 0 {
			return nil
		}
		dims[i] = max(0, (limits[i]-starts[i]+steps[i]-1)/steps[i])
	}
	out := backend.NewBuffer(shapes.Make(in.DType, dims...))
	if out == nil {
		return nil
	}
	src, _ := backend.BufferData(inputs[0])
	dst, _ := backend.BufferData(out)
	switch s := src.(type) {
	case []float32:
		sliceRows(s, dst.([]float32), in.Dimensions, starts, steps, dims)
	case []float64:
		sliceRows(s, dst.([]float64), in.Dimensions, starts, steps, dims)
	default:
		backend.BufferFinalize(out)
		return nil
	}
	return out
}

func sliceRows[T float32 | float64](src, dst []T, inDims, starts, steps, outDims []int) {
	rank := len(inDims)
	if len(dst) == 0 {
		return
	}
	strides := make([]int, rank) // flat strides of the input
	strides[rank-1] = 1
	for i := rank - 2; i >= 0; i-- {
		strides[i] = strides[i+1] * inDims[i+1]
	}
	rowLen, step := outDims[rank-1], steps[rank-1]
	idx := make([]int, rank-1) // position over the outer output axes
	for o := 0; o < len(dst); o += rowLen {
		base := starts[rank-1]
		for i := range idx {
			base += (starts[i] + idx[i]*steps[i]) * strides[i]
		}
		row := dst[o : o+rowLen]
		if step == 1 {
			copy(row, src[base:base+rowLen])
		} else {
			for j := range row {
				row[j] = src[base+j*step]
			}
		}
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outDims[i] {
				break
			}
			idx[i] = 0
		}
	}
}
