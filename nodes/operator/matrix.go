package operator

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Matrix is the matrix of a linear op on one sample of per-sample shape dims (e.g. [1, 4, 4]),
// in float64: column j is A applied to the j-th unit vector (row-major over dims), row i the
// i-th measured value (row-major over the measurement's per-sample shape). For small problems
// with known answers (tests, notebooks, exact posteriors): it applies op to dim unit vectors
// in one batch.
func Matrix(backend backends.Backend, op Operator, dims ...int) ([][]float64, error) {
	x := shapes.Make(dtypes.Float64, append([]int{1}, dims...)...)
	n := x.Size()
	eye := make([]float64, n*n)
	for j := range n {
		eye[j*n+j] = 1
	}
	exec, err := graph.NewExec(backend, op.Apply)
	if err != nil {
		return nil, fmt.Errorf("the matrix of %s: %w", op.Name(), err)
	}
	out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(eye, append([]int{n}, dims...)...))
	if err != nil {
		return nil, fmt.Errorf("the matrix of %s: %w", op.Name(), err)
	}
	cols := tensors.MustCopyFlatData[float64](out) // block j is A e_j
	m := len(cols) / n
	a := make([][]float64, m)
	for i := range a {
		a[i] = make([]float64, n)
		for j := range n {
			a[i][j] = cols[j*m+i]
		}
	}
	return a, nil
}
