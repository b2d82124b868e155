package xla

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// EmbeddedName is the name under which the embedded backend is registered with GoMLX, so
// GOMLX_BACKEND=embedded and backends.NewWithConfig("embedded") select it too.
const EmbeddedName = "embedded"

func init() {
	backends.Register(EmbeddedName, func(config string) (backends.Backend, error) { return NewEmbedded(config) })
	// GoMLX's own default is "xla", whose first use downloads a plugin: code that calls
	// backends.New() without GOMLX_BACKEND gets the embedded backend instead.
	backends.DefaultConfig = EmbeddedName
}

// Embedded is GoMLX's pure-Go backend (SimpleGo) with what DPS needs added: the Pad and
// Reverse ops that autodiff of convolutions, pooling and slices emits (embedded.go); a
// float32 convolution executor that runs as an implicit GEMM without building im2col
// (convexec.go, gemm.go), with parameters normalised first, which also sidesteps SimpleGo's
// convolution bugs with nil strides and strided-convolution gradients (conv.go);
// matrix-product gradients and small pooling windows rewritten (rewrite.go); and faster
// executors for matrix products, slices and broadcasting arithmetic (fastexec.go). Ops run
// one at a time — SimpleGo deadlocks when several matrix products run concurrently — and
// the heavy ones use all cores inside.
type Embedded struct {
	*simplego.Backend
	capabilities backends.Capabilities
}

var _ backends.Backend = (*Embedded)(nil)

// NewEmbedded returns a new embedded backend. config takes SimpleGo's comma-separated
// options (e.g. "parallelism=2"); "ops_sequential" is always added.
func NewEmbedded(config string) (*Embedded, error) {
	opts := []string{"ops_sequential"}
	for _, o := range strings.Split(config, ",") {
		if o = strings.TrimSpace(o); o != "" && o != "ops_sequential" {
			if o == "ops_parallel" {
				return nil, &SpecError{Spec: "embedded," + config, Msg: "ops_parallel is refused: SimpleGo deadlocks when several matrix products run at once"}
			}
			opts = append(opts, o)
		}
	}
	inner, err := simplego.New(strings.Join(opts, ","))
	if err != nil {
		return nil, &SpecError{Spec: "embedded," + config, Msg: err.Error()}
	}
	caps := simplego.Capabilities.Clone()
	caps.Operations[backends.OpTypePad] = true
	caps.Operations[backends.OpTypeReverse] = true
	b := &Embedded{Backend: inner.(*simplego.Backend), capabilities: caps}
	fastBackends.Store(b.Backend, struct{}{})
	return b, nil
}

// Finalize implements backends.Backend: it frees SimpleGo's buffers and takes the backend
// off the fast executors' list, so a finalized backend is no longer kept alive by it.
func (b *Embedded) Finalize() {
	fastBackends.Delete(b.Backend)
	b.Backend.Finalize()
}

// Name implements backends.Backend.
func (b *Embedded) Name() string { return EmbeddedName }

// String implements backends.Backend.
func (b *Embedded) String() string { return EmbeddedName }

// Description implements backends.Backend.
func (b *Embedded) Description() string {
	gemmKind := "gonum GEMM, pure-Go convolution kernel"
	if k, ok := sgemmKernel(); ok {
		gemmKind = k.name + " GEMM kernel"
	}
	return "dpsflow embedded: pure Go (GoMLX SimpleGo + Pad, Reverse, implicit-GEMM convolution, " + gemmKind + ")"
}

// Capabilities implements backends.Backend.
func (b *Embedded) Capabilities() backends.Capabilities { return b.capabilities }

// Builder implements backends.Backend.
func (b *Embedded) Builder(name string) backends.Builder {
	return &embeddedBuilder{Builder: b.Backend.Builder(name).(*simplego.Builder)}
}

