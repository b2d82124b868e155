package operator

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

func TestImageSeed(t *testing.T) {
	seen := map[uint64][2]int{}
	for seed := range 16 {
		for index := range 64 {
			s := ImageSeed(uint64(seed), index)
			if prev, dup := seen[s]; dup {
				t.Fatalf("ImageSeed(%d, %d) = ImageSeed(%d, %d)", seed, index, prev[0], prev[1])
			}
			seen[s] = [2]int{seed, index}
			if s != ImageSeed(uint64(seed), index) {
				t.Fatalf("ImageSeed(%d, %d) is not deterministic", seed, index)
			}
		}
	}
}

func TestSeedDependent(t *testing.T) {
	for _, task := range Tasks {
		want := task == "inpainting" || task == "motion_blur" || task == "nonlinear_blur"
		if got := SeedDependent(task, nil); got != want {
			t.Errorf("SeedDependent(%s) = %v", task, got)
		}
	}
}

// Each image of a batch gets the mask of (seed, index), the same on every call.
func TestNewBatchMasks(t *testing.T) {
	const seed, first, n = 7, 3, 4
	for _, params := range []map[string]any{nil, {"mask_type": "random"}} {
		op, err := NewBatch("inpainting", 32, 32, params, seed, first, n)
		if err != nil {
			t.Fatal(err)
		}
		masks, ok := Masks(op)
		again, _ := NewBatch("inpainting", 32, 32, params, seed, first, n)
		masks2, _ := Masks(again)
		if !ok || len(masks) != n {
			t.Fatalf("%v: Masks gave %d masks, ok %v; want %d", params, len(masks), ok, n)
		}
		for i, m := range masks {
			single, _ := New("inpainting", 32, 32, params, ImageSeed(seed, first+i))
			if !slices.Equal(m, single.(*Inpainting).Mask()) {
				t.Errorf("%v: image %d's mask is not New's with ImageSeed(%d, %d)", params, i, seed, first+i)
			}
			if !slices.Equal(m, masks2[i]) {
				t.Errorf("%v: image %d's mask differs between two calls", params, i)
			}
			for j := range i {
				if slices.Equal(m, masks[j]) {
					t.Errorf("%v: images %d and %d have the same mask", params, j, i)
				}
			}
		}
		if got := Capabilities(op); !slices.Equal(got, []Capability{CapAdjoint, CapProjection, CapPseudoInverse, CapSVD, CapDataProx}) {
			t.Errorf("per-image inpainting capabilities %v", got)
		}
		if _, ok := op.(Projector); !ok || op.Name() != "inpainting" {
			t.Errorf("per-image inpainting: Projector %v, name %q", ok, op.Name())
		}
	}
	box, _ := BoxInpaintingFor(32, 32, 1)
	if m, ok := Masks(box); !ok || len(m) != 1 {
		t.Errorf("Masks of one inpainting: %d masks, ok %v", len(m), ok)
	}
	sr, _ := NewBicubicSR(4)
	if _, ok := Masks(sr); ok {
		t.Errorf("Masks of super_resolution: ok")
	}
}

// Seed-independent tasks: NewBatch is New, bit for bit.
func TestNewBatchSeedIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	xt, _ := randTensor(rng, 3, 3, 32, 32)
	for _, task := range []string{"super_resolution", "avgpool_sr", "gaussian_blur", "phase_retrieval"} {
		params := map[string]any{}
		if task == "gaussian_blur" {
			params["kernel_size"] = 9
		}
		a, err := New(task, 32, 32, params, 5)
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewBatch(task, 32, 32, params, 5, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		out := run(t, func(x *graph.Node) []*graph.Node { return []*graph.Node{a.Apply(x), b.Apply(x)} }, xt)
		if !slices.Equal(out[0], out[1]) {
			t.Errorf("%s: NewBatch's Apply differs from New's", task)
		}
		if !slices.Equal(Capabilities(a), Capabilities(b)) {
			t.Errorf("%s: capabilities %v vs %v", task, Capabilities(a), Capabilities(b))
		}
	}
}

// A PerImage stack applies operator b to sample b, and keeps its promises (adjoint, SVD,
// pseudo-inverse, prox) over the batch.
func TestPerImage(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, task := range []string{"motion_blur", "inpainting", "nonlinear_blur"} {
		params := map[string]any{}
		if task == "motion_blur" {
			params["kernel_size"] = 9
		}
		op, err := NewBatch(task, 16, 16, params, 11, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		ps := parts(op)
		xt, x := randTensor(rng, 3, 2, 16, 16)
		yt, y := randTensor(rng, 3, 2, 16, 16)
		out := run(t, func(x, y *graph.Node) []*graph.Node {
			res := []*graph.Node{op.Apply(x)}
			for i, p := range ps {
				res = append(res, p.Apply(graph.Slice(x, graph.AxisRange(i, i+1))))
			}
			if lin, ok := op.(Linear); ok {
				res = append(res, lin.Adjoint(y))
			}
			return res
		}, xt, yt)
		if want := slices.Concat(out[1 : 1+len(ps)]...); !slices.Equal(out[0], want) {
			t.Errorf("%s: PerImage's Apply differs from the per-sample Apply", task)
		}
		if len(out) > 1+len(ps) {
			if lhs, rhs := dot(out[0], y), dot(x, out[len(out)-1]); abs(lhs-rhs) > 1e-10*abs(lhs) {
				t.Errorf("%s: ⟨Ax, y⟩ = %g, ⟨x, Aᵀy⟩ = %g", task, lhs, rhs)
			}
		}
		switch task {
		case "motion_blur":
			if got := Capabilities(op); !slices.Equal(got, []Capability{CapAdjoint}) {
				t.Errorf("per-image motion blur: capabilities %v", got)
			}
			if _, ok := op.(Projector); ok {
				t.Errorf("per-image motion blur is a Projector")
			}
		case "inpainting":
			checkSingular(t, op, []int{3, 2, 16, 16})
		case "nonlinear_blur":
			if got := Capabilities(op); len(got) != 0 {
				t.Errorf("per-image nonlinear blur: capabilities %v", got)
			}
			a, b := ps[0].(*NonlinearBlur), ps[1].(*NonlinearBlur)
			ref := NewNonlinearBlur(11)
			if slices.Equal(a.Code(), b.Code()) || !slices.Equal(a.w1, ref.w1) || !slices.Equal(b.w2, ref.w2) {
				t.Errorf("per-image nonlinear blur: codes should differ and weights be NewNonlinearBlur(seed)'s")
			}
		}
	}

	// Batch size and mixed tasks are errors that say what is wrong.
	op, _ := NewBatch("inpainting", 16, 16, nil, 1, 0, 2)
	if _, err := op.MeasurementShape(withBatch(shapesOf(1, 1, 16, 16), 3)); err == nil || !strings.Contains(err.Error(), "built for 2") {
		t.Errorf("a batch of 3 for 2 operators: %v", err)
	}
	sr, _ := NewBicubicSR(2)
	box, _ := BoxInpaintingFor(16, 16, 1)
	if _, err := PerImage([]Operator{box, sr}); err == nil || !strings.Contains(err.Error(), "super_resolution") {
		t.Errorf("PerImage of mixed tasks: %v", err)
	}
	if _, err := NewBatch("inpainting", 16, 16, nil, 1, 0, 0); err == nil {
		t.Errorf("NewBatch of 0 images: no error")
	}
}

func shapesOf(dims ...int) shapes.Shape { return shapes.Make(dtypes.Float64, dims...) }
