package xla

import (
	"reflect"
	"runtime"
	"sync"
	"weak"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	_ "unsafe" // for go:linkname
)

// A float32 convolution runs as an implicit GEMM: per channel group, output[Cout, (batch,
// position)] = kernel[Cout, (channel, tap)] · patches[(channel, tap), (batch, position)],
// where the patch matrix is never built — the driver's packB (gemm.go) copies each block of
// it straight from the input, row by row, into the micro-kernel's panels, and the kernel's
// results go straight into the output in its own layout. That replaces im2col's strided
// slices, their concatenation and the transposes around them (about half of a UNet step's
// time and most of its memory), and the same code serves every convolution autodiff emits:
// the input gradient (input dilation for strides, swapped kernel axes) and the kernel
// gradient (batch and channel axes exchanged) are just other strides here.
//
// The order of additions per output element is the one im2col + Sgemm had (k = channel-major,
// then tap, in blocks of gemmKC), so results are bit-identical to it.

//go:linkname simplegoExecConvGeneral github.com/gomlx/gomlx/backends/simplego.execConvGeneral
func simplegoExecConvGeneral(*simplego.Backend, *simplego.Node, []*simplego.Buffer, []bool) (*simplego.Buffer, error)

func init() {
	installFast(backends.OpTypeConvGeneral, fastConv, simplegoExecConvGeneral)
}

// convKernel is the micro-kernel convolutions run on: the assembly one, or plain Go.
func convKernel() microKernel {
	if k, ok := sgemmKernel(); ok {
		return k
	}
	return kernelGo
}

// fastConv runs a float32 ConvGeneral without batch groups; nil means "not handled".
func fastConv(backend *simplego.Backend, node *simplego.Node, inputs []*simplego.Buffer) *simplego.Buffer {
	inS, err1 := backend.BufferShape(inputs[0])
	kS, err2 := backend.BufferShape(inputs[1])
	if err1 != nil || err2 != nil || inS.DType != dtypes.Float32 || kS.DType != dtypes.Float32 || inS.Rank() < 3 {
		return nil
	}
	g := geometryOf(node, inS, kS)
	if g == nil {
		return nil
	}
	out := backend.NewBuffer(g.outShape) // not zeroed: the product overwrites every element
	if out == nil {
		return nil
	}
	in, _ := backend.BufferData(inputs[0])
	ker, _ := backend.BufferData(inputs[1])
	dst, _ := backend.BufferData(out)
	g.run(in.([]float32), ker.([]float32), dst.([]float32))
	return out
}

// kernelFlipsOf holds, for convolution nodes whose kernel the builder un-reversed
// (conv.go), which spatial axes the kernel is to be read backwards along.
var kernelFlipsOf sync.Map // weak.Pointer[simplego.Node] → []bool

func setKernelFlips(node *simplego.Node, flips []bool) {
	key := weak.Make(node)
	kernelFlipsOf.Store(key, flips)
	runtime.AddCleanup(node, func(k weak.Pointer[simplego.Node]) { kernelFlipsOf.Delete(k) }, key)
}

// convGeometries caches each convolution node's geometry (its shapes and parameters are
// fixed): a sampler runs the same node hundreds of times. Entries go when the node is
// collected.
var convGeometries sync.Map // weak.Pointer[simplego.Node] → *convGeometry

// geometryOf returns the node's geometry, nil for a convolution fastConv does not run
// (batch groups, parameters it cannot read).
func geometryOf(node *simplego.Node, inS, kS shapes.Shape) *convGeometry {
	key := weak.Make(node)
	if g, ok := convGeometries.Load(key); ok {
		return g.(*convGeometry)
	}
	p, ok := convNodeParams(node)
	if !ok || p.batchGroups != 1 {
		return nil
	}
	outS, err := shapeinference.ConvGeneralOp(inS, kS, p.axes, p.strides, p.paddings,
		p.inputDilations, p.kernelDilations, p.channelGroups, p.batchGroups)
	if err != nil {
		return nil
	}
	var flips []bool
	if f, ok := kernelFlipsOf.Load(key); ok {
		flips = f.([]bool)
	}
	g := newConvGeometry(p, flips, inS.Dimensions, kS.Dimensions, outS.Dimensions)
	g.outShape = outS
	if _, loaded := convGeometries.LoadOrStore(key, g); !loaded {
		runtime.AddCleanup(node, func(k weak.Pointer[simplego.Node]) { convGeometries.Delete(k) }, key)
	}
	return g
}

