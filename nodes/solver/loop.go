package solver

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// State is a point of a run from which it can continue bit for bit: the steps done, the
// iterate X, the random-number state (nil for deterministic solvers) and any other state a
// solver carries between steps (Aux, e.g. ADMM's split and dual variables).
type State struct {
	Done   int
	X, RNG *tensors.Tensor
	Aux    []*tensors.Tensor
}

// StepOutput is what one step reports besides the next state.
type StepOutput struct {
	// Estimate is the step's estimate of x (x̂0 for diffusion solvers; may be the iterate).
	Estimate *tensors.Tensor
	// Distances is each sample's ‖y − A(Estimate)‖, shape [B]; read back only when needed.
	Distances *tensors.Tensor
	// Finite is a scalar bool computed with the step: every value of the next state is
	// finite. Nil: Loop checks the next X on the host.
	Finite *tensors.Tensor
}

// Iteration is a solver's step, driven by Loop.
type Iteration interface {
	// Steps is the number of steps of a whole run.
	Steps() int
	// Start returns the state before the first step: drawn from seed, or, when resume is
	// not nil, resume's tensors moved to the iteration's backend (resume is the caller's:
	// copy, never keep).
	Start(seed uint64, resume *State) (State, error)
	// Step runs one step from st (st.Done steps done) and returns the next state; Loop sets
	// its Done and owns (and frees) both states' tensors.
	Step(st State) (State, StepOutput, error)
}

// Timesteper is implemented by iterations whose steps have a diffusion timestep, so that
// DivergedError can name it.
type Timesteper interface {
	Timestep(done int) int
}

// Progress is called after every step with the steps done, the total, and each sample's
// ‖y − A(x̂)‖ at that step.
type Progress func(done, total int, dist []float64)

// Hooks observe a run and let it be resumed. All fields are optional.
type Hooks struct {
	// Progress is called after every step.
	Progress Progress
	// Snapshot is called every SnapshotEvery steps and after the last one with the number
	// of steps done, the new iterate and the step's estimate (host copies the callee owns).
	SnapshotEvery int
	Snapshot      func(done int, x, estimate *tensors.Tensor)
	// Checkpoint is called every CheckpointEvery steps (not after the last) with host copies
	// of a State that Resume continues from bit for bit; an error stops the run.
	CheckpointEvery int
	Checkpoint      func(State) error
	// Resume continues a run from a checkpoint instead of starting from the seed; y, the
	// shape, the seed and the solver must be those of the checkpointed run.
	Resume *State
}

// Outcome is where a Loop ended.
type Outcome struct {
	State     State           // the final state (Done = Steps)
	Estimate  *tensors.Tensor // the last step's estimate
	Distances []float64       // the last step's per-sample distances
}

// DivergedError reports a state that stopped being finite.
type DivergedError struct {
	// Step counts the steps done before the bad one.
	Step int
	// Timestep is the bad step's diffusion step index (in the base schedule), or -1 for
	// solvers without one.
	Timestep int
	// LastGood is the last finite iterate, from which a run could be resumed or inspected.
	LastGood *tensors.Tensor
}

func (e *DivergedError) Error() string {
	if e.Timestep < 0 {
		return fmt.Sprintf("the state became NaN or Inf at step %d; the last finite state is kept", e.Step+1)
	}
	return fmt.Sprintf("the state became NaN or Inf at step %d (diffusion step t=%d); the last finite state is kept", e.Step+1, e.Timestep)
}

// Loop runs it from seed (or h.Resume) to the end, calling the hooks. It stops between
// steps when ctx is cancelled, returning ctx's error, and with a *DivergedError when a step
// leaves the state non-finite.
func Loop(ctx context.Context, it Iteration, seed uint64, h Hooks) (*Outcome, error) {
	n := it.Steps()
	if r := h.Resume; r != nil && (r.Done < 0 || r.Done >= n || r.X == nil) {
		if r.Done == n {
			return nil, fmt.Errorf("the resume state is already at the last step (%d of %d)", r.Done, n)
		}
		return nil, fmt.Errorf("the resume state (step %d of %d) does not fit this run", r.Done, n)
	}
	st, err := it.Start(seed, h.Resume)
	if err != nil {
		return nil, err
	}
	if h.Resume != nil {
		st.Done = h.Resume.Done
	}
	var est *tensors.Tensor
	var dist []float64
	for st.Done < n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		next, out, err := it.Step(st)
		if err != nil {
			return nil, fmt.Errorf("step %d of %d: %w", st.Done+1, n, err)
		}
		next.Done = st.Done + 1
		if !finite(next, out) {
			ts := -1
			if tp, ok := it.(Timesteper); ok {
				ts = tp.Timestep(st.Done)
			}
			return nil, &DivergedError{Step: st.Done, Timestep: ts, LastGood: st.X}
		}
		done := next.Done
		// Only the finiteness flag must come back every step; the distances only when asked
		// for, or at the end.
		if h.Progress != nil || done == n {
			dist = toFloat64s(out.Distances)
		}
		if h.Progress != nil {
			h.Progress(done, n, dist)
		}
		if h.Snapshot != nil && (done == n || (h.SnapshotEvery > 0 && done%h.SnapshotEvery == 0)) {
			c, err := hostCopies(next.X, out.Estimate)
			if err != nil {
				return nil, fmt.Errorf("snapshot after step %d: %w", done, err)
			}
			h.Snapshot(done, c[0], c[1])
		}
		if h.Checkpoint != nil && done < n && h.CheckpointEvery > 0 && done%h.CheckpointEvery == 0 {
			c, err := hostCopies(append([]*tensors.Tensor{next.X, next.RNG}, next.Aux...)...)
			if err == nil {
				err = h.Checkpoint(State{Done: done, X: c[0], RNG: c[1], Aux: c[2:]})
			}
			if err != nil {
				return nil, fmt.Errorf("checkpoint after step %d: %w", done, err)
			}
		}
		free(st, est)
		st, est = next, out.Estimate
		if out.Distances != nil && out.Distances != out.Estimate {
			out.Distances.FinalizeAll()
		}
		if out.Finite != nil {
			out.Finite.FinalizeAll()
		}
	}
	return &Outcome{State: st, Estimate: est, Distances: dist}, nil
}

