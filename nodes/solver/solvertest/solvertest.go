// Package solvertest holds what the solver packages' tests share: one embedded backend per
// test binary, and the check that a run checkpointed midway and resumed ends bit for bit
// where the whole run ends.
package solvertest

import (
	"context"
	"math"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
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

// CheckResume solves y from seed whole, again with a checkpoint after step at, and once more
// resumed from that checkpoint; the resumed result must equal the whole one bit for bit. It
// returns the whole run's result.
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
	resumed, err := run.Solve(ctx, y, seed, solver.Hooks{Resume: saved})
	if err != nil {
		t.Fatal(err)
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
