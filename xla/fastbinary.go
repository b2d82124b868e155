package xla

import (
	"runtime"
	"sync"
	_ "unsafe" // for go:linkname

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Broadcasting arithmetic (GroupNorm's x − mean, per-channel scale and shift, …) walks an
// index iterator per element in SimpleGo. fastBinary merges axes that broadcast alike and
// runs each output row as one tight loop, split across cores for large outputs.

//go:linkname simplegoExecAdd github.com/gomlx/gomlx/backends/simplego.execAdd
func simplegoExecAdd(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecSub github.com/gomlx/gomlx/backends/simplego.execSub
func simplegoExecSub(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecMul github.com/gomlx/gomlx/backends/simplego.execMul
func simplegoExecMul(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

//go:linkname simplegoExecDiv github.com/gomlx/gomlx/backends/simplego.execDiv
func simplegoExecDiv(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

type binaryOp int

const (
	opAdd binaryOp = iota
	opSub
	opMul
	opDiv
)

// parallelMinSize is the output size from which elementwise work is split across cores.
const parallelMinSize = 1 << 15

// splitAcrossCores runs do over [0, n) in one contiguous range per core when work (the
// number of elements touched) reaches parallelMinSize, else in one call.
func splitAcrossCores(n, work int, do func(from, to int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if work < parallelMinSize || workers < 2 {
		do(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); do(w*n/workers, (w+1)*n/workers) }()
	}
	wg.Wait()
}

func fastBinary(op binaryOp) func(*simplego.Backend, *simplego.Node, []*simplego.Buffer) *simplego.Buffer {
	return func(backend *simplego.Backend, _ *simplego.Node, inputs []*simplego.Buffer) *simplego.Buffer {
		ls, err1 := backend.BufferShape(inputs[0])
		rs, err2 := backend.BufferShape(inputs[1])
		if err1 != nil || err2 != nil || ls.DType != rs.DType || ls.Rank() != rs.Rank() || ls.Rank() == 0 || ls.Equal(rs) {
			return nil // same shapes and rank-0 scalars: SimpleGo's own loops are fine
		}
		plan, ok := planBroadcast(ls.Dimensions, rs.Dimensions)
		if !ok {
			return nil
		}
		out := backend.NewBuffer(shapes.Make(ls.DType, plan.outDims...))
		if out == nil {
			return nil
		}
		lf, _ := backend.BufferData(inputs[0])
		rf, _ := backend.BufferData(inputs[1])
		of, _ := backend.BufferData(out)
		switch l := lf.(type) {
		case []float32:
			broadcastRows(op, plan, l, rf.([]float32), of.([]float32))
		case []float64:
			broadcastRows(op, plan, l, rf.([]float64), of.([]float64))
		default:
			backend.BufferFinalize(out)
			return nil
		}
		return out
	}
}

// broadcastPlan describes a broadcast over merged axes: dims[i] of the output, and each
// operand's flat stride on that axis (0 where it is broadcast).
type broadcastPlan struct {
	outDims          []int // the real output dimensions
	dims, lStr, rStr []int
}

func planBroadcast(l, r []int) (p broadcastPlan, ok bool) {
	type axis struct{ dim, lv, rv int } // lv/rv: 1 if the operand varies on the axis
	var merged []axis
	for i := range l {
		d := max(l[i], r[i])
		if (l[i] != d && l[i] != 1) || (r[i] != d && r[i] != 1) {
			return p, false
		}
		p.outDims = append(p.outDims, d)
		if d == 1 {
			continue
		}
		a := axis{d, b2i(l[i] == d), b2i(r[i] == d)}
		if n := len(merged); n > 0 && merged[n-1].lv == a.lv && merged[n-1].rv == a.rv {
			merged[n-1].dim *= d // same broadcast pattern: one longer axis
			continue
		}
		merged = append(merged, a)
	}
	// Flat strides (row-major over the axes where the operand varies).
	ls, rs := 1, 1
	p.dims = make([]int, len(merged))
	p.lStr = make([]int, len(merged))
	p.rStr = make([]int, len(merged))
	for i := len(merged) - 1; i >= 0; i-- {
		a := merged[i]
		p.dims[i] = a.dim
		p.lStr[i], p.rStr[i] = ls*a.lv, rs*a.rv
		if a.lv == 1 {
			ls *= a.dim
		}
		if a.rv == 1 {
			rs *= a.dim
		}
	}
	return p, len(merged) > 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func broadcastRows[T float32 | float64](op binaryOp, p broadcastPlan, l, r, out []T) {
	last := len(p.dims) - 1
	n := p.dims[last]
	rows := len(out) / n
	doRows := func(from, to int) {
		idx := unflatten(from, p.dims[:last])
		for row := from; row < to; row++ {
			lo, ro := 0, 0
			for i, v := range idx {
				lo += v * p.lStr[i]
				ro += v * p.rStr[i]
			}
			o := out[row*n : (row+1)*n]
			switch {
			case p.lStr[last] != 0 && p.rStr[last] != 0:
				applyVV(op, o, l[lo:lo+n], r[ro:ro+n])
			case p.lStr[last] != 0:
				applyVS(op, o, l[lo:lo+n], r[ro])
			default:
				applySV(op, o, l[lo], r[ro:ro+n])
			}
			for i := len(idx) - 1; i >= 0; i-- {
				if idx[i]++; idx[i] < p.dims[i] {
					break
				}
				idx[i] = 0
			}
		}
	}
	splitAcrossCores(rows, len(out), doRows)
}

// The operands are resliced to len(o) so the loops run without bounds checks.

func applyVV[T float32 | float64](op binaryOp, o, a, b []T) {
	a, b = a[:len(o)], b[:len(o)]
	if simdVV(op, o, a, b) {
		return
	}
	switch op {
	case opAdd:
		for j := range o {
			o[j] = a[j] + b[j]
		}
	case opSub:
		for j := range o {
			o[j] = a[j] - b[j]
		}
	case opMul:
		for j := range o {
			o[j] = a[j] * b[j]
		}
	case opDiv:
		for j := range o {
			o[j] = a[j] / b[j]
		}
	}
}

func applyVS[T float32 | float64](op binaryOp, o, a []T, b T) {
	a = a[:len(o)]
	if simdVS(op, o, a, b) {
		return
	}
	switch op {
	case opAdd:
		for j := range o {
			o[j] = a[j] + b
		}
	case opSub:
		for j := range o {
			o[j] = a[j] - b
		}
	case opMul:
		for j := range o {
			o[j] = a[j] * b
		}
	case opDiv:
		for j := range o {
			o[j] = a[j] / b
		}
	}
}

func applySV[T float32 | float64](op binaryOp, o []T, a T, b []T) {
	b = b[:len(o)]
	if simdSV(op, o, a, b) {
		return
	}
	switch op {
	case opAdd:
		for j := range o {
			o[j] = a + b[j]
		}
	case opSub:
		for j := range o {
			o[j] = a - b[j]
		}
	case opMul:
		for j := range o {
			o[j] = a * b[j]
		}
	case opDiv:
		for j := range o {
			o[j] = a / b[j]
		}
	}
}
