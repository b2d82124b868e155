package operator

import (
	"testing"

	"github.com/dpsflow/dpsflow/xla"
)

// The matrix of 2×2 average pooling on 4×4 images averages each block; the identity's is I.
func TestMatrix(t *testing.T) {
	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	sr, _ := NewAvgPoolSR(2)
	a, err := Matrix(be, sr, 1, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 4 || len(a[0]) != 16 {
		t.Fatalf("%d×%d, want 4×16", len(a), len(a[0]))
	}
	for i, row := range a {
		bi, bj := i/2, i%2 // the block of measured pixel i
		for j, v := range row {
			want := 0.0
			if (j/4)/2 == bi && (j%4)/2 == bj {
				want = 0.25
			}
			if v != want {
				t.Errorf("A[%d][%d] = %v, want %v", i, j, v, want)
			}
		}
	}
	id, err := Matrix(be, NewIdentity(), 1, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range id {
		for j, v := range row {
			if (i == j) != (v == 1) || (i != j && v != 0) {
				t.Errorf("I[%d][%d] = %v", i, j, v)
			}
		}
	}
}
