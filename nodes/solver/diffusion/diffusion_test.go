package diffusion_test

import (
	"context"
	"errors"
	"github.com/dpsflow/dpsflow/nodes/solver/solvertest"
	"math"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// problem is solvertest's: 3 samples of a 1×4×4 Gaussian prior under 2× average-pool SR.
func problem(t *testing.T) *solver.Problem { return solvertest.SRProblem(t) }

// ddim is deterministic DDIM (η = 0) written on the driver, with one aux tensor that counts
// the steps, to exercise Aux and resume.
func ddim(t *testing.T, p *solver.Problem, steps int) solver.Run {
	t.Helper()
	sched, err := diffusion.Schedule(p, steps, "even")
	if err != nil {
		t.Fatal(err)
	}
	m := diffusion.NewModel(p.Prior, sched)
	run, err := diffusion.Prepare(diffusion.Spec{Name: "test-ddim", Problem: p, Steps: steps, NFE: steps, Timesteps: m.Timesteps, Aux: 1,
		Init: func(s *diffusion.Start) (*Node, []*Node) {
			return s.Normal(p.XShape), []*Node{Zeros(s.Y.Graph(), p.XShape)}
		},
		Step: func(s *diffusion.Step) diffusion.Out {
			x0, _ := m.Tweedie(s, s.X, true)
			e := Div(Sub(Mul(s.At(m.SqrtRecip), s.X), x0), s.At(m.SqrtRecipM1))
			prev := make([]float64, len(m.AlphaBarPrev))
			dir := make([]float64, len(m.AlphaBarPrev))
			for i, a := range m.AlphaBarPrev {
				prev[i], dir[i] = math.Sqrt(a), math.Sqrt(1-a)
			}
			next := Add(Mul(s.At(prev), x0), Mul(s.At(dir), e))
			return diffusion.Out{X: next, Aux: []*Node{AddScalar(s.Aux[0], 1)}, Estimate: x0}
		}})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// The driver runs DDIM exactly as the sampler does: same x_T from the seed, same steps.
func TestDriverEqualsSamplerDDIM(t *testing.T) {
	p := problem(t)
	got, err := ddim(t, p, 20).Solve(context.Background(), p.Y, 7, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	smp, err := sampler.New(p.Backend, p.Prior, p.Schedule, p.Operator, p.Noise,
		sampler.Config{Kind: sampler.DDIM, Steps: 20, Guidance: guidance.Config{Method: guidance.Vanilla}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := smp.Run(context.Background(), p.Y, p.XShape, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tensors.MustCopyFlatData[float64](got.X), tensors.MustCopyFlatData[float64](want.X)
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12 {
			t.Fatalf("value %d: driver %v, sampler %v", i, a[i], b[i])
		}
	}
	if got.NFE != 20 || len(got.Distances) != 3 {
		t.Errorf("NFE %d, %d distances", got.NFE, len(got.Distances))
	}
}

// A run checkpointed at step 8 and resumed ends bit for bit where the whole run ends, aux
// state included.
func TestDriverResumes(t *testing.T) {
	p := problem(t)
	run := ddim(t, p, 20)
	whole, err := run.Solve(context.Background(), p.Y, 3, solver.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	var saved *solver.State
	_, err = run.Solve(context.Background(), p.Y, 3, solver.Hooks{CheckpointEvery: 8, Checkpoint: func(s solver.State) error {
		if saved == nil {
			saved = &s
		}
		return nil
	}})
	if err != nil || saved == nil || saved.Done != 8 || len(saved.Aux) != 1 {
		t.Fatalf("checkpoint: %v %+v", err, saved)
	}
	if c := tensors.MustCopyFlatData[float64](saved.Aux[0]); c[0] != 8 {
		t.Errorf("aux counter at the checkpoint is %v, want 8", c[0])
	}
	resumed, err := run.Solve(context.Background(), p.Y, 3, solver.Hooks{Resume: saved, Progress: func(done, _ int, _ []float64) {
		if done <= 8 {
			t.Errorf("the resumed run reports step %d; it should start after the checkpoint's 8", done)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := tensors.MustCopyFlatData[float64](whole.X), tensors.MustCopyFlatData[float64](resumed.X)
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			t.Fatalf("value %d: whole %v, resumed %v", i, a[i], b[i])
		}
	}
	// A resume state without aux is refused with a message.
	bad := *saved
	bad.Aux = nil
	if _, err := run.Solve(context.Background(), p.Y, 3, solver.Hooks{Resume: &bad}); err == nil {
		t.Error("a resume state without aux was accepted")
	}
}

// StepWith with the draws a seeded step makes reproduces that step; a missing draw is an
// error, not a panic. (The DDIM test step draws nothing, so a noisy step is written here.)
func TestStepWithReplaysDraws(t *testing.T) {
	p := problem(t)
	run, err := diffusion.Prepare(diffusion.Spec{Name: "noisy", Problem: p, Steps: 3,
		Step: func(s *diffusion.Step) diffusion.Out {
			return diffusion.Out{X: Add(MulScalar(s.X, 0.5), Add(s.Normal(s.X.Shape()), MulScalar(s.Uniform(s.X.Shape()), 3)))}
		}})
	if err != nil {
		t.Fatal(err)
	}
	x := tensors.FromShape(p.XShape)
	n := make([]float64, p.XShape.Size())
	u := make([]float64, p.XShape.Size())
	for i := range n {
		n[i], u[i] = float64(i), 1
	}
	nt := tensors.FromFlatDataAndDimensions(n, p.XShape.Dimensions...)
	ut := tensors.FromFlatDataAndDimensions(u, p.XShape.Dimensions...)
	next, _, _, err := run.(diffusion.Stepper).StepWith(1, x, nil, p.Y, []*tensors.Tensor{nt, ut})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range tensors.MustCopyFlatData[float64](next) {
		if v != float64(i)+3 {
			t.Fatalf("value %d is %v, want %v", i, v, float64(i)+3)
		}
	}
	if _, _, _, err := run.(diffusion.Stepper).StepWith(1, x, nil, p.Y, []*tensors.Tensor{nt}); err == nil {
		t.Error("a step with a missing draw ran")
	}
}

// A step that leaves the state non-finite — in x or only in an aux tensor — stops the run
// with a DivergedError naming the step and its diffusion timestep.
func TestDriverStopsOnDivergence(t *testing.T) {
	p := problem(t)
	for _, inAux := range []bool{false, true} {
		run, err := diffusion.Prepare(diffusion.Spec{Name: "blows-up", Problem: p, Steps: 6, Timesteps: []int{50, 40, 30, 20, 10, 0}, Aux: 1,
			Init: func(s *diffusion.Start) (*Node, []*Node) {
				return s.Normal(p.XShape), []*Node{Zeros(s.Y.Graph(), p.XShape)}
			},
			Step: func(s *diffusion.Step) diffusion.Out {
				// 1/(k − 3): +Inf at loop step 3.
				bad := Inverse(ConvertDType(AddScalar(s.K, -3), s.X.DType()))
				x, aux := s.X, AddScalar(s.Aux[0], 1)
				if inAux {
					aux = Add(aux, bad)
				} else {
					x = Add(x, bad)
				}
				return diffusion.Out{X: x, Aux: []*Node{aux}}
			}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = run.Solve(context.Background(), p.Y, 1, solver.Hooks{})
		var div *solver.DivergedError
		if !errors.As(err, &div) || div.Step != 3 || div.Timestep != 20 {
			t.Errorf("non-finite in aux %v: %v (%+v)", inAux, err, div)
		}
	}
}