// finite reads the step's flag, or checks the next iterate on the host.
func finite(next State, out StepOutput) bool {
	if out.Finite != nil {
		return tensors.ToScalar[bool](out.Finite)
	}
	ok := true
	next.X.ConstFlatData(func(flat any) {
		switch v := flat.(type) {
		case []float32:
			for _, x := range v {
				if x-x != 0 {
					ok = false
					return
				}
			}
		case []float64:
			for _, x := range v {
				if x-x != 0 {
					ok = false
					return
				}
			}
		}
	})
	return ok
}

func free(st State, est *tensors.Tensor) {
	for _, t := range append([]*tensors.Tensor{st.X, st.RNG, est}, st.Aux...) {
		if t != nil {
			t.FinalizeAll()
		}
	}
}

// hostCopies copies tensors to host memory (nil stays nil), for callers that keep them
// past the step.
func hostCopies(ts ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	out := make([]*tensors.Tensor, len(ts))
	for i, t := range ts {
		if t == nil {
			continue
		}
		c, err := t.LocalClone()
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// toFloat64s reads a float tensor as float64s (nil for nil).
func toFloat64s(t *tensors.Tensor) []float64 {
	if t == nil {
		return nil
	}
	switch v := t.Value().(type) {
	case []float64:
		return v
	case []float32:
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	return nil
}

// LoopOn is Loop as a Run.Solve calls it: it checks that y has the shape wantY and that a
// resume state's X has the shape stateShape, copies y onto backend (the caller's y may be
// tied to another backend instance), runs Loop over the iteration that newIteration makes
// for that copy, and frees the copy. Errors other than cancellation and divergence are
// prefixed with who (e.g. "solver hio").
func LoopOn(ctx context.Context, who string, backend backends.Backend, y *tensors.Tensor, wantY, stateShape shapes.Shape,
	newIteration func(y *tensors.Tensor) Iteration, seed uint64, h Hooks) (*Outcome, error) {
	if y == nil || !y.Shape().Equal(wantY) {
		var got shapes.Shape
		if y != nil {
			got = y.Shape()
		}
		return nil, fmt.Errorf("%s: measurement y has shape %s, want %s", who, got, wantY)
	}
	if r := h.Resume; r != nil && r.X != nil && !r.X.Shape().Equal(stateShape) {
		return nil, fmt.Errorf("%s: the resume state of shape %s does not fit this run's state shape %s", who, r.X.Shape(), stateShape)
	}
	y, err := y.OnDeviceClone(backend, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: copying the measurement y: %w", who, err)
	}
	defer y.FinalizeAll()
	out, err := Loop(ctx, newIteration(y), seed, h)
	if err != nil {
		var div *DivergedError
		if errors.Is(err, ctx.Err()) || errors.As(err, &div) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	return out, nil
}

// OnBackend is a copy of st's tensors on backend (for Iteration.Start to load a resume
// state, which is the caller's: a copy, never kept). Nil tensors stay nil.
func OnBackend(st State, backend backends.Backend) (State, error) {
	clone := func(t *tensors.Tensor) (*tensors.Tensor, error) {
		if t == nil {
			return nil, nil
		}
		c, err := t.OnDeviceClone(backend, 0)
		if err != nil {
			return nil, fmt.Errorf("loading the resume state: %w", err)
		}
		return c, nil
	}
	out := State{Done: st.Done}
	var err error
	if out.X, err = clone(st.X); err != nil {
		return State{}, err
	}
	if out.RNG, err = clone(st.RNG); err != nil {
		return State{}, err
	}
	for _, a := range st.Aux {
		c, err := clone(a)
		if err != nil {
			return State{}, err
		}
		out.Aux = append(out.Aux, c)
	}
	return out, nil
}
