package solver_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// halving is a host iteration x ← x/2 + 1 (fixed point 2), with a step counter in Aux; it
// returns NaN at step nanAt (0: never).
type halving struct {
	steps, nanAt int
}

func (h *halving) Steps() int { return h.steps }

func (h *halving) Start(seed uint64, resume *solver.State) (solver.State, error) {
	if resume != nil {
		return solver.State{X: clone(resume.X), Aux: []*tensors.Tensor{clone(resume.Aux[0])}}, nil
	}
	return solver.State{X: tensors.FromFlatDataAndDimensions([]float64{float64(seed), -3}, 2, 1),
		Aux: []*tensors.Tensor{tensors.FromFlatDataAndDimensions([]float64{0}, 1)}}, nil
}

func (h *halving) Step(st solver.State) (solver.State, solver.StepOutput, error) {
	x := tensors.MustCopyFlatData[float64](st.X)
	count := tensors.MustCopyFlatData[float64](st.Aux[0])[0] + 1
	next, dist := make([]float64, len(x)), make([]float64, len(x))
	for i, v := range x {
		next[i] = v/2 + 1
		if int(count) == h.nanAt {
			next[i] = math.NaN()
		}
		dist[i] = math.Abs(next[i] - 2)
	}
	return solver.State{X: tensors.FromFlatDataAndDimensions(next, 2, 1), Aux: []*tensors.Tensor{tensors.FromFlatDataAndDimensions([]float64{count}, 1)}},
		solver.StepOutput{Estimate: tensors.FromFlatDataAndDimensions(next, 2, 1), Distances: tensors.FromFlatDataAndDimensions(dist, 2)}, nil
}

func clone(t *tensors.Tensor) *tensors.Tensor { c, _ := t.LocalClone(); return c }

