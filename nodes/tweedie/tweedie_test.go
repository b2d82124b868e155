package tweedie_test

import (
	"math"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/tweedie"
	"github.com/dpsflow/dpsflow/xla"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// x_t = √ᾱ x0 + √(1−ᾱ) ε: Estimate recovers x0 from (x_t, ε), Eps recovers ε from
// (x_t, x0), and clipping zeroes the gradient of clipped pixels.
func TestEstimateAndEpsInvertTheForwardProcess(t *testing.T) {
	backend, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	x0 := []float64{-0.9, -0.2, 0.3, 0.8, 1.7}
	eps := []float64{0.5, -1.2, 2.0, 0.1, -0.3}
	const abar = 0.37
	xt := make([]float64, len(x0))
	for i := range x0 {
		xt[i] = math.Sqrt(abar)*x0[i] + math.Sqrt(1-abar)*eps[i]
	}
	exec, err := NewExec(backend, func(xt, eps, x0 *Node) []*Node {
		r, rm1 := tweedie.Coefs([]float64{abar})
		a, b := Scalar(xt.Graph(), xt.DType(), r[0]), Scalar(xt.Graph(), xt.DType(), rm1[0])
		clipped := tweedie.Estimate(xt, eps, a, b, true)
		return []*Node{tweedie.Estimate(xt, eps, a, b, false), tweedie.Eps(xt, x0, a, b), clipped,
			Gradient(ReduceAllSum(clipped), xt)[0]}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(tensors.FromValue(xt), tensors.FromValue(eps), tensors.FromValue(x0))
	if err != nil {
		t.Fatal(err)
	}
	gotX0, gotEps := outs[0].Value().([]float64), outs[1].Value().([]float64)
	clipped, grad := outs[2].Value().([]float64), outs[3].Value().([]float64)
	for i := range x0 {
		if math.Abs(gotX0[i]-x0[i]) > 1e-12 || math.Abs(gotEps[i]-eps[i]) > 1e-12 {
			t.Fatalf("element %d: x̂0 %g (want %g), ε %g (want %g)", i, gotX0[i], x0[i], gotEps[i], eps[i])
		}
		wantClip, wantGrad := x0[i], 1/math.Sqrt(abar)
		if math.Abs(x0[i]) > 1 {
			wantClip, wantGrad = math.Copysign(1, x0[i]), 0
		}
		if math.Abs(clipped[i]-wantClip) > 1e-12 || math.Abs(grad[i]-wantGrad) > 1e-12 {
			t.Fatalf("element %d: clipped %g (want %g), gradient %g (want %g)", i, clipped[i], wantClip, grad[i], wantGrad)
		}
	}
}
