package operator

// Inpainting: y = m ⊙ x with a fixed {0, 1} mask m (1 = pixel kept), the same for every
// channel and every image of the batch (NewBatch stacks one operator per image). The
// reference returns the masked image at full size, so the measurement has x's shape. Masks
// are drawn on the host when the operator is built (math/rand/v2 PCG seeded by the seed),
// so an operator is deterministic.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Reference settings for inpainting.
const (
	// PaperDropFraction is the share of pixels the paper's random inpainting drops.
	PaperDropFraction = 0.92
	// ReferenceDropLo and ReferenceDropHi bound the drop fraction the reference code draws
	// uniformly for random inpainting (mask_prob_range).
	ReferenceDropLo, ReferenceDropHi = 0.3, 0.7
)

// Inpainting keeps the pixels where its mask is 1. It is Linear (self-adjoint) and a
// Projector.
type Inpainting struct {
	h, w int
	mask []float64 // [h*w], row-major
	desc string
}

// Name is "inpainting".
func (m *Inpainting) Name() string { return "inpainting" }

// String says which mask this is, e.g. "inpainting (box 16×16 at row 5, column 9)".
func (m *Inpainting) String() string { return "inpainting (" + m.desc + ")" }

// Mask returns a copy of the [H*W] mask, row-major, 1 = kept.
func (m *Inpainting) Mask() []float64 { return append([]float64(nil), m.mask...) }

// MeasurementShape is x's shape; H and W must be the mask's.
func (m *Inpainting) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	return x, checkImage(m.Name(), x, m.h, m.w)
}

func (m *Inpainting) maskNode(x *graph.Node) *graph.Node {
	return constant(x.Graph(), x.DType(), m.mask, 1, 1, m.h, m.w)
}

// Apply returns m ⊙ x.
func (m *Inpainting) Apply(x *graph.Node) *graph.Node {
	mustShape(m, x)
	return graph.Mul(x, m.maskNode(x))
}

// Adjoint is Apply: a mask is symmetric.
func (m *Inpainting) Adjoint(y *graph.Node) *graph.Node { return m.Apply(y) }

// Project returns x ⊙ (1 − m) + y ⊙ m.
func (m *Inpainting) Project(x, y *graph.Node) *graph.Node {
	mustShape(m, x)
	return graph.Add(x, graph.Mul(m.maskNode(x), graph.Sub(y, x)))
}

// NewMaskInpainting uses a given [h*w] row-major mask of zeros (dropped) and ones (kept).
func NewMaskInpainting(mask []float64, h, w int) (*Inpainting, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("inpainting: mask size %d×%d must be positive", h, w)
	}
	if len(mask) != h*w {
		return nil, fmt.Errorf("inpainting: mask has %d values, want h·w = %d", len(mask), h*w)
	}
	kept := 0
	for i, v := range mask {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("inpainting: mask[%d] (row %d, column %d) is %v, must be 0 or 1", i, i/w, i%w, v)
		}
		kept += int(v)
	}
	return &Inpainting{h, w, append([]float64(nil), mask...), fmt.Sprintf("given mask, %d of %d pixels kept", kept, h*w)}, nil
}

// NewBoxInpainting drops a boxH×boxW box whose top-left corner is drawn uniformly with
// at least margin pixels to the top and left and more than margin to the bottom and
// right, as the reference does (np.random.randint(margin, size − margin − box)). The
// reference uses a 128×128 box and a 16-pixel margin at 256×256.
func NewBoxInpainting(h, w, boxH, boxW, margin int, seed uint64) (*Inpainting, error) {
	switch {
	case h <= 0 || w <= 0:
		return nil, fmt.Errorf("inpainting: image size %d×%d must be positive", h, w)
	case boxH <= 0 || boxW <= 0:
		return nil, fmt.Errorf("inpainting: box size %d×%d must be positive", boxH, boxW)
	case margin < 0:
		return nil, fmt.Errorf("inpainting: margin %d must not be negative", margin)
	case boxH+2*margin >= h || boxW+2*margin >= w:
		return nil, fmt.Errorf("inpainting: box %d×%d plus twice the margin %d does not fit strictly inside %d×%d", boxH, boxW, margin, h, w)
	}
	rng := rand.New(rand.NewPCG(seed, 0x626f78)) // stream "box"
	top := margin + rng.IntN(h-margin-boxH-margin)
	left := margin + rng.IntN(w-margin-boxW-margin)
	mask := make([]float64, h*w)
	for i := range h {
		for j := range w {
			if i < top || i >= top+boxH || j < left || j >= left+boxW {
				mask[i*w+j] = 1
			}
		}
	}
	return &Inpainting{h, w, mask, fmt.Sprintf("box %d×%d at row %d, column %d", boxH, boxW, top, left)}, nil
}

// BoxInpaintingFor scales the reference box (128×128, margin 16 at 256×256) to h×w:
// box h/2 × w/2 and margin h/16, rounded (a 16×16 box with a 2-pixel margin at 32×32).
func BoxInpaintingFor(h, w int, seed uint64) (*Inpainting, error) {
	scale := func(n, num int) int { return int(math.Round(float64(n*num) / 256)) }
	return NewBoxInpainting(h, w, scale(h, 128), scale(w, 128), scale(min(h, w), 16), seed)
}

// NewRandomInpaintingFixed drops exactly ⌊drop·h·w⌋ pixels chosen uniformly without
// replacement: the paper's setting is drop = PaperDropFraction (0.92).
func NewRandomInpaintingFixed(h, w int, drop float64, seed uint64) (*Inpainting, error) {
	if !(drop >= 0 && drop <= 1) {
		return nil, fmt.Errorf("inpainting: drop fraction %v must be in [0, 1]", drop)
	}
	return randomMask(h, w, drop, rand.New(rand.NewPCG(seed, 0x72616e64)), fmt.Sprintf("random, drop fraction %g", drop))
}

// NewRandomInpaintingRange draws the drop fraction uniformly in [lo, hi], then drops that
// share of pixels as NewRandomInpaintingFixed does: the reference code's setting is
// [ReferenceDropLo, ReferenceDropHi] = [0.3, 0.7].
func NewRandomInpaintingRange(h, w int, lo, hi float64, seed uint64) (*Inpainting, error) {
	if !(lo >= 0 && lo <= hi && hi <= 1) {
		return nil, fmt.Errorf("inpainting: drop fraction range [%v, %v] must satisfy 0 ≤ lo ≤ hi ≤ 1", lo, hi)
	}
	rng := rand.New(rand.NewPCG(seed, 0x72616e64))
	drop := lo + (hi-lo)*rng.Float64()
	return randomMask(h, w, drop, rng, fmt.Sprintf("random, drop fraction %.4f drawn in [%g, %g]", drop, lo, hi))
}

func randomMask(h, w int, drop float64, rng *rand.Rand, desc string) (*Inpainting, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("inpainting: image size %d×%d must be positive", h, w)
	}
	mask := make([]float64, h*w)
	for i := range mask {
		mask[i] = 1
	}
	// The first ⌊drop·n⌋ entries of a random permutation are dropped (np.random.choice
	// without replacement, as the reference).
	perm := rng.Perm(h * w)
	for _, p := range perm[:int(drop*float64(h*w))] {
		mask[p] = 0
	}
	return &Inpainting{h, w, mask, desc}, nil
}
