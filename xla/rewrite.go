package xla

import (
	"slices"

	"github.com/gomlx/gomlx/backends"
)

// minContractionSize is the size of a broadcast product below which ReduceSum(Mul(…)) is
// left alone: small ones are cheaper as they are than as a transposed matrix product.
const minContractionSize = 1 << 12

// Mul records broadcasting products, so that ReduceSum can turn them into DotGeneral.
func (b *embeddedBuilder) Mul(lhs, rhs backends.Op) (backends.Op, error) {
	out, err := b.Builder.Mul(lhs, rhs)
	if err != nil {
		return nil, err
	}
	ls, err1 := b.OpShape(lhs)
	rs, err2 := b.OpShape(rhs)
	if err1 == nil && err2 == nil && ls.Rank() == rs.Rank() && ls.Rank() > 0 && !slices.Equal(ls.Dimensions, rs.Dimensions) {
		if b.products == nil {
			b.products = map[backends.Op][2]backends.Op{}
		}
		b.products[out] = [2]backends.Op{lhs, rhs}
	}
	return out, nil
}

// ReduceSum rewrites ReduceSum(Mul(a, b)) with broadcasting — how GoMLX writes the
// gradient of a matrix product (e.g. attention's) — into one DotGeneral, which never
// materialises the M×N×K product. The Mul node then has no user and is not executed.
func (b *embeddedBuilder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	if pair, ok := b.products[x]; ok {
		if out, ok, err := b.contract(x, pair[0], pair[1], axes); ok || err != nil {
			return out, err
		}
	}
	return b.Builder.ReduceSum(x, axes...)
}

// contract computes ReduceSum(lhs*rhs, axes) as a DotGeneral when that is worth it.
func (b *embeddedBuilder) contract(product, lhs, rhs backends.Op, axes []int) (backends.Op, bool, error) {
	e := &emitter{b: b.Builder}
	ps, ls, rs := e.shape(product), e.shape(lhs), e.shape(rhs)
	if e.err != nil || !ps.DType.IsFloat() || ps.Size() < minContractionSize || len(axes) == 0 {
		return nil, false, nil
	}
	reduced := make([]bool, ps.Rank())
	for _, a := range axes {
		if a < 0 || a >= ps.Rank() {
			return nil, false, nil // let SimpleGo report it
		}
		reduced[a] = true
	}
	// Classify every axis of the product.
	var batch, lhsCross, rhsCross, contracting, lhsOnlySum, rhsOnlySum []int
	for a := range ps.Rank() {
		l, r := ls.Dimensions[a], rs.Dimensions[a]
		switch {
		case l == r && reduced[a]:
			contracting = append(contracting, a)
		case l == r:
			batch = append(batch, a)
		case r == 1 && reduced[a]:
			lhsOnlySum = append(lhsOnlySum, a)
		case r == 1:
			lhsCross = append(lhsCross, a)
		case l == 1 && reduced[a]:
			rhsOnlySum = append(rhsOnlySum, a)
		default:
			rhsCross = append(rhsCross, a)
		}
	}
	if len(contracting) == 0 {
		return nil, false, nil
	}
	dimsOf := func(axes []int) (dims []int, size int) {
		size = 1
		for _, a := range axes {
			dims = append(dims, ps.Dimensions[a])
			size *= ps.Dimensions[a]
		}
		return dims, size
	}
	// Sums over axes only one side has are done on that side first (they are size 1 on
	// the other). Axes that are size 1 on a side and cross on the other go to the end
	// of that side's transpose, where the reshape drops them.
	side := func(x backends.Op, only []int, cross []int, contractFirst bool, other []int, otherOnly []int) backends.Op {
		perm := slices.Concat(batch, cross, contracting)
		if contractFirst {
			perm = slices.Concat(batch, contracting, cross)
		}
		perm = slices.Concat(perm, other, otherOnly, only)
		x = e.transpose(x, perm...)
		if len(only) > 0 {
			n := len(perm)
			x = e.do(func() (backends.Op, error) {
				rest := make([]int, len(only))
				for i := range rest {
					rest[i] = n - len(only) + i
				}
				return b.Builder.ReduceSum(x, rest...)
			})
		}
		return x
	}
	_, nb := dimsOf(batch)
	_, nk := dimsOf(contracting)
	_, nm := dimsOf(lhsCross)
	_, nn := dimsOf(rhsCross)
	l := e.reshape(side(lhs, lhsOnlySum, lhsCross, false, rhsCross, rhsOnlySum), nb, nm, nk)
	r := e.reshape(side(rhs, rhsOnlySum, rhsCross, true, lhsCross, lhsOnlySum), nb, nk, nn)
	out := e.do(func() (backends.Op, error) { return b.Builder.DotGeneral(l, []int{2}, []int{0}, r, []int{1}, []int{0}) })
	// [batch, lhsCross, rhsCross] → the kept axes in their original order.
	bd, _ := dimsOf(batch)
	ld, _ := dimsOf(lhsCross)
	rd, _ := dimsOf(rhsCross)
	out = e.reshape(out, slices.Concat(bd, ld, rd)...)
	order := slices.Concat(batch, lhsCross, rhsCross)
	kept := slices.Clone(order)
	slices.Sort(kept)
	perm := make([]int, len(kept))
	for i, a := range kept {
		perm[i] = slices.Index(order, a)
	}
	out = e.transpose(out, perm...)
	if e.err != nil {
		return nil, false, e.err
	}
	return out, true, nil
}

