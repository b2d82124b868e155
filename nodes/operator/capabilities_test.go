package operator

// Capabilities against closed forms: SVDs reproduce A, pseudo-inverses satisfy the
// Penrose identities, data proximal maps their optimality condition, magnitude projection
// its invariants; Capabilities and Require report what operators offer.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// singularOps are the operators with an SVD, for h×w images.
func singularOps(t *testing.T, h, w int) []Operator {
	t.Helper()
	must := func(op Operator, err error) Operator {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	// A rank-1 kernel that is not symmetric: p ⊗ q with different p, q.
	p, q := []float64{0.2, 0.5, 0.3}, []float64{0.6, 0.3, 0.1}
	k := make([]float64, 9)
	for a := range 3 {
		for b := range 3 {
			k[a*3+b] = p[a] * q[b]
		}
	}
	rank1, err := NewBlur(k, 3, "rank1")
	if err != nil {
		t.Fatal(err)
	}
	return []Operator{
		must(BoxInpaintingFor(h, w, 1)),
		must(NewRandomInpaintingFixed(h, w, 0.5, 2)),
		must(NewBicubicSR(2)),
		must(NewBicubicSR(4)),
		must(NewAvgPoolSR(2)),
		must(NewGaussianBlur(5, 1)),
		must(rank1.Separable()),
		NewIdentity(),
	}
}

// checkSingular tests op's SVD, pseudo-inverse and data proximal maps (closed form and
// CG) on x of shape dims.
func checkSingular(t *testing.T, op Operator, dims []int) {
	t.Helper()
	if err := Require(op, "test", CapAdjoint, CapSVD, CapPseudoInverse, CapDataProx); err != nil {
		t.Fatal(err)
	}
	sv, lin := op.(Singular), op.(Linear)
	pinv, prox := op.(PseudoInverter), op.(DataProxer)
	rng := rand.New(rand.NewPCG(uint64(dims[2]), 7))
	ydims := measShape(t, op, dims...)
	xt, x := randTensor(rng, dims...)
	ct, c := randTensor(rng, dims...)
	vt, _ := randTensor(rng, dims...)
	yt, y := randTensor(rng, ydims...)
	rho := tensors.FromScalar(0.7)
	rhos := make([]float64, dims[0])
	for i := range rhos {
		rhos[i] = 0.3 + float64(i)
	}
	rhoB := tensors.FromFlatDataAndDimensions(rhos, dims[0], 1, 1, 1)
	out := run(t, func(x, c, v, y, rho, rhoB *graph.Node) []*graph.Node {
		s := sv.Singulars(x.Graph(), x.Shape())
		usv := sv.U(graph.Mul(s, leading(sv.Vt(x), ydims[2], ydims[3])))
		ax := lin.Apply(x)
		apy := pinv.PseudoInverse(y)
		res := func(p, rho *graph.Node) *graph.Node { // Aᵀ(A p − y) + ρ (p − v)
			return graph.Add(lin.Adjoint(graph.Sub(lin.Apply(p), y)), graph.Mul(rho, graph.Sub(p, v)))
		}
		p1, p2 := prox.ProxData(v, y, rho), prox.ProxData(v, y, rhoB)
		cg := ProxDataCG(lin, v, y, rhoB, 60)
		return []*graph.Node{
			usv, ax,
			sv.Vt(sv.V(c)), c, sv.V(sv.Vt(x)), sv.Ut(sv.U(y)),
			lin.Apply(pinv.PseudoInverse(ax)), apy, pinv.PseudoInverse(lin.Apply(apy)),
			res(p1, rho), res(p2, rhoB), res(cg, rhoB),
			graph.ReduceAllMax(graph.Abs(lin.Adjoint(y))), graph.ReduceAllMax(graph.Abs(v)),
		}
	}, xt, ct, vt, yt, rho, rhoB)
	scale := max(out[12][0], 1) + 4*out[13][0]
	for _, c := range []struct {
		what      string
		got, want []float64
		tol       float64
	}{
		{"U Σ Vᵀ x vs A x", out[0], out[1], 1e-10},
		{"Vᵀ V c vs c", out[2], c, 1e-10},
		{"V Vᵀ x vs x", out[4], x, 1e-10},
		{"Uᵀ U y vs y", out[5], y, 1e-10},
		{"A A⁺ A x vs A x", out[6], out[1], 1e-8},
		{"A⁺ A A⁺ y vs A⁺ y", out[8], out[7], 1e-8 * max(1, maxDiff(out[7], make([]float64, len(out[7]))))},
		{"prox optimality (scalar ρ)", out[9], make([]float64, len(x)), 1e-10 * scale},
		{"prox optimality (ρ per sample)", out[10], make([]float64, len(x)), 1e-10 * scale},
		{"CG prox optimality", out[11], make([]float64, len(x)), 1e-8 * scale},
	} {
		if d := maxDiff(c.got, c.want); !(d <= c.tol) {
			t.Errorf("%s: %s differs by %.3g (tolerance %.3g)", opLabel(op), c.what, d, c.tol)
		}
	}
}

func TestSingular(t *testing.T) {
	for _, n := range []int{8, 16} {
		for _, op := range singularOps(t, n, n) {
			t.Run(fmt.Sprintf("%s/%d", opLabel(op), n), func(t *testing.T) { checkSingular(t, op, []int{2, 3, n, n}) })
		}
	}
	t.Run("rectangular", func(t *testing.T) {
		for _, op := range singularOps(t, 8, 16) {
			checkSingular(t, op, []int{1, 2, 8, 16})
		}
	})
}

// The pseudo-inverse through the SVD agrees with super-resolution's R⁺ ⊗ C⁺ (Project's).
func TestSRPseudoInverseMatchesProject(t *testing.T) {
	sr, _ := NewBicubicSR(4)
	rng := rand.New(rand.NewPCG(8, 8))
	yt, _ := randTensor(rng, 1, 2, 4, 4)
	out := run(t, func(y *graph.Node) []*graph.Node {
		zero := graph.ZerosLike(sr.Adjoint(y))
		return []*graph.Node{sr.PseudoInverse(y), sr.Project(zero, y)}
	}, yt)
	if d := maxDiff(out[0], out[1]); d > 1e-10 {
		t.Errorf("PseudoInverse and Project(0, y) differ by %.3g", d)
	}
}

func TestMagnitudeProjection(t *testing.T) {
	for _, dims := range [][]int{{1, 2, 8, 8}, {2, 1, 9, 7}} {
		p, _ := NewPhaseRetrieval(2)
		flat, _ := NewPhaseRetrieval(0) // |F z| on the padded grid itself
		rng := rand.New(rand.NewPCG(9, uint64(dims[2])))
		xt, x := randTensor(rng, dims...)
		x2t, _ := randTensor(rng, dims...)
		pd := measShape(t, p, dims...)
		zt, _ := randTensor(rng, pd...)
		out := run(t, func(x, x2, z *graph.Node) []*graph.Node {
			px := p.ZeroPad(x)
			y := p.Apply(x2)
			z1 := p.ProjectMagnitude(z, y)
			return []*graph.Node{
				p.Crop(px), p.ProjectMagnitude(px, p.Apply(x)), px,
				p.ProjectMagnitude(z1, y), z1, flat.Apply(z1), y,
			}
		}, xt, x2t, zt)
		for _, c := range []struct {
			what      string
			got, want []float64
			tol       float64
		}{
			{"Crop(ZeroPad(x)) vs x", out[0], x, 0},
			{"ProjectMagnitude(ZeroPad(x), A x) vs ZeroPad(x)", out[1], out[2], 1e-8},
			{"projection not idempotent", out[3], out[4], 1e-8},
			{"|F ProjectMagnitude(z, y)| vs y", out[5], out[6], 1e-8},
		} {
			if d := maxDiff(c.got, c.want); !(d <= c.tol) {
				t.Errorf("%v: %s: differs by %.3g", dims, c.what, d)
			}
		}
	}
}

func TestCapabilities(t *testing.T) {
	pr, _ := NewPhaseRetrieval(2)
	motion, _ := NewMotionBlur(61, 0.5, 1)
	gauss, _ := NewGaussianBlur(61, 3)
	sr, _ := NewBicubicSR(4)
	box, _ := BoxInpaintingFor(32, 32, 1)
	notebook, _ := FromFunc(pool2(true, false))
	withPinv := pool2(true, true)
	withPinv.PseudoInverse = func(y *graph.Node) *graph.Node { return y }
	declared, _ := FromFunc(withPinv)
	all := []Capability{CapAdjoint, CapProjection, CapPseudoInverse, CapSVD, CapDataProx}
	for _, c := range []struct {
		op   Operator
		want []Capability
	}{
		{pr, []Capability{CapMagnitudeProjection}},
		{motion, []Capability{CapAdjoint}},
		{gauss, []Capability{CapAdjoint, CapPseudoInverse, CapSVD, CapDataProx}},
		{sr, all},
		{box, all},
		{NewIdentity(), all},
		{NewNonlinearBlur(1), nil},
		{notebook, []Capability{CapAdjoint}},
		{declared, []Capability{CapAdjoint, CapProjection, CapPseudoInverse}},
	} {
		if got := Capabilities(c.op); !slices.Equal(got, c.want) {
			t.Errorf("%s: capabilities %v, want %v", c.op.Name(), got, c.want)
		}
	}

	for _, c := range []struct {
		op   Operator
		caps []Capability
		want string
	}{
		{pr, []Capability{CapSVD}, "solver ddrm needs the operator's svd, which phase_retrieval does not offer (it has: magnitude-projection)"},
		{NewNonlinearBlur(1), []Capability{CapAdjoint}, "solver ddrm needs the operator's adjoint, which nonlinear_blur does not offer (it has: —)"},
		{notebook, []Capability{CapAdjoint, CapProjection, CapSVD}, "solver ddrm needs the operator's projection and svd, which pool2 does not offer (it has: adjoint)"},
		{motion, []Capability{CapSVD}, "solver ddrm needs the operator's svd, which motion_blur does not offer (it has: adjoint)"},
	} {
		err := Require(c.op, "solver ddrm", c.caps...)
		var missing *MissingCapabilityError
		if err == nil || err.Error() != c.want || !errors.As(err, &missing) || missing.Operator != c.op.Name() {
			t.Errorf("Require(%s, %v): %v, want %q", c.op.Name(), c.caps, err, c.want)
		}
	}
	if err := Require(sr, "solver ddrm", CapSVD, CapAdjoint); err != nil {
		t.Errorf("Require(super_resolution, svd, adjoint): %v", err)
	}
	if _, err := motion.Separable(); err == nil || !strings.Contains(err.Error(), "motion_blur") {
		t.Errorf("Separable of a motion kernel: %v, want an error naming motion_blur", err)
	}

	// An undeclared method of a Func operator panics with Require's error type.
	func() {
		defer func() {
			var missing *MissingCapabilityError
			if err, _ := recover().(error); !errors.As(err, &missing) || !strings.Contains(err.Error(), "svd") {
				t.Errorf("Vt on a Func without SVD: recovered %v", err)
			}
		}()
		notebook.(Singular).Vt(nil) // refuses before looking at its argument
	}()
}