// embeddedBuilder inherits every SimpleGo op and adds or replaces a few, composing them
// from ops SimpleGo has, so compilation and execution stay SimpleGo's.
type embeddedBuilder struct {
	*simplego.Builder

	// products records broadcasting Mul nodes (output → inputs) for ReduceSum's rewrite.
	products map[backends.Op][2]backends.Op
	// reversals records Reverse nodes (output → operand and axes): a convolution whose
	// kernel is reversed (autodiff's input gradient) reads the kernel backwards instead.
	reversals map[backends.Op]reversal
}

type reversal struct {
	x    backends.Op
	axes []int
}

// emitter chains builder calls and keeps the first error, so composite ops read as
// straight-line code.
type emitter struct {
	b   *simplego.Builder
	err error
}

func (e *emitter) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

func (e *emitter) do(f func() (backends.Op, error)) backends.Op {
	if e.err != nil {
		return nil
	}
	op, err := f()
	if err != nil {
		e.err = err
	}
	return op
}

func (e *emitter) shape(x backends.Op) shapes.Shape {
	if e.err != nil {
		return shapes.Invalid()
	}
	s, err := e.b.OpShape(x)
	if err != nil {
		e.err = err
	}
	return s
}

func (e *emitter) reshape(x backends.Op, dims ...int) backends.Op {
	return e.do(func() (backends.Op, error) { return e.b.Reshape(x, dims...) })
}

func (e *emitter) transpose(x backends.Op, perm ...int) backends.Op {
	if isIdentityPerm(perm) {
		return x
	}
	dims := e.shape(x).Dimensions
	if e.err == nil && movesOnlyUnitAxes(dims, perm) {
		out := make([]int, len(perm))
		for i, p := range perm {
			out[i] = dims[p]
		}
		return e.reshape(x, out...)
	}
	return e.do(func() (backends.Op, error) { return e.b.Transpose(x, perm...) })
}

// movesOnlyUnitAxes says whether perm keeps the axes longer than 1 in their order, so the
// transpose does not move data and is a reshape.
func movesOnlyUnitAxes(dims, perm []int) bool {
	last := -1
	for _, p := range perm {
		if p >= len(dims) {
			return false
		}
		if dims[p] != 1 {
			if p < last {
				return false
			}
			last = p
		}
	}
	return true
}

func (e *emitter) concat(axis int, xs ...backends.Op) backends.Op {
	if len(xs) == 1 {
		return xs[0]
	}
	return e.do(func() (backends.Op, error) { return e.b.Concatenate(axis, xs...) })
}

func (e *emitter) slice(x backends.Op, starts, limits, strides []int) backends.Op {
	if strides == nil {
		// SimpleGo indexes strides unconditionally.
		strides = make([]int, len(starts))
		for i := range strides {
			strides[i] = 1
		}
	}
	return e.do(func() (backends.Op, error) { return e.b.Slice(x, starts, limits, strides) })
}

// broadcast turns the scalar fill into a tensor of the given dimensions.
func (e *emitter) broadcast(fill backends.Op, dims []int) backends.Op {
	s := e.shape(fill)
	return e.do(func() (backends.Op, error) {
		return e.b.BroadcastInDim(fill, shapes.Make(s.DType, dims...), nil)
	})
}

func isIdentityPerm(perm []int) bool {
	for i, p := range perm {
		if i != p {
			return false
		}
	}
	return true
}

