package builtin_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	_ "github.com/dpsflow/dpsflow/nodes/solver/builtin"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// crossMeta is testdata/solvers/steps.py's meta.json.
type crossMeta struct {
	Shape     []int       `json:"shape"`
	SigmaY    float64     `json:"sigma_y"`
	Beta      []float64   `json:"beta"`
	PriorMean string      `json:"prior_mean"`
	PriorVar  string      `json:"prior_var"`
	Cases     []crossCase `json:"cases"`
}

type crossCase struct {
	Name   string         `json:"name"`
	Solver string         `json:"solver"`
	Params map[string]any `json:"params"`
	K      int            `json:"k"`
	Steps  int            `json:"steps"`
	T      int            `json:"t"`
	TNext  int            `json:"t_next"`
	Note   string         `json:"note"`
	X      string         `json:"x"`
	Y      string         `json:"y"`
	Aux    []string       `json:"aux"`
	Draws  []struct {
		File string `json:"file"`
		// As is how the draw reaches the step: "pixel" as saved; "pixel_stack" as the
		// draws along the file's first axis, in order; "coef_full" as Vᵀw (this operator's
		// SVD); "coef_lead" as the leading (row-space) block of Vᵀw.
		As string `json:"as"`
	} `json:"draws"`
	Next        string   `json:"next"`
	Estimate    string   `json:"estimate"`
	NextAux     []string `json:"next_aux"`
	PerturbDraw int      `json:"perturb_draw"`
}

// crossTol is the float64 agreement asked of every compared value.
const crossTol = 1e-9

