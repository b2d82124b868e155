package xla

import (
	"math"
	"slices"
	_ "unsafe" // for go:linkname

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Element-wise ops (SiLU's Logistic, the Mul/Add/Div of normalisation and its gradient)
// run single-threaded in SimpleGo. These executors run the same per-element formula as
// SimpleGo's (so results are bit-identical), split across cores for large tensors, and
// write into an operand's buffer when SimpleGo says it is that operand's last use, as
// SimpleGo itself does, so peak memory does not grow.

//go:linkname simplegoExecMax github.com/gomlx/gomlx/backends/simplego.execMax
func simplegoExecMax(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecMin github.com/gomlx/gomlx/backends/simplego.execMin
func simplegoExecMin(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecLogistic github.com/gomlx/gomlx/backends/simplego.execLogistic
func simplegoExecLogistic(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecExp github.com/gomlx/gomlx/backends/simplego.execExp
func simplegoExecExp(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecNeg github.com/gomlx/gomlx/backends/simplego.execNeg
func simplegoExecNeg(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecSqrt github.com/gomlx/gomlx/backends/simplego.execSqrt
func simplegoExecSqrt(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecRsqrt github.com/gomlx/gomlx/backends/simplego.execRsqrt
func simplegoExecRsqrt(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecTanh github.com/gomlx/gomlx/backends/simplego.execTanh
func simplegoExecTanh(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecLog github.com/gomlx/gomlx/backends/simplego.execLog
func simplegoExecLog(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecAbs github.com/gomlx/gomlx/backends/simplego.execAbs
func simplegoExecAbs(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

// ownedExecutor is a fast executor that may take over an input buffer (see takeOwned);
// nil means "not handled".
type ownedExecutor = func(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, owned []bool) *simplego.Buffer

func init() {
	binaries := []struct {
		op   backends.OpType
		bin  binaryOp
		orig nodeExecutor
	}{
		{backends.OpTypeAdd, opAdd, simplegoExecAdd},
		{backends.OpTypeSub, opSub, simplegoExecSub},
		{backends.OpTypeMul, opMul, simplegoExecMul},
		{backends.OpTypeDiv, opDiv, simplegoExecDiv},
		{backends.OpTypeMax, opMax, simplegoExecMax},
		{backends.OpTypeMin, opMin, simplegoExecMin},
	}
	for _, b := range binaries {
		installOwned(b.op, fastElementwiseBinary(b.bin), b.orig)
	}
	unaries := []struct {
		op   backends.OpType
		un   unaryOp
		orig nodeExecutor
	}{
		{backends.OpTypeLogistic, opLogistic, simplegoExecLogistic},
		{backends.OpTypeExp, opExp, simplegoExecExp},
		{backends.OpTypeNeg, opNeg, simplegoExecNeg},
		{backends.OpTypeSqrt, opSqrt, simplegoExecSqrt},
		{backends.OpTypeRsqrt, opRsqrt, simplegoExecRsqrt},
		{backends.OpTypeTanh, opTanh, simplegoExecTanh},
		{backends.OpTypeLog, opLog, simplegoExecLog},
		{backends.OpTypeAbs, opAbs, simplegoExecAbs},
	}
	for _, u := range unaries {
		installOwned(u.op, fastUnary(u.un), u.orig)
	}
}

// installOwned is installFast for executors that need SimpleGo's ownership flags (to
// write the output into an input's buffer).
func installOwned(op backends.OpType, fast ownedExecutor, orig nodeExecutor) {
	simplegoSetNodeExecutor(op, priorityUser, func(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, owned []bool) (*simplego.Buffer, error) {
		if _, mine := fastBackends.Load(b); mine {
			if out := fast(b, n, in, owned); out != nil {
				fastHits[op].Add(1)
				return out, nil
			}
		}
		return orig(b, n, in, owned)
	})
}

// takeOwned returns input i's buffer, to be written as the output, when SimpleGo owns it
// and this is its last use (clearing in[i] tells SimpleGo we took it, as its own
// executors do); nil otherwise.
func takeOwned(in []*simplego.Buffer, owned []bool, i int) *simplego.Buffer {
	if i >= len(owned) || !owned[i] {
		return nil
	}
	buf := in[i]
	in[i] = nil
	return buf
}

// Binary ops beyond fastbinary.go's four.
const (
	opMax binaryOp = iota + opDiv + 1
	opMin
)

// fastElementwiseBinary handles float32/float64 operands of the same shape, or one
// operand of size 1 (rank 0 included) with the other of the output's shape; other
// broadcasts go to fastBinary (Add, Sub, Mul, Div only).
func fastElementwiseBinary(op binaryOp) ownedExecutor {
	return func(b *simplego.Backend, n *simplego.Node, in []*simplego.Buffer, owned []bool) *simplego.Buffer {
		ls, err1 := b.BufferShape(in[0])
		rs, err2 := b.BufferShape(in[1])
		if err1 != nil || err2 != nil || ls.DType != rs.DType || !isFloat(ls) {
			return nil
		}
		lScalar, rScalar := ls.Size() == 1, rs.Size() == 1
		var outShape shapes.Shape
		switch {
		case ls.Equal(rs):
			outShape = ls
		case rScalar && ls.Rank() >= rs.Rank():
			outShape = ls
		case lScalar && rs.Rank() >= ls.Rank():
			outShape = rs
		case op <= opDiv:
			return fastBinary(op)(b, n, in)
		default:
			return nil
		}
		if !ls.Equal(rs) { // a single-element operand: check we agree on the output shape
			if dims, ok := nodeOutputDims(n); !ok || !slices.Equal(dims, outShape.Dimensions) {
				return nil
			}
		}
		lf, _ := b.BufferData(in[0])
		rf, _ := b.BufferData(in[1])
		// SimpleGo reuses the rhs first (binaryOperandsAndOutput); reading before writing
		// the same index keeps in-place correct.
		var out *simplego.Buffer
		if rs.Equal(outShape) {
			out = takeOwned(in, owned, 1)
		}
		if out == nil && ls.Equal(outShape) {
			out = takeOwned(in, owned, 0)
		}
		if out == nil {
			out = b.NewBuffer(outShape)
		}
		if out == nil {
			return nil
		}
		of, _ := b.BufferData(out)
		switch l := lf.(type) {
		case []float32:
			binaryElementwise(op, l, rf.([]float32), of.([]float32))
		case []float64:
			binaryElementwise(op, l, rf.([]float64), of.([]float64))
		}
		return out
	}
}

func isFloat(s shapes.Shape) bool {
	return s.DType == dtypes.Float32 || s.DType == dtypes.Float64
}

// binaryElementwise computes out = l op r, where l or r may have a single element.
func binaryElementwise[T float32 | float64](op binaryOp, l, r, out []T) {
	splitAcrossCores(len(out), len(out), func(from, to int) {
		o := out[from:to]
		switch {
		case len(l) == len(out) && len(r) == len(out):
			binaryVV(op, o, l[from:to], r[from:to])
		case len(l) == len(out):
			binaryVS(op, o, l[from:to], r[0])
		default:
			binarySV(op, o, l[0], r[from:to])
		}
	})
}

func binaryVV[T float32 | float64](op binaryOp, o, a, b []T) {
	a, b = a[:len(o)], b[:len(o)]
	switch op {
	case opMax:
		for j := range o {
			o[j] = max(a[j], b[j])
		}
	case opMin:
		for j := range o {
			o[j] = min(a[j], b[j])
		}
	default:
		applyVV(op, o, a, b)
	}
}

func binaryVS[T float32 | float64](op binaryOp, o, a []T, b T) {
	a = a[:len(o)]
	switch op {
	case opMax:
		for j := range o {
			o[j] = max(a[j], b)
		}
	case opMin:
		for j := range o {
			o[j] = min(a[j], b)
		}
	default:
		applyVS(op, o, a, b)
	}
}

func binarySV[T float32 | float64](op binaryOp, o []T, a T, b []T) {
	b = b[:len(o)]
	switch op {
	case opMax:
		for j := range o {
			o[j] = max(a, b[j])
		}
	case opMin:
		for j := range o {
			o[j] = min(a, b[j])
		}
	default:
		applySV(op, o, a, b)
	}
}

type unaryOp int

const (
	opLogistic unaryOp = iota
	opExp
	opNeg
	opSqrt
	opRsqrt
	opTanh
	opLog
	opAbs
)

// unaryCost is each op's time per element relative to an addition (measured roughly:
// math.Exp takes ~8 ns, an addition under 1), so that costly ops split across cores from
// smaller sizes.
var unaryCost = [...]int{opLogistic: 16, opExp: 16, opNeg: 1, opSqrt: 4, opRsqrt: 4, opTanh: 16, opLog: 16, opAbs: 1}

// fastUnary runs a float32/float64 unary op, in place when the input is owned.
func fastUnary(op unaryOp) ownedExecutor {
	return func(b *simplego.Backend, _ *simplego.Node, in []*simplego.Buffer, owned []bool) *simplego.Buffer {
		s, err := b.BufferShape(in[0])
		if err != nil || !isFloat(s) {
			return nil
		}
		src, _ := b.BufferData(in[0])
		out := takeOwned(in, owned, 0)
		if out == nil {
			out = b.NewBuffer(s)
		}
		if out == nil {
			return nil
		}
		dst, _ := b.BufferData(out)
		switch x := src.(type) {
		case []float32:
			unaryElementwise(op, x, dst.([]float32))
		case []float64:
			unaryElementwise(op, x, dst.([]float64))
		}
		return out
	}
}

func unaryElementwise[T float32 | float64](op unaryOp, in, out []T) {
	splitAcrossCores(len(out), len(out)*unaryCost[op], func(from, to int) {
		unaryLoop(op, in[from:to], out[from:to])
	})
}

// unaryLoop uses exactly the expressions of SimpleGo's exec*Generic (exec_unary.go), so
// the results are bit-identical; except float32 Logistic on AVX2, which evaluates the same
// float64 expression with its own exp (logistic_amd64.s): 0 of 4 million results differed
// from SimpleGo's in TestSIMDLogisticMatchesSimpleGoExpression, and at most by one ulp.
func unaryLoop[T float32 | float64](op unaryOp, in, out []T) {
	out = out[:len(in)]
	switch op {
	case opLogistic:
		done := simdLogistic(in, out)
		in, out = in[done:], out[done:]
		for i, x := range in {
			if x >= 0 {
				out[i] = T(1.0 / (1.0 + math.Exp(-float64(x))))
			} else {
				e := math.Exp(float64(x))
				out[i] = T(e / (1.0 + e))
			}
		}
	case opExp:
		for i, x := range in {
			out[i] = T(math.Exp(float64(x)))
		}
	case opNeg:
		for i, x := range in {
			out[i] = -x
		}
	case opSqrt:
		for i, x := range in {
			out[i] = T(math.Sqrt(float64(x)))
		}
	case opRsqrt:
		for i, x := range in {
			out[i] = T(1.0 / math.Sqrt(float64(x)))
		}
	case opTanh:
		for i, x := range in {
			out[i] = T(math.Tanh(float64(x)))
		}
	case opLog:
		for i, x := range in {
			out[i] = T(math.Log(float64(x)))
		}
	case opAbs:
		for i, x := range in {
			if x < 0 {
				out[i] = -x
			} else {
				out[i] = x
			}
		}
	}
}
