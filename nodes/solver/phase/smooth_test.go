package phase

import (
	"math"
	"math/cmplx"
	"testing"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// smooth equals Re F⁻¹(W · F z) computed with a direct complex DFT on the host, W the
// centred Gaussian exp(−½ (|k|/α)²), on a non-square grid.
func TestSmoothMatchesDFT(t *testing.T) {
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	const h, w = 6, 5
	z := make([]float64, h*w)
	for i := range z {
		z[i] = math.Sin(1.7*float64(i)) + 0.3*float64(i%4)
	}
	e, err := graph.NewExec(be, func(z, a *graph.Node) *graph.Node { return smooth(z, a) })
	if err != nil {
		t.Fatal(err)
	}
	for _, alpha := range []float64{0.4, 1.5, 1e6} {
		out, err := e.Exec(tensors.FromFlatDataAndDimensions(z, 1, 1, h, w), alpha)
		if err != nil {
			t.Fatal(err)
		}
		got := tensors.MustCopyFlatData[float64](out[0])
		// Host: Z[k, l] = Σ z[j, m] e^{−2πi(kj/h + lm/w)}, weighted by W at the centred
		// frequencies, transformed back and divided by h·w.
		want := make([]float64, h*w)
		for j := range h {
			for m := range w {
				var acc complex128
				for k := range h {
					for l := range w {
						fk, fl := float64(k-h/2), float64(l-w/2)
						wt := math.Exp(-0.5 * (fk*fk + fl*fl) / (alpha * alpha))
						var zk complex128
						for jj := range h {
							for mm := range w {
								zk += complex(z[jj*w+mm], 0) * cmplx.Exp(complex(0, -2*math.Pi*(fk*float64(jj)/h+fl*float64(mm)/w)))
							}
						}
						acc += complex(wt, 0) * zk * cmplx.Exp(complex(0, 2*math.Pi*(fk*float64(j)/h+fl*float64(m)/w)))
					}
				}
				want[j*w+m] = real(acc) / (h * w)
			}
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Fatalf("α %v: value %d is %v, want %v", alpha, i, got[i], want[i])
			}
			if alpha == 1e6 && math.Abs(got[i]-z[i]) > 1e-9 {
				t.Fatalf("α → ∞ must be the identity: %v vs %v", got[i], z[i])
			}
		}
	}
}