// convNodeParams reads SimpleGo's private convolution parameters (convNode) by reflection.
func convNodeParams(node *simplego.Node) (p convParams, ok bool) {
	data, ok := nodeData(node)
	if !ok || data.Kind() != reflect.Pointer {
		return p, false
	}
	v := data.Elem()
	if v.Kind() != reflect.Struct {
		return p, false
	}
	ints := func(f reflect.Value) ([]int, bool) {
		if !f.IsValid() || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Int {
			return nil, false
		}
		out := make([]int, f.Len())
		for i := range out {
			out[i] = int(f.Index(i).Int())
		}
		return out, true
	}
	integer := func(f reflect.Value) (int, bool) {
		if !f.IsValid() || f.Kind() != reflect.Int {
			return 0, false
		}
		return int(f.Int()), true
	}
	all := true
	need := func(ok bool) { all = all && ok }
	var o bool
	axes := v.FieldByName("axes")
	if !axes.IsValid() || axes.Kind() != reflect.Struct {
		return p, false
	}
	a := &p.axes
	a.InputBatch, o = integer(axes.FieldByName("InputBatch"))
	need(o)
	a.InputChannels, o = integer(axes.FieldByName("InputChannels"))
	need(o)
	a.InputSpatial, o = ints(axes.FieldByName("InputSpatial"))
	need(o)
	a.KernelInputChannels, o = integer(axes.FieldByName("KernelInputChannels"))
	need(o)
	a.KernelOutputChannels, o = integer(axes.FieldByName("KernelOutputChannels"))
	need(o)
	a.KernelSpatial, o = ints(axes.FieldByName("KernelSpatial"))
	need(o)
	a.OutputBatch, o = integer(axes.FieldByName("OutputBatch"))
	need(o)
	a.OutputChannels, o = integer(axes.FieldByName("OutputChannels"))
	need(o)
	a.OutputSpatial, o = ints(axes.FieldByName("OutputSpatial"))
	need(o)
	p.strides, o = ints(v.FieldByName("strides"))
	need(o)
	p.inputDilations, o = ints(v.FieldByName("inputDilations"))
	need(o)
	p.kernelDilations, o = ints(v.FieldByName("kernelDilations"))
	need(o)
	p.channelGroups, o = integer(v.FieldByName("channelGroupCount"))
	need(o)
	p.batchGroups, o = integer(v.FieldByName("batchGroupCount"))
	need(o)
	pads := v.FieldByName("paddings")
	if !pads.IsValid() || pads.Kind() != reflect.Slice || pads.Type().Elem().Kind() != reflect.Array || pads.Type().Elem().Len() != 2 {
		return p, false
	}
	p.paddings = make([][2]int, pads.Len())
	for i := range p.paddings {
		p.paddings[i] = [2]int{int(pads.Index(i).Index(0).Int()), int(pads.Index(i).Index(1).Int())}
	}
	S := len(a.InputSpatial)
	// The builder normalises every parameter (conv.go); anything else goes to SimpleGo.
	if !all || len(a.KernelSpatial) != S || len(a.OutputSpatial) != S || len(p.strides) != S ||
		len(p.inputDilations) != S || len(p.kernelDilations) != S || len(p.paddings) != S || p.channelGroups < 1 {
		return p, false
	}
	for i := range S {
		if p.strides[i] < 1 || p.inputDilations[i] < 1 || p.kernelDilations[i] < 1 {
			return p, false
		}
	}
	return p, true
}

// convGeometry is one convolution laid out for the GEMM driver: rows of A are output
// channels (within a group), k runs over (input channel, tap), columns over (batch,
// output position).
type convGeometry struct {
	outShape             shapes.Shape
	S                    int // spatial axes
	groups, mg, cg, taps int // groups; output and input channels per group; kernel taps
	n                    int // columns: batch × output positions

	inStrC, inStrLast, lastDim, lastMax, lastStride, lastDil int
	inStrS, maxPos, inDil                                    []int // per spatial axis (input)
	kStrOut                                                  int
	plain2D                                                  bool // fillRuns2D applies
	kRuns                                                    bool // fillKRuns applies
	kLast                                                    int  // kernel taps along the last spatial axis
	outStrC                                                  int

	// Per column: input offset of its batch, its spatial start positions (output position ×
	// stride − low padding, in dilated input coordinates), its output offset, and how many
	// columns from it on stay in the same row of the last spatial axis.
	colIn, colPos, colOut, colRun []int
	// Per k (channel, tap): input offset of the channel, tap offsets in dilated input
	// coordinates, and the kernel offset.
	rowIn, rowPos, rowKer []int
}