// Pad implements backends.Builder.Pad from Reshape, Concatenate, Broadcast and Slice:
// interior padding interleaves fill slices along a new axis, negative padding slices.
func (b *embeddedBuilder) Pad(x, fillValue backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	e := &emitter{b: b.Builder}
	s := e.shape(x)
	if e.err != nil {
		return nil, e.err
	}
	orig := x
	if len(axesConfig) > s.Rank() {
		return nil, fmt.Errorf("Pad: %d axes configured for an operand of rank %d (%s)", len(axesConfig), s.Rank(), s)
	}
	if fs := e.shape(fillValue); e.err == nil && (fs.Rank() != 0 || fs.DType != s.DType) {
		return nil, fmt.Errorf("Pad: fill value must be a scalar of dtype %s, got %s", s.DType, fs)
	}
	for axis, cfg := range axesConfig {
		if cfg.Interior < 0 {
			return nil, fmt.Errorf("Pad: negative interior padding %d on axis %d", cfg.Interior, axis)
		}
		if cfg == (backends.PadAxis{}) {
			continue
		}
		dims := e.shape(x).Dimensions
		if cfg.Interior > 0 && dims[axis] > 1 {
			// [..., d, ...] → [..., d, 1, ...] ++ fill[..., d, interior, ...] → [..., d*(1+interior), ...],
			// then drop the trailing fills.
			n := dims[axis]
			split := append(append(append([]int{}, dims[:axis+1]...), 1), dims[axis+1:]...)
			fillDims := append([]int{}, split...)
			fillDims[axis+1] = cfg.Interior
			x = e.concat(axis+1, e.reshape(x, split...), e.broadcast(fillValue, fillDims))
			merged := append([]int{}, dims...)
			merged[axis] = n * (1 + cfg.Interior)
			x = e.reshape(x, merged...)
			limits := append([]int{}, merged...)
			limits[axis] = n + (n-1)*cfg.Interior
			x = e.slice(x, make([]int, len(dims)), limits, nil)
			dims = e.shape(x).Dimensions
		}
		// Negative start/end: cut.
		if cfg.Start < 0 || cfg.End < 0 {
			starts := make([]int, len(dims))
			limits := append([]int{}, dims...)
			starts[axis] = max(0, -cfg.Start)
			limits[axis] = dims[axis] - max(0, -cfg.End)
			if limits[axis] < starts[axis] {
				return nil, fmt.Errorf("Pad: negative padding (%d, %d) removes more than the %d elements of axis %d", cfg.Start, cfg.End, dims[axis], axis)
			}
			x = e.slice(x, starts, limits, nil)
			dims = e.shape(x).Dimensions
		}
		// Positive start/end: concatenate fill blocks.
		parts := []backends.Op{}
		if cfg.Start > 0 {
			fd := append([]int{}, dims...)
			fd[axis] = cfg.Start
			parts = append(parts, e.broadcast(fillValue, fd))
		}
		parts = append(parts, x)
		if cfg.End > 0 {
			fd := append([]int{}, dims...)
			fd[axis] = cfg.End
			parts = append(parts, e.broadcast(fillValue, fd))
		}
		x = e.concat(axis, parts...)
	}
	if e.err != nil {
		return nil, fmt.Errorf("Pad: %w", e.err)
	}
	if x == orig {
		// No padding at all: still return a distinct node, as XLA would.
		return b.Builder.Identity(x)
	}
	return x, nil
}

// Reverse implements backends.Builder.Reverse as one Gather per axis with reversed indices.
func (b *embeddedBuilder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	e := &emitter{b: b.Builder}
	s := e.shape(x)
	if e.err != nil {
		return nil, e.err
	}
	orig := x
	changed := false
	for _, axis := range axes {
		if axis < 0 || axis >= s.Rank() {
			return nil, fmt.Errorf("Reverse: axis %d out of range for shape %s", axis, s)
		}
		n := s.Dimensions[axis]
		if n <= 1 {
			continue
		}
		changed = true
		idx := make([]int32, n)
		for i := range idx {
			idx[i] = int32(n - 1 - i)
		}
		indices := e.do(func() (backends.Op, error) { return b.Builder.Constant(idx, n, 1) })
		sliceSizes := append([]int{}, s.Dimensions...)
		sliceSizes[axis] = 1
		var offsetAxes []int
		for a := 0; a < s.Rank(); a++ {
			if a != axis {
				offsetAxes = append(offsetAxes, a)
			}
		}
		x = e.do(func() (backends.Op, error) {
			return b.Builder.Gather(x, indices, 1, offsetAxes, []int{axis}, []int{axis}, sliceSizes, false)
		})
	}
	if e.err != nil {
		return nil, fmt.Errorf("Reverse: %w", e.err)
	}
	if !changed {
		return b.Builder.Identity(x)
	}
	if b.reversals == nil {
		b.reversals = map[backends.Op]reversal{}
	}
	b.reversals[x] = reversal{x: orig, axes: slices.Clone(axes)}
	return x, nil
}
