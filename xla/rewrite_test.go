package xla

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// ReduceSum(Mul(a, b)) with broadcasting — how GoMLX writes a matrix product's gradient —
// becomes one DotGeneral above minContractionSize (and stays as it is below), with the
// value of the loops either way.
func TestReduceSumOfProductBecomesDotGeneral(t *testing.T) {
	b := mustBackend(t)
	rng := rand.New(rand.NewPCG(41, 42))
	for _, c := range []struct {
		m, k, n   int
		rewritten bool
	}{
		{8, 64, 32, true},  // product 16 384 ≥ 4 096
		{4, 8, 16, false},  // product 512: left alone
		{16, 33, 17, true}, // odd sizes
	} {
		if got := c.m*c.k*c.n >= minContractionSize; got != c.rewritten {
			t.Fatalf("case %v does not sit on the side of the threshold it claims", c)
		}
		x, y := randND(rng, c.m, c.k, 1), randND(rng, 1, c.k, c.n)
		exec, err := graph.NewExec(b, func(x, y *graph.Node) *graph.Node {
			return graph.ReduceSum(graph.Mul(x, y), 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		before := fastHits[backends.OpTypeDotGeneral].Load()
		out, err := exec.Exec1(x.tensor(), y.tensor())
		if err != nil {
			t.Fatal(err)
		}
		if ran := fastHits[backends.OpTypeDotGeneral].Load() > before; ran != c.rewritten {
			t.Fatalf("m=%d k=%d n=%d: a matrix product ran: %v, want %v", c.m, c.k, c.n, ran, c.rewritten)
		}
		got := fromTensor(out)
		for i := range c.m {
			for j := range c.n {
				want := 0.0
				for l := range c.k {
					want += x.data[i*c.k+l] * y.data[l*c.n+j]
				}
				if d := math.Abs(got.data[i*c.n+j] - want); d > 1e-12*(1+math.Abs(want)) {
					t.Fatalf("m=%d k=%d n=%d: (%d, %d) = %g, want %g", c.m, c.k, c.n, i, j, got.data[i*c.n+j], want)
				}
			}
		}
	}
}