// flips[i] reads the kernel backwards along spatial axis i (nil: no axis).
func newConvGeometry(p convParams, flips []bool, inDims, kDims, outDims []int) *convGeometry {
	a := p.axes
	S := len(a.InputSpatial)
	stridesOf := func(dims []int) []int {
		s := make([]int, len(dims))
		acc := 1
		for i := len(dims) - 1; i >= 0; i-- {
			s[i] = acc
			acc *= dims[i]
		}
		return s
	}
	inStr, kStr, outStr := stridesOf(inDims), stridesOf(kDims), stridesOf(outDims)
	g := &convGeometry{S: S, groups: p.channelGroups}
	B := inDims[a.InputBatch]
	g.cg = inDims[a.InputChannels] / p.channelGroups
	g.mg = kDims[a.KernelOutputChannels] / p.channelGroups
	g.inStrC, g.kStrOut, g.outStrC = inStr[a.InputChannels], kStr[a.KernelOutputChannels], outStr[a.OutputChannels]
	g.inStrS, g.maxPos, g.inDil = make([]int, S), make([]int, S), make([]int, S)
	oDims, kSp := make([]int, S), make([]int, S)
	nO := 1
	g.taps = 1
	for i := range S {
		g.inStrS[i] = inStr[a.InputSpatial[i]]
		g.inDil[i] = p.inputDilations[i]
		g.maxPos[i] = (inDims[a.InputSpatial[i]] - 1) * p.inputDilations[i]
		oDims[i] = outDims[a.OutputSpatial[i]]
		kSp[i] = kDims[a.KernelSpatial[i]]
		nO *= oDims[i]
		g.taps *= kSp[i]
	}
	last := S - 1
	g.inStrLast, g.lastDim, g.lastMax = g.inStrS[last], oDims[last], g.maxPos[last]
	g.lastStride, g.lastDil = p.strides[last], p.inputDilations[last]
	g.plain2D = S == 2 && p.inputDilations[0] == 1 && g.lastDil == 1 && g.lastStride == 1 && g.inStrLast == 1 && g.taps <= maxTaps2D
	// A kernel wider than the output (the kernel gradient: taps span the image, outputs
	// span the kernel) reads the input in long runs along k instead of short ones along n.
	g.kLast = kSp[last]
	g.kRuns = !g.plain2D && S == 2 && p.inputDilations[0] == 1 && g.lastDil == 1 && g.inStrLast == 1 &&
		p.kernelDilations[last] == 1 && g.kLast > oDims[last]
	g.n = B * nO
	g.colIn, g.colOut, g.colRun = make([]int, g.n), make([]int, g.n), make([]int, g.n)
	g.colPos = make([]int, g.n*S)
	o := make([]int, S)
	for n := range g.n {
		b, pos := n/max(nO, 1), n%max(nO, 1)
		for i := last; i >= 0; i-- {
			o[i] = pos % oDims[i]
			pos /= oDims[i]
		}
		g.colIn[n] = b * inStr[a.InputBatch]
		g.colOut[n] = b * outStr[a.OutputBatch]
		for i := range S {
			g.colPos[n*S+i] = o[i]*p.strides[i] - p.paddings[i][0]
			g.colOut[n] += o[i] * outStr[a.OutputSpatial[i]]
		}
		g.colRun[n] = oDims[last] - o[last]
	}
	K := g.cg * g.taps
	g.rowIn, g.rowKer = make([]int, K), make([]int, K)
	g.rowPos = make([]int, K*S)
	t := make([]int, S)
	for k := range K {
		c, tap := k/g.taps, k%g.taps
		for i := last; i >= 0; i-- {
			t[i] = tap % kSp[i]
			tap /= kSp[i]
		}
		g.rowIn[k] = c * g.inStrC
		g.rowKer[k] = c * kStr[a.KernelInputChannels]
		for i := range S {
			g.rowPos[k*S+i] = t[i] * p.kernelDilations[i]
			kt := t[i]
			if flips != nil && flips[i] {
				kt = kSp[i] - 1 - t[i]
			}
			g.rowKer[k] += kt * kStr[a.KernelSpatial[i]]
		}
	}
	return g
}