// TestCrossCheckPyTorch runs one loop step of each diffusion solver on a Gaussian-prior ×2
// average-pool SR problem and compares it with the independent PyTorch implementation in
// testdata/solvers/steps.py (written from the papers' official codes), given the same x_t,
// y, state and random draws. It also perturbs one draw per case and checks that the
// comparison then fails, so that it is not vacuous.
func TestCrossCheckPyTorch(t *testing.T) {
	dir := t.TempDir()
	script, err := filepath.Abs("../../../testdata/solvers/steps.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("running %s with /usr/bin/python3 failed (%v): %s\nit needs Debian's python3 with PyTorch and NumPy: "+
			"apt-get install python3 python3-torch python3-numpy — this test does not skip", script, err, stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta crossMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("meta.json: %v", err)
	}
	read := func(name string) *tensors.Tensor {
		t.Helper()
		x, err := npy.Read(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	flat := func(x *tensors.Tensor) []float64 {
		t.Helper()
		v, err := tensors.CopyFlatData[float64](x)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	be, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Beta) != 3 {
		t.Fatalf("meta.json: beta %v, want [start, end, T]", meta.Beta)
	}
	sched, err := schedule.Linear(int(meta.Beta[2]), meta.Beta[0], meta.Beta[1])
	if err != nil {
		t.Fatal(err)
	}
	gmm, err := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{flat(read(meta.PriorMean))},
		[][]float64{flat(read(meta.PriorVar))}, meta.Shape[1:])
	if err != nil {
		t.Fatal(err)
	}
	sr, err := operator.NewAvgPoolSR(2)
	if err != nil {
		t.Fatal(err)
	}
	nm, err := noise.NewGaussian(meta.SigmaY)
	if err != nil {
		t.Fatal(err)
	}
	xShape := shapes.Make(dtypes.Float64, meta.Shape...)
	problem := &solver.Problem{Prior: gmm, Schedule: sched, Operator: sr, Noise: nm, XShape: xShape, Backend: be}

	// The draws are saved in pixel space; coefficient draws are this operator's Vᵀw (see
	// steps.py: the projections V Vᵀw do not depend on the SVD's conventions).
	toCoef, err := graph.NewExec(be, func(w *graph.Node) *graph.Node { return sr.Vt(w) })
	if err != nil {
		t.Fatal(err)
	}
	yShape, err := sr.MeasurementShape(xShape)
	if err != nil {
		t.Fatal(err)
	}
	toLead, err := graph.NewExec(be, func(w *graph.Node) *graph.Node {
		d := yShape.Dimensions
		return graph.Slice(sr.Vt(w), graph.AxisRange(), graph.AxisRange(), graph.AxisRange(0, d[2]), graph.AxisRange(0, d[3]))
	})
	if err != nil {
		t.Fatal(err)
	}
	draw := func(w *tensors.Tensor, as string) *tensors.Tensor {
		t.Helper()
		switch as {
		case "pixel":
			return w
		case "coef_full":
			return toCoef.MustExec(w)[0]
		case "coef_lead":
			return toLead.MustExec(w)[0]
		}
		t.Fatalf("unknown draw kind %q", as)
		return nil
	}
	maxDiff := func(got *tensors.Tensor, want []float64) float64 {
		g := flat(got)
		if len(g) != len(want) {
			t.Fatalf("%d values, want %d", len(g), len(want))
		}
		m := 0.0
		for i := range g {
			d := math.Abs(g[i] - want[i])
			if math.IsNaN(d) {
				return math.Inf(1)
			}
			m = max(m, d)
		}
		return m
	}

	seen := map[string]bool{}
	for _, c := range meta.Cases {
		seen[c.Solver] = true
		t.Run(c.Name, func(t *testing.T) {
			s, err := solver.Lookup(c.Solver)
			if err != nil {
				t.Fatal(err)
			}
			params, err := solver.Resolve(s, c.Params)
			if err != nil {
				t.Fatal(err)
			}
			if err := solver.Check(s, problem, params); err != nil {
				t.Fatal(err)
			}
			run, err := s.Prepare(problem, params)
			if err != nil {
				t.Fatal(err)
			}
			st, ok := run.(diffusion.Stepper)
			if !ok {
				t.Fatalf("solver %s's run is not a diffusion.Stepper", c.Solver)
			}
			x, y := read(c.X), read(c.Y)
			var aux []*tensors.Tensor
			for _, a := range c.Aux {
				aux = append(aux, read(a))
			}
			// pixel[i] is draw i as saved (pixel space), kinds[i] how it reaches the step.
			var pixel, draws []*tensors.Tensor
			var kinds []string
			for _, d := range c.Draws {
				w := read(d.File)
				if d.As != "pixel_stack" {
					pixel, kinds = append(pixel, w), append(kinds, d.As)
					continue
				}
				dims := w.Shape().Dimensions
				vals, per := flat(w), w.Shape().Size()/dims[0]
				for i := range dims[0] {
					pixel = append(pixel, tensors.FromFlatDataAndDimensions(vals[i*per:(i+1)*per], dims[1:]...))
					kinds = append(kinds, "pixel")
				}
			}
			for i := range pixel {
				draws = append(draws, draw(pixel[i], kinds[i]))
			}
			next, nextAux, est, err := st.StepWith(c.K, x, aux, y, draws)
			if err != nil {
				t.Fatal(err)
			}
			type cmp struct {
				what string
				got  *tensors.Tensor
				file string
			}
			cmps := []cmp{{"x_{t-1}", next, c.Next}, {"estimate", est, c.Estimate}}
			if len(nextAux) != len(c.NextAux) {
				t.Fatalf("the step returned %d aux tensors, the reference %d", len(nextAux), len(c.NextAux))
			}
			for i := range nextAux {
				cmps = append(cmps, cmp{fmt.Sprintf("aux %d", i), nextAux[i], c.NextAux[i]})
			}
			for _, m := range cmps {
				d := maxDiff(m.got, flat(read(m.file)))
				t.Logf("%s (%s, k=%d of %d, %s): max |Go − torch| = %.3g", m.what, c.Solver, c.K, c.Steps, c.Note, d)
				if !(d <= crossTol) {
					t.Errorf("%s: max |Go − torch| = %.3g > %g", m.what, d, crossTol)
				}
			}

			// Not vacuous: +1 on one entry of one draw (in pixel space) moves x_{t-1} away from
			// the reference by far more than the tolerance (steps.py checks the same on its side).
			if len(pixel) == 0 {
				t.Fatal("the case has no random draws to perturb")
			}
			i := c.PerturbDraw
			w := flat(pixel[i])
			w[1] += 1
			pd := append([]*tensors.Tensor(nil), draws...)
			pd[i] = draw(tensors.FromFlatDataAndDimensions(w, pixel[i].Shape().Dimensions...), kinds[i])
			pnext, _, _, err := st.StepWith(c.K, x, aux, y, pd)
			if err != nil {
				t.Fatal(err)
			}
			d := maxDiff(pnext, flat(read(c.Next)))
			t.Logf("with draw %d perturbed: max |Go − torch| = %.3g", i, d)
			if !(d > 1e-5) {
				t.Errorf("with draw %d perturbed, x_{t-1} still matches the reference (max diff %.3g): the comparison is vacuous", i, d)
			}
		})
	}
	for _, name := range []string{"ddrm", "pigdm", "diffpir", "reddiff", "daps"} {
		if !seen[name] {
			t.Errorf("steps.py wrote no case for %s", name)
		}
	}
}