func TestLoopHooksResumeAndStops(t *testing.T) {
	it := &halving{steps: 7}
	var snaps, progress []int
	var checkpoints []solver.State
	full, err := solver.Loop(context.Background(), it, 10, solver.Hooks{
		Progress:      func(done, total int, dist []float64) { progress = append(progress, done) },
		SnapshotEvery: 3, Snapshot: func(done int, x, est *tensors.Tensor) { snaps = append(snaps, done) },
		CheckpointEvery: 2, Checkpoint: func(s solver.State) error { checkpoints = append(checkpoints, s); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := tensors.MustCopyFlatData[float64](full.State.X); got[0] != 10.0/128+2*(1-1.0/128) || full.State.Done != 7 {
		t.Fatalf("final x %v after %d steps", got, full.State.Done)
	}
	if len(progress) != 7 || !equal(snaps, []int{3, 6, 7}) || len(checkpoints) != 3 || checkpoints[2].Done != 6 {
		t.Fatalf("progress %v, snapshots %v, %d checkpoints", progress, snaps, len(checkpoints))
	}
	if full.Distances[1] != math.Abs(tensors.MustCopyFlatData[float64](full.State.X)[1]-2) {
		t.Errorf("final distances %v do not belong to the final state", full.Distances)
	}
	// Resuming from every checkpoint ends on the same bits and the same step count.
	for _, ck := range checkpoints {
		res, err := solver.Loop(context.Background(), it, 10, solver.Hooks{Resume: &ck})
		if err != nil {
			t.Fatal(err)
		}
		a, b := tensors.MustCopyFlatData[float64](full.State.X), tensors.MustCopyFlatData[float64](res.State.X)
		if !equalBits(a, b) || tensors.MustCopyFlatData[float64](res.State.Aux[0])[0] != 7 {
			t.Errorf("resumed from step %d: %v, uninterrupted %v", ck.Done, b, a)
		}
	}
	// A resume state at the end, or past it, is refused.
	end := solver.State{Done: 7, X: full.State.X}
	if _, err := solver.Loop(context.Background(), it, 10, solver.Hooks{Resume: &end}); err == nil || !strings.Contains(err.Error(), "already at the last step") {
		t.Errorf("resume at the end: %v", err)
	}
	// NaN at step 4: a DivergedError keeping the state after step 3.
	_, err = solver.Loop(context.Background(), &halving{steps: 7, nanAt: 4}, 10, solver.Hooks{})
	var div *solver.DivergedError
	if !errors.As(err, &div) || div.Step != 3 || div.Timestep != -1 || !strings.Contains(err.Error(), "step 4;") {
		t.Fatalf("NaN at step 4: %v", err)
	}
	if x := tensors.MustCopyFlatData[float64](div.LastGood); x[1] != -3.0/8+2*(1-1.0/8) {
		t.Errorf("last good state %v, want the state after 3 steps", x)
	}
	// Cancelled between steps.
	ctx, cancel := context.WithCancel(context.Background())
	_, err = solver.Loop(ctx, it, 10, solver.Hooks{Progress: func(done, _ int, _ []float64) {
		if done == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalBits(a, b []float64) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return len(a) == len(b)
}

// fakeSolver declares needs and params and solves nothing.
type fakeSolver struct{ info solver.Info }

func (f fakeSolver) Info() solver.Info { return f.info }
func (f fakeSolver) Prepare(*solver.Problem, solver.Params) (solver.Run, error) {
	return nil, errors.New("not for running")
}

var fake = fakeSolver{solver.Info{Name: "fake", NeedsPrior: false, Needs: []operator.Capability{operator.CapSVD},
	Params: []solver.Param{
		{Name: "iters", Type: solver.Int, Default: 10, Min: 1, MinSet: true},
		{Name: "rho", Type: solver.Float, Default: 0.5, Min: 0, MinSet: true, MinExclusive: true},
		{Name: "mode", Type: solver.String, Default: "a", Enum: []string{"a", "b"}},
		{Name: "verbose", Type: solver.Bool, Default: false},
	}}}

func TestResolveParams(t *testing.T) {
	p, err := solver.Resolve(fake, nil)
	if err != nil || p.Int("iters") != 10 || p.Float("rho") != 0.5 || p.String("mode") != "a" || p.Bool("verbose") {
		t.Fatalf("defaults: %v, %v", p, err)
	}
	given, err := solver.ParseAssignments([]string{"iters=20", "rho=0.25", "mode=b", "verbose=true"})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = solver.Resolve(fake, given); err != nil || p.Int("iters") != 20 || p.Float("rho") != 0.25 || p.String("mode") != "b" || !p.Bool("verbose") {
		t.Fatalf("from strings: %v, %v", p, err)
	}
	// JSON numbers (float64) for an int param, as a spec read back from the cache gives them.
	if p, err = solver.Resolve(fake, map[string]any{"iters": 30.0}); err != nil || p.Int("iters") != 30 {
		t.Fatalf("iters 30.0: %v, %v", p, err)
	}
	for _, c := range []struct {
		given map[string]any
		want  string
	}{
		{map[string]any{"itres": 3}, "solver fake: unknown param itres (params: iters, rho, mode, verbose)"},
		{map[string]any{"iters": 2.5}, "solver fake: param iters: want an integer, got float64 2.5"},
		{map[string]any{"iters": "many"}, `solver fake: param iters: "many" is not an integer`},
		{map[string]any{"iters": 0}, "solver fake: param iters: 0 must be ≥ 1"},
		{map[string]any{"rho": 0.0}, "solver fake: param rho: 0 must be > 0"},
		{map[string]any{"rho": math.NaN()}, "solver fake: param rho: NaN is not a finite number"},
		{map[string]any{"rho": "inf"}, "solver fake: param rho: +Inf is not a finite number"},
		{map[string]any{"mode": "c"}, `solver fake: param mode: "c" is not one of a, b`},
		{map[string]any{"verbose": "perhaps"}, `solver fake: param verbose: "perhaps" is not true or false`},
	} {
		if _, err := solver.Resolve(fake, c.given); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.given, err, c.want)
		}
	}
	for _, bad := range [][]string{{"iters"}, {"=3"}, {"iters=1", "iters=2"}} {
		if _, err := solver.ParseAssignments(bad); err == nil {
			t.Errorf("ParseAssignments(%q) accepted", bad)
		}
	}
}

// Check refuses, before any work, an operator without a needed capability and a problem
// without a prior, naming the solver, the operator and what is missing.
func TestCheckNamesSolverOperatorAndCapability(t *testing.T) {
	be, release, err := xla.Shared("embedded")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	pr, err := operator.NewPhaseRetrieval(2)
	if err != nil {
		t.Fatal(err)
	}
	nm, _ := noise.NewGaussian(0.05)
	p := &solver.Problem{Operator: pr, Noise: nm, Backend: be, XShape: shapes.Make(dtypes.Float32, 1, 1, 8, 8)}
	err = solver.Check(fake, p, nil)
	var miss *operator.MissingCapabilityError
	if !errors.As(err, &miss) || !strings.Contains(err.Error(), "solver fake needs the operator's svd, which phase_retrieval does not offer") {
		t.Fatalf("phase retrieval for an svd solver: %v", err)
	}
	needsPrior := fakeSolver{solver.Info{Name: "diffusion", NeedsPrior: true}}
	if err := solver.Check(needsPrior, p, nil); err == nil || !strings.Contains(err.Error(), "solver diffusion needs a diffusion prior") {
		t.Errorf("no prior: %v", err)
	}
	p.Y = tensors.FromShape(shapes.Make(dtypes.Float32, 1, 1, 8, 8))
	if err := solver.Check(fakeSolver{solver.Info{Name: "plain"}}, p, nil); err == nil || !strings.Contains(err.Error(), "measurement y has shape") {
		t.Errorf("y of the wrong shape: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	if err := solver.Register(fakeSolver{solver.Info{Name: "test-only", Aliases: []string{"test-alias"}}}); err != nil {
		t.Fatal(err)
	}
	if err := solver.Register(fakeSolver{solver.Info{Name: "test-alias"}}); err == nil {
		t.Error("a name taken as an alias was registered again")
	}
	s, err := solver.Lookup("test-alias")
	if err != nil || s.Info().Name != "test-only" || solver.Canonical("test-alias") != "test-only" {
		t.Errorf("alias lookup: %v, %v", s, err)
	}
	if _, err := solver.Lookup("nope"); err == nil || !strings.Contains(err.Error(), `unknown solver "nope" (known: `) || !strings.Contains(err.Error(), "test-only") {
		t.Errorf("unknown solver: %v", err)
	}
}