// run computes every group's product into out (zeroed).
func (g *convGeometry) run(in, ker, out []float32) {
	if g.n == 0 || g.mg == 0 {
		return
	}
	if g.cg*g.taps == 0 { // nothing to sum: zeros
		clear(out)
		return
	}
	kern := convKernel()
	K := g.cg * g.taps
	workers := gemmWorkers(g.mg, g.n, K)
	for grp := range g.groups {
		inBase, kerBase := grp*g.cg*g.inStrC, grp*g.mg*g.kStrOut
		prod := packedGEMM{
			m: g.mg, n: g.n, k: K,
			c: out[grp*g.mg*g.outStrC:], ldc: g.outStrC, colOff: g.colOut, overwrite: true,
			packA: func(dst []float32, mr, k0, kb int) { g.packKernel(ker[kerBase:], dst, mr, k0, kb) },
			packB: func(dst []float32, nr, k0, kb, j0, nb int) { g.packPatches(in[inBase:], dst, nr, k0, kb, j0, nb) },
		}
		prod.run(kern, workers)
	}
}

// packKernel is packA: rows are output channels of the group, k the (channel, tap) pairs.
func (g *convGeometry) packKernel(ker, dst []float32, mr, k0, kb int) {
	rowKer := g.rowKer[k0 : k0+kb]
	for p := 0; p < g.mg; p += mr {
		panel := dst[p*kb : p*kb+kb*mr]
		for r := range mr {
			if p+r >= g.mg {
				for l := range kb {
					panel[l*mr+r] = 0
				}
				continue
			}
			base := (p + r) * g.kStrOut
			for l, off := range rowKer {
				panel[l*mr+r] = ker[base+off]
			}
		}
	}
}

// packPatches is packB: the patch-matrix block k [k0, k0+kb) × columns [j0, j0+nb),
// copied from the input run by run (columns that follow each other along the last
// spatial axis read consecutive input positions).
func (g *convGeometry) packPatches(in, dst []float32, nr, k0, kb, j0, nb int) {
	for p := 0; p*nr < nb; p++ {
		panel := dst[p*kb*nr : (p+1)*kb*nr]
		first := j0 + p*nr
		cols := min(nr, nb-p*nr)
		for j := 0; j < cols; {
			n := first + j
			run := min(g.colRun[n], cols-j)
			switch {
			case g.plain2D:
				g.fillRuns2D(in, panel, nr, j, run, n, k0, kb)
			case g.kRuns:
				run = 1
				g.fillKRuns(in, panel, nr, j, n, k0, kb)
			default:
				for l := range kb {
					g.fillRun(in, panel[l*nr+j:l*nr+j+run], n, k0+l)
				}
			}
			j += run
		}
		if cols < nr {
			for l := range kb {
				clear(panel[l*nr+cols : l*nr+nr])
			}
		}
	}
}

// maxTaps2D bounds the kernel taps fillRuns2D handles (its per-tap table is on the stack).
const maxTaps2D = 64

