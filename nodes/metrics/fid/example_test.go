package fid_test

import (
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/metrics/fid"
)

func Example() {
	// Two small sets of 2-d features; the second is the first shifted by (1, 0) and
	// stretched ×2 along y.
	a := [][]float64{{0, 0}, {1, 1}, {2, 0}, {1, -1}}
	b := make([][]float64, len(a))
	for i, x := range a {
		b[i] = []float64{x[0] + 1, 2 * x[1]}
	}
	sa, err := fid.NewStats(a)
	if err != nil {
		fmt.Println(err)
		return
	}
	sb, _ := fid.NewStats(b)
	fd, _ := fid.FrechetDistance(sa, sb)
	// Σa = diag(2/3, 2/3), Σb = diag(2/3, 8/3): FD = 1 + (√(2/3) − √(8/3))² = 1 + 2/3.
	fmt.Printf("FD %.4f\n", fd)
	mean, std, _ := fid.KID(a, b, fid.KIDOptions{Subsets: 1, SubsetSize: 4})
	fmt.Printf("KID %.4f ± %.1f\n", mean, std)
	// Output:
	// FD 1.6667
	// KID 2.1042 ± 0.0
}
