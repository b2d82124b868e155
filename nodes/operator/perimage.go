package operator

// Per-image operators: randomness that belongs to one measurement (an inpainting mask or
// box, a motion kernel, the nonlinear blur's latent code) is drawn from (seed, image
// index), so every image of an evaluation gets its own and a rerun gets the same. NewBatch
// builds the operators of images first … first+n−1 and stacks them with PerImage, which
// sends sample b of a batch through operator b.

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// ImageSeed is the seed of image index (≥ 0) of a run with the given seed: two rounds of
// splitmix64's finaliser, mix(mix(seed + γ) + γ·(index + 1)) with γ = 0x9e3779b97f4a7c15,
// so nearby seeds and indices give unrelated draws, and the same (seed, index) always the
// same.
func ImageSeed(seed uint64, index int) uint64 {
	const gamma = 0x9e3779b97f4a7c15
	mix := func(z uint64) uint64 {
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	return mix(mix(seed+gamma) + gamma*(uint64(index)+1))
}

// SeedDependent reports whether task name draws something at random when it is built (so
// NewBatch gives every image its own operator): inpainting (box position, random mask),
// motion_blur (kernel) and nonlinear_blur (latent code) do; super_resolution, avgpool_sr,
// gaussian_blur and phase_retrieval do not, whatever their params.
func SeedDependent(name string, params map[string]any) bool {
	switch name {
	case "inpainting", "motion_blur", "nonlinear_blur":
		return true
	}
	return false
}

// NewBatch builds the operator of images first … first+n−1 of a run. For a task that is
// not SeedDependent it is New(name, h, w, params, seed), the same for every image. For a
// seed-dependent task image first+i gets New(name, h, w, params, ImageSeed(seed, first+i))
// and the result is their PerImage stack, which takes batches of exactly n images; for
// nonlinear_blur only the latent code is per image, the network weights stay drawn from
// seed (NewNonlinearBlurSeeds), as one pretrained network would be.
func NewBatch(name string, h, w int, params map[string]any, seed uint64, first, n int) (Operator, error) {
	if !SeedDependent(name, params) {
		return New(name, h, w, params, seed)
	}
	if first < 0 || n < 1 {
		return nil, fmt.Errorf("%s: NewBatch needs a first image index ≥ 0 and n ≥ 1 images, got first %d, n %d", name, first, n)
	}
	ops := make([]Operator, n)
	for i := range ops {
		s := ImageSeed(seed, first+i)
		op, err := New(name, h, w, params, s)
		if err != nil {
			return nil, err
		}
		if name == "nonlinear_blur" {
			op = NewNonlinearBlurSeeds(seed, s)
		}
		ops[i] = op
	}
	return PerImage(ops)
}

// PerImage stacks one operator per image: sample b of a batch goes through ops[b], so
// batches must have exactly len(ops) images (MeasurementShape says so otherwise). All ops
// must have the same Name, which is the stack's. The stack offers a capability when every
// op offers it (adjoint, projection, pseudo-inverse, SVD with the singular values stacked
// over the batch, data-prox; an SVD gives data-prox too), declared through Declared: it is
// Linear and a Projector, for type assertions, exactly when it offers those. Magnitude
// projection is not stacked.
func PerImage(ops []Operator) (Operator, error) {
	if len(ops) == 0 {
		return nil, fmt.Errorf("operator.PerImage: no operators")
	}
	for i, op := range ops {
		if op == nil {
			return nil, fmt.Errorf("operator.PerImage: operator %d is nil", i)
		}
		if op.Name() != ops[0].Name() {
			return nil, fmt.Errorf("operator.PerImage: operator %d is %s, operator 0 is %s; stack operators of one task", i, op.Name(), ops[0].Name())
		}
	}
	ops = slices.Clone(ops)
	n, name := len(ops), ops[0].Name()
	all := func(c Capability) bool {
		for _, op := range ops {
			if !Has(op, c) {
				return false
			}
		}
		return true
	}
	shape := func(x shapes.Shape) (shapes.Shape, error) {
		if x.Rank() != 4 {
			return shapes.Shape{}, fmt.Errorf("%s: input must be an NCHW batch (rank 4), got shape %s", name, x)
		}
		if x.Dimensions[0] != n {
			return shapes.Shape{}, fmt.Errorf("%s: the batch has %d images (dimension 0 of NCHW), but this per-image operator was built for %d, one per image", name, x.Dimensions[0], n)
		}
		var y shapes.Shape
		for i, op := range ops {
			s, err := op.MeasurementShape(withBatch(x, 1))
			if err != nil {
				return shapes.Shape{}, fmt.Errorf("image %d: %w", i, err)
			}
			if i == 0 {
				y = s
			} else if !s.Equal(y) {
				return shapes.Shape{}, fmt.Errorf("%s: image %d's measurement shape %s differs from image 0's %s", name, i, s, y)
			}
		}
		return withBatch(y, n), nil
	}
	check := func(x *graph.Node) {
		if _, err := shape(x.Shape()); err != nil {
			panic(err)
		}
	}
	// each applies fn(i, sample i of every arg) and concatenates the results over the batch.
	each := func(fn func(i int, args ...*graph.Node) *graph.Node, args ...*graph.Node) *graph.Node {
		out := make([]*graph.Node, n)
		for i := range out {
			sliced := make([]*graph.Node, len(args))
			for j, a := range args {
				sliced[j] = a
				if n > 1 && a.Rank() > 0 && a.Shape().Dimensions[0] == n {
					sliced[j] = graph.Slice(a, graph.AxisRange(i, i+1))
				}
			}
			out[i] = fn(i, sliced...)
		}
		if n == 1 {
			return out[0]
		}
		return graph.Concatenate(out, 0)
	}
	f := Func{Name: name, Shape: shape, Apply: func(x *graph.Node) *graph.Node {
		check(x)
		return each(func(i int, a ...*graph.Node) *graph.Node { return ops[i].Apply(a[0]) }, x)
	}}
	if all(CapAdjoint) {
		f.Adjoint = func(y *graph.Node) *graph.Node {
			return each(func(i int, a ...*graph.Node) *graph.Node { return ops[i].(Linear).Adjoint(a[0]) }, y)
		}
	}
	if all(CapProjection) {
		f.Project = func(x, y *graph.Node) *graph.Node {
			check(x)
			return each(func(i int, a ...*graph.Node) *graph.Node { return ops[i].(Projector).Project(a[0], a[1]) }, x, y)
		}
	}
	if all(CapPseudoInverse) {
		f.PseudoInverse = func(y *graph.Node) *graph.Node {
			return each(func(i int, a ...*graph.Node) *graph.Node { return ops[i].(PseudoInverter).PseudoInverse(a[0]) }, y)
		}
	}
	if all(CapDataProx) {
		f.ProxData = func(v, y, rho *graph.Node) *graph.Node {
			check(v)
			return each(func(i int, a ...*graph.Node) *graph.Node { return ops[i].(DataProxer).ProxData(a[0], a[1], a[2]) }, v, y, rho)
		}
	}
	if all(CapSVD) {
		method := func(m func(s Singular, x *graph.Node) *graph.Node) func(*graph.Node) *graph.Node {
			return func(x *graph.Node) *graph.Node {
				return each(func(i int, a ...*graph.Node) *graph.Node { return m(ops[i].(Singular), a[0]) }, x)
			}
		}
		f.SVD = &SVDFuncs{
			Vt: method(func(s Singular, x *graph.Node) *graph.Node { return s.Vt(x) }),
			V:  method(func(s Singular, c *graph.Node) *graph.Node { return s.V(c) }),
			Ut: method(func(s Singular, y *graph.Node) *graph.Node { return s.Ut(y) }),
			U:  method(func(s Singular, c *graph.Node) *graph.Node { return s.U(c) }),
			Singulars: func(g *graph.Graph, x shapes.Shape) *graph.Node {
				y, err := shape(x)
				if err != nil {
					panic(err)
				}
				d := y.Dimensions
				out := make([]*graph.Node, n)
				for i, op := range ops {
					out[i] = graph.BroadcastToDims(op.(Singular).Singulars(g, withBatch(x, 1)), 1, d[1], d[2], d[3])
				}
				if n == 1 {
					return out[0]
				}
				return graph.Concatenate(out, 0)
			},
		}
	}
	return wrapFunc(funcOp{f: f, parts: ops}), nil
}

// parts returns the per-image operators of a PerImage stack, or nil.
func parts(op Operator) []Operator {
	switch o := op.(type) {
	case funcOp:
		return o.parts
	case funcLinear:
		return o.parts
	case funcProjector:
		return o.parts
	case funcLinearProjector:
		return o.parts
	}
	return nil
}

// Masked operators have a {0, 1} mask, [H*W] row-major, 1 = kept (*Inpainting).
type Masked interface {
	Mask() []float64
}

// Masks returns the masks of op, one per image: a single one for a Masked operator, one per
// image for a PerImage stack of them (what NewBatch gives for inpainting); ok is false for
// any other operator.
func Masks(op Operator) (masks [][]float64, ok bool) {
	if m, ok := op.(Masked); ok {
		return [][]float64{m.Mask()}, true
	}
	ps := parts(op)
	if ps == nil {
		return nil, false
	}
	for _, p := range ps {
		m, ok := Masks(p)
		if !ok {
			return nil, false
		}
		masks = append(masks, m...)
	}
	return masks, true
}
