// Package solvertest holds what the solver packages' tests share: one embedded backend per
// test binary, a small problem with an exact prior, and the check that a run checkpointed
// midway and resumed ends bit for bit where the whole run ends.
package solvertest

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

var (
	once    sync.Once
	backend backends.Backend
	err     error
)

// Backend is the pure-Go backend, made once per test binary.
func Backend(t testing.TB) backends.Backend {
	t.Helper()
	once.Do(func() { backend, err = xla.New("embedded") })
	if err != nil {
		t.Fatal(err)
	}
	return backend
}

// SRProblem is 3 samples of a 1×4×4 single-Gaussian prior (means 0.3·sin i, variance 0.2)
// under ×2 average-pool super-resolution with Gaussian noise σ = 0.05, a fixed y, float64.
func SRProblem(t testing.TB) *solver.Problem {
	t.Helper()
	sched := schedule.Default()
	mean, vars := make([]float64, 16), make([]float64, 16)
	for i := range mean {
		mean[i], vars[i] = 0.3*math.Sin(float64(i)), 0.2
	}
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{mean}, [][]float64{vars}, []int{1, 4, 4})
	if err != nil {
		t.Fatal(err)
	}
	op, err := operator.NewAvgPoolSR(2)
	if err != nil {
		t.Fatal(err)
	}
	nm, _ := noise.NewGaussian(0.05)
	y := make([]float64, 3*4)
	for i := range y {
		y[i] = 0.1 * float64(i%5)
	}
	return &solver.Problem{Prior: gmm, Schedule: sched, Operator: op, Noise: nm, Backend: Backend(t),
		Y: tensors.FromFlatDataAndDimensions(y, 3, 1, 2, 2), XShape: shapes.Make(dtypes.Float64, 3, 1, 4, 4)}
}

// CheckResume solves y from seed whole, again with a checkpoint after step at, and once more
// resumed from that checkpoint; the resumed run must start at step at+1 and end bit for bit
// where the whole one ends. It returns the whole run's result.
func CheckResume(t testing.TB, run solver.Run, y *tensors.Tensor, seed uint64, at int) *solver.Result {
	t.Helper()
	ctx := context.Background()
	whole, err := run.Solve(ctx, y, seed, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	var saved *solver.State
	if _, err := run.Solve(ctx, y, seed, solver.Hooks{CheckpointEvery: at, Checkpoint: func(s solver.State) error {
		if saved == nil {
			saved = &s
		}
		return nil
	}}); err != nil || saved == nil || saved.Done != at {
		t.Fatalf("checkpoint after step %d: %v, %+v", at, err, saved)
	}
	// A run that ignored Resume and started again from the seed would end in the same bits:
	// the steps it reports tell the two apart.
	var done []int
	resumed, err := run.Solve(ctx, y, seed, solver.Hooks{Resume: saved, Progress: func(d, _ int, _ []float64) { done = append(done, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) == 0 || done[0] != at+1 {
		t.Fatalf("the resumed run's first step is %v, want step %d (it did not start from the checkpoint)", done, at+1)
	}
	SameBits(t, "resumed", resumed.X, whole.X)
	return whole
}

// SameBits fails t unless got and want hold the same float64 values bit for bit.
func SameBits(t testing.TB, what string, got, want *tensors.Tensor) {
	t.Helper()
	a, b := tensors.MustCopyFlatData[float64](got), tensors.MustCopyFlatData[float64](want)
	if len(a) != len(b) {
		t.Fatalf("%s: %d values, want %d", what, len(a), len(b))
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			t.Fatalf("%s: value %d is %v, want %v", what, i, a[i], b[i])
		}
	}
}
