package dps_test

import (
	"context"
	"github.com/dpsflow/dpsflow/nodes/solver/solvertest"
	"math"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/dps"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// problem is solvertest's: 3 samples of a 1×4×4 Gaussian prior under 2× average-pool SR.
func problem(t *testing.T) *solver.Problem { return solvertest.SRProblem(t) }

// Each family member through the registry is exactly the sampler it stands for, and the
// old method names select the same solvers.
func TestFamilyEqualsSampler(t *testing.T) {
	p := problem(t)
	for _, c := range []struct {
		name   string
		params map[string]any
		cfg    sampler.Config
	}{
		{"ps", map[string]any{"steps": 20, "scale": 0.5}, sampler.Config{Steps: 20, Guidance: guidance.Config{Method: guidance.PS, Scale: 0.5}}},
		{"dps+", map[string]any{"steps": 20, "scale": 0.5, "num_sampling": 3}, sampler.Config{Steps: 20, Guidance: guidance.Config{Method: guidance.PSPlus, Scale: 0.5, PlusSamples: 3}}},
		{"mcg", map[string]any{"steps": 20, "scale": 0.5, "rule": "paper"}, sampler.Config{Steps: 20, Guidance: guidance.Config{Method: guidance.MCG, Scale: 0.5, Rule: guidance.RulePaper}}},
		{"projection", map[string]any{"steps": 20, "sampler": "ddim", "eta": 0.5}, sampler.Config{Kind: sampler.DDIM, Eta: 0.5, Steps: 20, Guidance: guidance.Config{Method: guidance.Projection}}},
		{"vanilla", map[string]any{"steps": 20, "return": "x0hat", "clip": false}, sampler.Config{Steps: 20, Return: sampler.ReturnX0Hat, NoClip: true, Guidance: guidance.Config{Method: guidance.Vanilla}}},
	} {
		s, err := solver.Lookup(c.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := solver.Solve(context.Background(), s, p, c.params, 5, solver.Hooks{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		smp, err := sampler.New(p.Backend, p.Prior, p.Schedule, p.Operator, p.Noise, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		want, err := smp.Run(context.Background(), p.Y, p.XShape, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, b := tensors.MustCopyFlatData[float64](got.X), tensors.MustCopyFlatData[float64](want.X)
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				t.Fatalf("%s: value %d is %v, the sampler's %v", c.name, i, a[i], b[i])
			}
		}
		if got.NFE != 20 || len(got.Distances) != 3 {
			t.Errorf("%s: NFE %d, %d distances", c.name, got.NFE, len(got.Distances))
		}
	}
}

// mcg and projection need a projection: refused for phase retrieval before anything runs.
func TestProjectionSolversRefuseOperatorsWithout(t *testing.T) {
	p := problem(t)
	pr, _ := operator.NewPhaseRetrieval(2)
	p.Operator, p.Y = pr, nil
	for _, name := range []string{"mcg", "projection"} {
		s, _ := solver.Lookup(name)
		err := solver.Check(s, p, nil)
		if err == nil || !strings.Contains(err.Error(), "solver "+name+" needs the operator's projection, which phase_retrieval does not offer") {
			t.Errorf("%s on phase retrieval: %v", name, err)
		}
	}
	s, _ := solver.Lookup("dps")
	if err := solver.Check(s, p, nil); err != nil {
		t.Errorf("dps on phase retrieval: %v", err)
	}
}

// InFamily is true for the five family members and false for a solver made of a config.
func TestInFamily(t *testing.T) {
	for _, s := range dps.Solvers() {
		if !dps.InFamily(s) {
			t.Errorf("%s is not in the family", s.Info().Name)
		}
	}
	if dps.InFamily(dps.FromConfig("mine", sampler.Config{})) {
		t.Error("a FromConfig solver is in the family")
	}
}
