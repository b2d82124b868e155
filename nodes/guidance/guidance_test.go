package guidance_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/xla"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// scaleOp is A(x) = 2x, a linear operator with an obvious projection.
type scaleOp struct{}

func (scaleOp) Name() string                                          { return "scale2" }
func (scaleOp) MeasurementShape(x shapes.Shape) (shapes.Shape, error) { return x, nil }
func (scaleOp) Apply(x *Node) *Node                                   { return MulScalar(x, 2) }
func (scaleOp) Adjoint(y *Node) *Node                                 { return MulScalar(y, 2) }
func (scaleOp) Project(x, y *Node) *Node                              { return DivScalar(y, 2) }

// noProjOp is the same operator without Project.
type noProjOp struct{}

func (noProjOp) Name() string                                          { return "scale2-noproj" }
func (noProjOp) MeasurementShape(x shapes.Shape) (shapes.Shape, error) { return x, nil }
func (noProjOp) Apply(x *Node) *Node                                   { return MulScalar(x, 2) }

// runStep applies a method to a toy step where x̂0 = tanh(x_t) (so the gradient goes
// through a nonlinearity) and x' = 0.9 x_t.
func runStep(t *testing.T, c guidance.Config, xt, y []float64, dims ...int) []float64 {
	t.Helper()
	backend, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	nm, err := noise.NewGaussian(0.1)
	if err != nil {
		t.Fatal(err)
	}
	c, err = c.Validate(scaleOp{})
	if err != nil {
		t.Fatal(err)
	}
	exec, err := NewExec(backend, func(xt, y *Node) *Node {
		i := 0 // ps+'s jitter draws: 0, 1/n, 2/n, …
		next, _ := c.Apply(guidance.Step{
			Xt: xt, X0Hat: Tanh(xt), XPrev: MulScalar(xt, 0.9), Y: y, Op: scaleOp{}, Noise: nm,
			NoisyY: func() *Node { return y },
			Uniform: func(s shapes.Shape) *Node {
				u := MulScalar(Ones(xt.Graph(), s), float64(i)/float64(c.PlusSamples))
				i++
				return u
			},
		})
		return next
	})
	if err != nil {
		t.Fatal(err)
	}
	out := exec.MustExec1(tensors.FromFlatDataAndDimensions(xt, dims...), tensors.FromFlatDataAndDimensions(y, dims...))
	return tensors.MustCopyFlatData[float64](out)
}

func randVec(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// The reference rule with scale s and the paper rule with ζ′ = s/2 are the same step:
// (ζ′/‖r‖)·∇‖r‖² = 2ζ′·∇‖r‖.
func TestPaperRuleIsReferenceRuleHalved(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xt, y := randVec(rng, 2*6), randVec(rng, 2*6)
	ref := runStep(t, guidance.Config{Method: guidance.PS, Scale: 0.8}, xt, y, 2, 6)
	paper := runStep(t, guidance.Config{Method: guidance.PS, Scale: 0.4, Rule: guidance.RulePaper}, xt, y, 2, 6)
	for i := range ref {
		if math.Abs(ref[i]-paper[i]) > 1e-12 {
			t.Fatalf("element %d: reference %g, paper %g", i, ref[i], paper[i])
		}
	}
}

// The DPS step matches the closed form: x' − s·∇‖y − 2 tanh(x)‖ with
// ∇ = −2 (1 − tanh²x) (y − 2 tanh x) / ‖y − 2 tanh x‖, per sample.
func TestPSStepMatchesClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const b, d, s = 3, 5, 0.7
	xt, y := randVec(rng, b*d), randVec(rng, b*d)
	got := runStep(t, guidance.Config{Method: guidance.PS, Scale: s}, xt, y, b, d)
	for i := range b {
		var norm float64
		for j := range d {
			r := y[i*d+j] - 2*math.Tanh(xt[i*d+j])
			norm += r * r
		}
		norm = math.Sqrt(norm)
		for j := range d {
			k := i*d + j
			th := math.Tanh(xt[k])
			grad := -2 * (1 - th*th) * (y[k] - 2*th) / norm
			if want := 0.9*xt[k] - s*grad; math.Abs(got[k]-want) > 1e-9 {
				t.Fatalf("sample %d element %d: got %g, want %g", i, j, got[k], want)
			}
		}
	}
}