// maxWindowSlices bounds the window size ReduceWindow turns into a sum of slices.
const maxWindowSlices = 16

// ReduceWindow computes small sum/max/min windows without dilations as an element-wise
// reduction of strided slices of the (padded) input, or, when windows tile the input
// exactly, as a reshape and a ReduceSum/Max/Min. SimpleGo's own loop is kept otherwise.
func (b *embeddedBuilder) ReduceWindow(x backends.Op, reduction backends.ReduceOpType,
	window, strides, baseDilations, windowDilations []int, paddings [][2]int) (backends.Op, error) {
	e := &emitter{b: b.Builder}
	s := e.shape(x)
	fallback := func() (backends.Op, error) {
		return b.Builder.ReduceWindow(x, reduction, window, strides, baseDilations, windowDilations, paddings)
	}
	if e.err != nil || len(window) != s.Rank() || !allOnesOrEmpty(baseDilations) || !allOnesOrEmpty(windowDilations) {
		return fallback()
	}
	if strides == nil {
		strides = window
	}
	padded := slices.ContainsFunc(paddings, func(p [2]int) bool { return p != [2]int{} })
	var combine func(a, c backends.Op) (backends.Op, error)
	var reduce func(x backends.Op, axes ...int) (backends.Op, error)
	switch reduction {
	case backends.ReduceOpSum:
		combine, reduce = b.Builder.Add, b.Builder.ReduceSum
	case backends.ReduceOpMax:
		combine, reduce = b.Builder.Max, b.Builder.ReduceMax
	case backends.ReduceOpMin:
		combine, reduce = b.Builder.Min, b.Builder.ReduceMin
	default:
		return fallback()
	}
	n := 1
	tiles := !padded
	for a, w := range window {
		n *= w
		tiles = tiles && strides[a] == w && s.Dimensions[a]%w == 0
	}
	if tiles {
		var split, sumAxes []int
		for a, w := range window {
			split = append(split, s.Dimensions[a]/w, w)
			sumAxes = append(sumAxes, 2*a+1)
		}
		r := e.reshape(x, split...)
		return e.do(func() (backends.Op, error) { return reduce(r, sumAxes...) }), e.err
	}
	if n > maxWindowSlices || (padded && reduction != backends.ReduceOpSum) {
		return fallback()
	}
	if padded {
		cfg := make([]backends.PadAxis, s.Rank())
		for a := range cfg {
			if a < len(paddings) {
				cfg[a] = backends.PadAxis{Start: paddings[a][0], End: paddings[a][1]}
			}
		}
		zero := e.do(func() (backends.Op, error) { return b.Builder.Constant(zeroOf(s.DType)) })
		x = e.do(func() (backends.Op, error) { return b.Pad(x, zero, cfg...) })
		s = e.shape(x)
	}
	var acc backends.Op
	for off := range n {
		o := unflatten(off, window)
		starts, limits := make([]int, s.Rank()), make([]int, s.Rank())
		for a := range window {
			outDim := (s.Dimensions[a]-window[a])/strides[a] + 1
			starts[a] = o[a]
			limits[a] = o[a] + (outDim-1)*strides[a] + 1
		}
		piece := e.slice(x, starts, limits, strides)
		if acc == nil {
			acc = piece
		} else {
			acc = e.do(func() (backends.Op, error) { return combine(acc, piece) })
		}
	}
	return acc, e.err
}

func allOnesOrEmpty(v []int) bool {
	return !slices.ContainsFunc(v, func(x int) bool { return x != 1 && x != 0 })
}