// fillRuns2D is fillRun for the common case (two spatial axes, no input dilation, stride
// 1 and unit input stride along the last axis, at most maxTaps2D taps), for rows k0 …
// k0+kb−1 at once. Where a run starts in the input and which of its columns fall inside
// the image depends only on the tap, so that is worked out once per tap, and the rows
// (channel, tap) then only add the channel's offset.
func (g *convGeometry) fillRuns2D(in, panel []float32, nr, j, run, n, k0, kb int) {
	var tapOff [maxTaps2D]int
	var tapLo, tapHi [maxTaps2D]int
	cy, cx := g.colPos[2*n], g.colPos[2*n+1]
	base := g.colIn[n]
	for t := range g.taps {
		y, x0 := cy+g.rowPos[2*t], cx+g.rowPos[2*t+1]
		lo, hi := max(0, -x0), min(run, g.lastMax-x0+1)
		if uint(y) > uint(g.maxPos[0]) || hi <= lo {
			lo, hi = 0, 0 // nothing inside: all zero
		}
		tapOff[t], tapLo[t], tapHi[t] = base+y*g.inStrS[0]+x0, lo, hi
	}
	t, cOff := k0%g.taps, k0/g.taps*g.inStrC
	for l := range kb {
		d := panel[l*nr+j : l*nr+j+run]
		lo, hi, off := tapLo[t], tapHi[t], tapOff[t]+cOff
		// Runs are at most a panel wide (16 or 32 floats): inlined moves and short loops
		// beat calls to memmove and memclr.
		switch {
		case hi == 0:
			clear(d)
		case lo == 0 && hi == run && run == 32:
			*(*[32]float32)(d) = *(*[32]float32)(in[off : off+32])
		case lo == 0 && hi == run && run == 16:
			*(*[16]float32)(d) = *(*[16]float32)(in[off : off+16])
		case lo == 0 && hi == run && run == 8:
			*(*[8]float32)(d) = *(*[8]float32)(in[off : off+8])
		default:
			src := in[off+lo : off+hi]
			for i := range lo {
				d[i] = 0
			}
			for i, v := range src {
				d[lo+i] = v
			}
			for i := hi; i < len(d); i++ {
				d[i] = 0
			}
		}
		if t++; t == g.taps {
			t, cOff = 0, cOff+g.inStrC
		}
	}
}

// fillKRuns writes column n of the patch-matrix block (rows k0 … k0+kb−1) for two
// spatial axes without input dilation, with unit input stride and kernel dilation along
// the last axis: consecutive taps along that axis read consecutive input values.
func (g *convGeometry) fillKRuns(in, panel []float32, nr, j, n, k0, kb int) {
	cy, cx := g.colPos[2*n], g.colPos[2*n+1]
	base := g.colIn[n]
	for l := 0; l < kb; {
		k := k0 + l
		run := min(g.kLast-k%g.kLast, kb-l)
		y, x0 := cy+g.rowPos[2*k], cx+g.rowPos[2*k+1]
		if uint(y) > uint(g.maxPos[0]) {
			for t := range run {
				panel[(l+t)*nr+j] = 0
			}
			l += run
			continue
		}
		off := base + g.rowIn[k] + y*g.inStrS[0]
		for t := range run {
			v := float32(0)
			if x := x0 + t; uint(x) <= uint(g.lastMax) {
				v = in[off+x]
			}
			panel[(l+t)*nr+j] = v
		}
		l += run
	}
}

// fillRun writes patch-matrix row k for the len(d) columns from n on, which share their
// batch and every spatial position but the last.
func (g *convGeometry) fillRun(in, d []float32, n, k int) {
	S := g.S
	off := g.colIn[n] + g.rowIn[k]
	cp, rp := g.colPos[n*S:n*S+S], g.rowPos[k*S:k*S+S]
	for i := range S - 1 {
		pos := cp[i] + rp[i]
		if pos < 0 || pos > g.maxPos[i] || pos%g.inDil[i] != 0 {
			clear(d)
			return
		}
		off += pos / g.inDil[i] * g.inStrS[i]
	}
	p0, st := cp[S-1]+rp[S-1], g.lastStride
	if g.lastDil != 1 {
		for j := range d {
			pos := p0 + j*st
			if pos < 0 || pos > g.lastMax || pos%g.lastDil != 0 {
				d[j] = 0
			} else {
				d[j] = in[off+pos/g.lastDil*g.inStrLast]
			}
		}
		return
	}
	// Valid columns j: 0 ≤ p0 + j·st ≤ lastMax.
	lo, hi := 0, len(d)
	if p0 < 0 {
		lo = min((-p0+st-1)/st, len(d))
	}
	if last := p0 + (len(d)-1)*st; last > g.lastMax {
		hi = max(0, (g.lastMax-p0)/st+1)
		if g.lastMax < p0 {
			hi = 0
		}
	}
	if hi < lo {
		hi = lo
	}
	clear(d[:lo])
	clear(d[hi:])
	if lo == hi {
		return
	}
	if st == 1 && g.inStrLast == 1 {
		copy(d[lo:hi], in[off+p0+lo:off+p0+hi])
		return
	}
	step := st * g.inStrLast
	src := off + (p0+lo*st)*g.inStrLast
	for j := lo; j < hi; j++ {
		d[j] = in[src]
		src += step
	}
}
