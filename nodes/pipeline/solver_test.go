package pipeline

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/operator"
)

// Each image of a run gets its own mask, drawn from (seed, index): masks/ holds four
// different masks, each the one operator.New draws with operator.ImageSeed(seed, i), the
// measurement of image i is masked by its own, and a second run writes the same files.
func TestPerImageMasksFromSeedAndIndex(t *testing.T) {
	reg, g, spec := smallRun(t, "inpaint-box", 2)
	spec.N = 4
	g2, err := RunGraph(spec)
	if err != nil {
		t.Fatal(err)
	}
	g = g2
	res, err := (&dag.Runner{Registry: reg}).Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	opSpec := mustValue[OperatorSpec](t, res, "operator.operator")
	m := mustValue[*Measurement](t, res, "measure.measurement")
	seen := map[string]bool{}
	for i := range 4 {
		op, err := operator.New(opSpec.Name, 32, 32, opSpec.Params, operator.ImageSeed(opSpec.Seed, i))
		if err != nil {
			t.Fatal(err)
		}
		want := op.(operator.Masked).Mask()
		img, err := readPNGGrey(filepath.Join(spec.Out, "masks", "0000"+string(rune('0'+i))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		key := ""
		for j, v := range want {
			if (img[j] > 127) != (v == 1) {
				t.Fatalf("masks/%05d.png pixel %d is %d, the mask of (seed, %d) is %v", i, j, img[j], i, v)
			}
			// y = mask ⊙ x + noise: unobserved pixels hold noise only (|n| < 5σ).
			if v == 0 && math.Abs(float64(m.Row(i)[j])) > 0.25 {
				t.Fatalf("image %d pixel %d is outside its mask but y = %v", i, j, m.Row(i)[j])
			}
			key += string(rune('0' + int(v)))
		}
		seen[key] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d different masks among 4 images, want 4", len(seen))
	}
	// A rerun into another folder writes the same masks.
	spec.Out = t.TempDir()
	g3, _ := RunGraph(spec)
	if _, err := (&dag.Runner{Registry: reg}).Run(context.Background(), g3); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		name := filepath.Join("masks", "0000"+string(rune('0'+i))+".png")
		a, _ := os.ReadFile(filepath.Join(g.Node("save").Params["dir"].(string), name))
		b, _ := os.ReadFile(filepath.Join(spec.Out, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs of the same spec", name)
		}
	}
}

func readPNGGrey(path string) ([]uint8, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	out := make([]uint8, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, _, _, _ := img.At(x, y).RGBA()
			out = append(out, uint8(r>>8))
		}
	}
	return out, nil
}

// A run file of the previous version — sample fed by the wired likelihood, tweedie and
// update nodes — still runs, and gives the same bytes as the named solver it spells out.
func TestWiredCompositionEqualsNamedSolver(t *testing.T) {
	reg, g, _ := smallRun(t, "sr4", 4)
	g = withoutSave(g)
	named, err := (&dag.Runner{Registry: reg}).Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	wired := g.Clone()
	wired.Nodes = nil
	for _, n := range g.Nodes {
		if n.Kind != "solver" {
			wired.Nodes = append(wired.Nodes, n)
		}
	}
	wired.Add("likelihood", "likelihood", map[string]any{"method": "ps", "scale": 4.0}, nil)
	wired.Add("tweedie", "tweedie", map[string]any{"clip": true}, nil)
	wired.Add("update", "update", map[string]any{"kind": "ddpm", "steps": 4}, nil)
	s := wired.Node("sample")
	delete(s.Inputs, "solver")
	s.Inputs["likelihood"], s.Inputs["tweedie"], s.Inputs["update"] = "likelihood.likelihood", "tweedie.tweedie", "update.update"
	if err := reg.Validate(wired); err != nil {
		t.Fatal(err)
	}
	res, err := (&dag.Runner{Registry: reg}).Run(context.Background(), wired)
	if err != nil {
		t.Fatal(err)
	}
	a, b := mustValue[*Images](t, named, "sample.recon"), mustValue[*Images](t, res, "sample.recon")
	for i := range a.Pixels {
		if math.Float32bits(a.Pixels[i]) != math.Float32bits(b.Pixels[i]) {
			t.Fatalf("pixel %d: wired %v, named solver %v", i, b.Pixels[i], a.Pixels[i])
		}
	}
	// Both at once, or neither, is refused with a message naming the inputs.
	both := wired.Clone()
	both.Add("solver", "solver", map[string]any{"name": "dps"}, nil)
	both.Node("sample").Inputs["solver"] = "solver.solver"
	if _, err := (&dag.Runner{Registry: reg}).Run(context.Background(), both); err == nil {
		t.Error("a sample wired to both a solver and likelihood/tweedie/update ran")
	}
}

// An unknown solver or parameter is refused when the graph is built, naming it.
func TestRunGraphRefusesUnknownSolverAndParam(t *testing.T) {
	_, _, spec := smallRun(t, "sr4", 2)
	for _, c := range []struct {
		solver string
		params map[string]any
		want   string
	}{
		{"fancy", nil, `unknown solver "fancy"`},
		{"dps", map[string]any{"stepz": 3}, "solver dps: unknown param stepz"},
		{"dps", map[string]any{"scale": -1.0}, "solver dps: param scale: -1 must be > 0"},
		{"ps", map[string]any{"rule": "fast"}, `solver dps: param rule: "fast" is not one of reference, paper`},
	} {
		spec.Solver, spec.Params = c.solver, c.params
		if _, err := RunGraph(spec); err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("solver %s %v: error %v, want %q", c.solver, c.params, err, c.want)
		}
	}
}

// A classical solver whose iterate lives on another grid (hio: the padded phase-retrieval
// grid) resumes from its checkpoint after an interrupt and ends with the same bytes.
func TestClassicalSolverResumesOnItsOwnGrid(t *testing.T) {
	reg, g, _ := smallRun(t, "phase-retrieval", 2)
	g = withoutSave(g)
	g.Node("solver").Params = map[string]any{"name": "hio", "params": map[string]any{"iters": 40, "start": "negative"}}
	g.Node("sample").Params["checkpoint_every"] = 5
	full, res, resumedFrom := interruptAndResume(t, reg, g, 17)
	if resumedFrom != 16 {
		t.Errorf("the resumed run's first step was %d, want 16 (after the checkpoint at 15)", resumedFrom)
	}
	a, b := mustValue[*Images](t, full, "sample.recon"), mustValue[*Images](t, res, "sample.recon")
	for i := range a.Pixels {
		if math.Float32bits(a.Pixels[i]) != math.Float32bits(b.Pixels[i]) {
			t.Fatalf("pixel %d: resumed %v, uninterrupted %v", i, b.Pixels[i], a.Pixels[i])
		}
	}
	if tr := mustValue[*Trace](t, res, "sample.trace"); tr.Solver != "hio" || tr.NFE[0] != 0 || tr.Steps != 40 {
		t.Errorf("trace: solver %s, NFE %v, %d steps", tr.Solver, tr.NFE, tr.Steps)
	}
}
