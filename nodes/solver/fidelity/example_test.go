package fidelity_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/solver/fidelity"
	"github.com/dpsflow/dpsflow/xla"
)

// The energy distance is 0 between a point set and itself and grows with the gap between
// two sets.
func ExampleEnergyDistance() {
	a := [][]float64{{0, 0}, {1, 0}}
	b := [][]float64{{0, 3}, {1, 3}}
	fmt.Printf("%.3f %.3f\n", fidelity.EnergyDistance(a, a), fidelity.EnergyDistance(a, b))
	// Output: 0.000 5.162
}

// Exact posterior samples of the linear-Gaussian problem close the gap to the posterior mean
// up to Monte-Carlo error and match its covariance.
func ExampleGaussian_Score() {
	be, err := xla.New("embedded")
	if err != nil {
		panic(err)
	}
	g, err := fidelity.NewGaussian(be, 2000, 1)
	if err != nil {
		panic(err)
	}
	s := g.Score(g.ExactSamples(2000, 7))
	fmt.Printf("gap closed %.2f, covariance ratio %.2f\n", s.GapClosed, s.CovRatio)
	// Output: gap closed 0.99, covariance ratio 1.00
}
