package xla

import (
	"reflect"
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

// Faster executors for the two ops that dominate a UNet step on the embedded backend:
//
//   - DotGeneral: SimpleGo's kernels run at 2–3 GFLOP/s on two cores; float32 products in
//     matrix layout go to Sgemm (sgemm.go, 25–50 GFLOP/s), float64 ones to gonum's Dgemm.
//   - Slice (im2col is made of strided slices): SimpleGo copies element by element with
//     index arithmetic; we copy whole rows.
//   - Add, Sub, Mul, Div with broadcasting: see fastbinary.go.
//   - Transpose: see fasttranspose.go.
//
// SimpleGo keeps its op table private but reserves a priority for user overrides, so we
// reach it with go:linkname. Each fast executor hands what it does not handle back to
// SimpleGo's own, and acts only on backends made by NewEmbedded: plain SimpleGo backends
// in the same process are untouched. Node parameters are read by reflection (read-only);
// if a GoMLX upgrade changes their layout, the fast path declines and SimpleGo runs
// (TestFastExecutorsEngage fails, so we notice).

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
	install := func(op backends.OpType, fast func(*simplego.Backend, *simplego.Node, []*simplego.Buffer) *simplego.Buffer, orig nodeExecutor) {
		simplegoSetNodeExecutor(op, priorityUser, func(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
			if _, mine := fastBackends.Load(b); mine {
				if out := fast(b, n, in); out != nil {
					fastHits[op].Add(1)
					return out, nil
				}
			}
			return orig(b, n, in, owned)
		})
	}
	install(backends.OpTypeDotGeneral, fastDotGeneral, simplegoExecDotGeneral)
	install(backends.OpTypeSlice, fastSlice, simplegoExecSlice)
	install(backends.OpTypeTranspose, fastTranspose, simplegoExecTranspose)
	install(backends.OpTypeAdd, fastBinary(opAdd), simplegoExecAdd)
	install(backends.OpTypeSub, fastBinary(opSub), simplegoExecSub)
	install(backends.OpTypeMul, fastBinary(opMul), simplegoExecMul)
	install(backends.OpTypeDiv, fastBinary(opDiv), simplegoExecDiv)
}

// nodeInts reads the []int fields of a SimpleGo node's private parameters by reflection
// (read-only access to unexported fields); ok is false if any is missing.
func nodeInts(node *simplego.Node, names ...string) (out [][]int, ok bool) {
	data := reflect.ValueOf(node).Elem().FieldByName("data")
	if !data.IsValid() || data.Kind() != reflect.Interface || data.IsNil() {
		return nil, false
	}
	p := data.Elem()
	if p.Kind() == reflect.Pointer {
		p = p.Elem()
	}
	if p.Kind() != reflect.Struct {
		return nil, false
	}
	for _, name := range names {
		v := p.FieldByName(name)
		if !v.IsValid() || v.Kind() != reflect.Slice || v.Type().Elem().Kind() != reflect.Int {
			return nil, false
		}
		ints := make([]int, v.Len())
		for i := range ints {
			ints[i] = int(v.Index(i).Int())
		}
		out = append(out, ints)
	}
	return out, true
}

// matrixLayout checks that an operand is [batch..., then cross and contracting axes as
// two consecutive blocks] and says whether the contracting block comes first.
func matrixLayout(rank int, batch, contracting []int) (contractingFirst, ok bool) {
	for i, a := range batch {
		if a != i {
			return false, false
		}
	}
	nb, nc := len(batch), len(contracting)
	consecutiveFrom := func(start int) bool {
		for i, a := range contracting {
			if a != start+i {
				return false
			}
		}
		return true
	}
	switch {
	case consecutiveFrom(rank - nc): // [batch, cross, contracting]
		return false, true
	case consecutiveFrom(nb): // [batch, contracting, cross]
		return true, true
	}
	return false, false
}

// fastDotGeneral runs a float32/float64 DotGeneral whose operands are in matrix layout on
// Sgemm or gonum's Dgemm; nil means "not handled".
func fastDotGeneral(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *simplego.Buffer {
	ls, err1 := backend.BufferShape(inputs[0])
	rs, err2 := backend.BufferShape(inputs[1])
	ax, ok := nodeInts(node, "lhsContractingAxes", "lhsBatchAxes", "rhsContractingAxes", "rhsBatchAxes")
	if err1 != nil || err2 != nil || !ok || (ls.DType != dtypes.Float32 && ls.DType != dtypes.Float64) {
		return nil
	}
	axes := dotAxes{ax[0], ax[1], ax[2], ax[3]}
	lhsContractFirst, ok1 := matrixLayout(ls.Rank(), axes.lhsBatch, axes.lhsContracting)
	rhsContractFirst, ok2 := matrixLayout(rs.Rank(), axes.rhsBatch, axes.rhsContracting)
	if !ok1 || !ok2 {
		return nil
	}
	nb, nc := len(axes.lhsBatch), len(axes.lhsContracting)
	size := func(dims []int) int {
		n := 1
		for _, d := range dims {
			n *= d
		}
		return n
	}
	batchDims := ls.Dimensions[:nb]
	crossOf := func(s shapes.Shape, contractFirst bool) []int {
		if contractFirst {
			return s.Dimensions[nb+nc:]
		}
		return s.Dimensions[nb : s.Rank()-nc]
	}
	lhsCross, rhsCross := crossOf(ls, lhsContractFirst), crossOf(rs, rhsContractFirst)
	B, M, N, K := size(batchDims), size(lhsCross), size(rhsCross), size(ls.Dimensions)/max(size(batchDims)*size(lhsCross), 1)
	outShape := shapes.Make(ls.DType, slices.Concat(batchDims, lhsCross, rhsCross)...)
	out := backend.NewBuffer(outShape)
	if out == nil {
		return nil
	}
	lf, _ := backend.BufferData(inputs[0])
	rf, _ := backend.BufferData(inputs[1])
	of, _ := backend.BufferData(out)
	if B*M*N == 0 || K == 0 {
		return out.Zeros()
	}
	// lhs is [M, K] (lda K), or [K, M] transposed; rhs is [K, N] (ldb N), or [N, K] transposed.
	tA, lda := blas.NoTrans, K
	if lhsContractFirst {
		tA, lda = blas.Trans, M
	}
	tB, ldb := blas.NoTrans, N
	if !rhsContractFirst {
		tB, ldb = blas.Trans, K
	}
	one := func(i int) {
		switch l := lf.(type) {
		case []float32:
			Sgemm(tA, tB, M, N, K, l[i*M*K:(i+1)*M*K], lda, rf.([]float32)[i*K*N:(i+1)*K*N], ldb, of.([]float32)[i*M*N:(i+1)*M*N], N)
		case []float64:
			gemm.Dgemm(tA, tB, M, N, K, 1, l[i*M*K:(i+1)*M*K], lda, rf.([]float64)[i*K*N:(i+1)*K*N], ldb, 0, of.([]float64)[i*M*N:(i+1)*M*N], N)
		}
	}
	// Sgemm and Dgemm parallelise one large product themselves; many small ones go one per core.
	workers := min(B, runtime.GOMAXPROCS(0))
	if B == 1 || M*N*K >= 64*64*64 || workers <= 1 {
		for i := range B {
			one(i)
		}
		return out
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < B; i += workers {
				one(i)
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