// Per-sample norms make a sample's step independent of the rest of the batch; the
// reference's batch-wide norm does not.
func TestPerSampleNormsIgnoreTheRestOfTheBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	xt, y := randVec(rng, 2*4), randVec(rng, 2*4)
	other := append([]float64{}, y...)
	for j := 4; j < 8; j++ {
		other[j] += 3 // change sample 1 only
	}
	for _, batchNorm := range []bool{false, true} {
		c := guidance.Config{Method: guidance.PS, Scale: 1, BatchNorm: batchNorm}
		a, b := runStep(t, c, xt, y, 2, 4), runStep(t, c, xt, other, 2, 4)
		changed := false
		for j := range 4 {
			changed = changed || math.Abs(a[j]-b[j]) > 1e-12
		}
		if changed != batchNorm {
			t.Fatalf("batch_norm=%v: sample 0 changed=%v when only sample 1's measurement changed", batchNorm, changed)
		}
	}
}

func TestVanillaProjectionMCGAndPSPlus(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	xt, y := randVec(rng, 4), randVec(rng, 4)
	vanilla := runStep(t, guidance.Config{Method: guidance.Vanilla}, xt, y, 1, 4)
	proj := runStep(t, guidance.Config{Method: guidance.Projection}, xt, y, 1, 4)
	mcg := runStep(t, guidance.Config{Method: guidance.MCG, Scale: 1}, xt, y, 1, 4)
	ps := runStep(t, guidance.Config{Method: guidance.PS, Scale: 1}, xt, y, 1, 4)
	plus := runStep(t, guidance.Config{Method: guidance.PSPlus, Scale: 1}, xt, y, 1, 4)
	for j := range 4 {
		if vanilla[j] != 0.9*xt[j] {
			t.Fatalf("vanilla changed x': %g vs %g", vanilla[j], 0.9*xt[j])
		}
		// Our operator's projection ignores x: both land exactly on y/2.
		if proj[j] != y[j]/2 || mcg[j] != y[j]/2 {
			t.Fatalf("projection %g, mcg %g, want %g", proj[j], mcg[j], y[j]/2)
		}
	}
	same := true
	for j := range 4 {
		same = same && math.Abs(ps[j]-plus[j]) < 1e-12
	}
	if same {
		t.Fatal("ps+ with jittered x̂0 gave exactly the ps step")
	}
}

func TestValidateErrorsNameTheParameter(t *testing.T) {
	cases := []struct {
		c    guidance.Config
		op   interface{ Name() string }
		want string
	}{
		{guidance.Config{Method: "fancy"}, scaleOp{}, `unknown method "fancy"`},
		{guidance.Config{Method: guidance.PS}, scaleOp{}, "positive finite scale"},
		{guidance.Config{Method: guidance.PS, Scale: -1}, scaleOp{}, "scale"},
		{guidance.Config{Method: guidance.PS, Scale: 1, Rule: "fast"}, scaleOp{}, `unknown rule "fast"`},
		{guidance.Config{Method: guidance.Projection}, noProjOp{}, "needs the operator's projection"},
		{guidance.Config{Method: guidance.PSPlus, Scale: 1, PlusSamples: -2}, scaleOp{}, "plus_samples"},
	}
	for _, c := range cases {
		var err error
		switch op := c.op.(type) {
		case scaleOp:
			_, err = c.c.Validate(op)
		case noProjOp:
			_, err = c.c.Validate(op)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want it to mention %q", c.c, err, c.want)
		}
	}
}
