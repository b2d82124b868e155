package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/task"
)

// smallRun is a run of the shipped prior on 2 digits with few steps.
func smallRun(t *testing.T, name string, steps int) (*dag.Registry, *dag.Graph, RunSpec) {
	t.Helper()
	reg, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	tk, err := task.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	spec := RunSpec{Name: name, Task: tk, Builtin: BuiltinMNIST, N: 2, Steps: steps, Batch: 2, Seed: 3, Backend: "embedded", Out: t.TempDir()}
	g, err := RunGraph(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Validate(g); err != nil {
		t.Fatal(err)
	}
	return reg, g, spec
}

// The run graph writes every output the run folder promises, its metrics agree with the
// images it saved, and a rerun reuses every cacheable node.
func TestRunGraphWritesTheRunFolderAndRerunsFromCache(t *testing.T) {
	reg, g, spec := smallRun(t, "sr4", 6)
	cache, err := dag.OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	r := &dag.Runner{Registry: reg, Cache: cache}
	res, err := r.Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"grid.png", "metrics.json", "input/00000.png", "recon/00001.png", "label/00001.png",
		"progress/snapshots.png", "progress/residual.png", "progress/residual.html", "progress/psnr.png", "progress/assets/echarts.min.js", "progress/trace.json"} {
		if _, err := os.Stat(filepath.Join(spec.Out, f)); err != nil {
			t.Errorf("run folder: %v", err)
		}
	}
	var m struct {
		Method  string
		Images  []ImageMetrics
		Summary map[string]Stat
	}
	data, err := os.ReadFile(filepath.Join(spec.Out, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Method != "dps" || len(m.Images) != 2 || m.Images[0].NFE != 6 || m.Summary["nfe"].Mean != 6 || m.Summary["psnr"].Mean <= 0 || m.Summary["ssim"].Mean == 0 || m.Summary["seconds"].Mean <= 0 {
		t.Fatalf("metrics.json: %s", data)
	}
	// PSNR recomputed from the recon node's output against the truth.
	recon := mustValue[*Images](t, res, "sample.recon")
	truth := mustValue[*Images](t, res, "truth.images")
	var mse float64
	for j, v := range recon.Image(1) {
		d := float64(max(-1, min(1, v)) - truth.Image(1)[j])
		mse += d * d / float64(recon.Size())
	}
	if want := 10 * math.Log10(4/mse); math.Abs(m.Images[1].PSNR-want) > 1e-4 {
		t.Errorf("metrics.json PSNR of image 1 %.5f, recomputed %.5f", m.Images[1].PSNR, want)
	}
	tr := mustValue[*Trace](t, res, "sample.trace")
	if tr.Steps != 6 || len(tr.Residual) != 6 || !slices.Equal(tr.PSNRSteps, []int{6}) || len(tr.Frames) != 1 {
		t.Errorf("trace: %d steps, %d residuals, PSNR at %v, %d frames", tr.Steps, len(tr.Residual), tr.PSNRSteps, len(tr.Frames))
	}

	res2, err := r.Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	for id, st := range res2.Status {
		k, _ := reg.Kind(g.Node(id).Kind)
		if want := dag.Status("cached"); !k.NoCache && st != want {
			t.Errorf("rerun: node %s %s, want %s", id, st, want)
		}
	}
}

// A sample node stopped mid-run resumes from its scratch checkpoint and ends with the
// same bytes as an uninterrupted run.
func TestSampleResumesAfterInterruptWithTheSameBytes(t *testing.T) {
	reg, g, _ := smallRun(t, "inpaint-box", 8)
	g.Node("sample").Params["checkpoint_every"] = 3
	full, res, resumedFrom := interruptAndResume(t, reg, withoutSave(g), 5)
	if resumedFrom != 4 {
		t.Errorf("the resumed run's first step was %d, want 4 (after the checkpoint at 3)", resumedFrom)
	}
	a, b := mustValue[*Images](t, full, "sample.recon"), mustValue[*Images](t, res, "sample.recon")
	for i := range a.Pixels {
		if math.Float32bits(a.Pixels[i]) != math.Float32bits(b.Pixels[i]) {
			t.Fatalf("pixel %d: resumed %v, uninterrupted %v", i, b.Pixels[i], a.Pixels[i])
		}
	}
}

// withoutSave drops the save node (it writes into the run folder).
func withoutSave(g *dag.Graph) *dag.Graph {
	out := *g
	out.Nodes = slices.DeleteFunc(slices.Clone(g.Nodes), func(n *dag.Node) bool { return n.Kind == "save" })
	return &out
}

// interruptAndResume runs g (2 images) once uninterrupted, once cancelled after stopAt
// steps of its sample node and once resumed with the cancelled run's cache; it returns the
// uninterrupted and resumed results and the first step the resumed run reported.
func interruptAndResume(t *testing.T, reg *dag.Registry, g *dag.Graph, stopAt int) (full, resumed *dag.Result, resumedFrom int) {
	t.Helper()
	cacheA, _ := dag.OpenCache(filepath.Join(t.TempDir(), "a"))
	full, err := (&dag.Runner{Registry: reg, Cache: cacheA}).Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	cacheB, _ := dag.OpenCache(filepath.Join(t.TempDir(), "b"))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := &dag.Runner{Registry: reg, Cache: cacheB, Events: func(e dag.Event) {
		if e.Node == "sample" && e.Type == "progress" && e.Done >= 2*stopAt { // progress counts image-steps
			cancel()
		}
	}}
	if _, err := stopped.Run(ctx, g); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: error %v, want context.Canceled", err)
	}
	resumed, err = (&dag.Runner{Registry: reg, Cache: cacheB, Events: func(e dag.Event) {
		if e.Node == "sample" && e.Type == "progress" && resumedFrom == 0 {
			resumedFrom = e.Done / 2
		}
	}}).Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	return full, resumed, resumedFrom
}

func mustValue[T any](t *testing.T, res *dag.Result, ref string) T {
	t.Helper()
	v, err := res.Value(ref)
	if err != nil {
		t.Fatal(err)
	}
	return v.(T)
}

// With restarts, each image is the run (of those a single-run sample would make with the
// restarts' seeds) whose final ‖y − A(x̂0)‖ is smallest.
func TestRestartsKeepTheRunWithTheSmallestResidual(t *testing.T) {
	reg, g, _ := smallRun(t, "phase-retrieval", 5)
	g = withoutSave(g)
	run := func(restarts int, seed uint64) (*Images, *Trace) {
		g := g.Clone()
		g.Node("sample").Params["restarts"] = restarts
		g.Node("sample").Seed = &seed
		res, err := (&dag.Runner{Registry: reg}).Run(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		return mustValue[*Images](t, res, "sample.recon"), mustValue[*Trace](t, res, "sample.trace")
	}
	seed := *g.Node("sample").Seed
	a, ta := run(1, seed)
	b, tb := run(1, seed+restartSeedStride)
	c, tc := run(2, seed)
	picked := map[string]int{}
	for i := range c.N {
		want, from, final := a, "first", ta.Final[i]
		if tb.Final[i] < ta.Final[i] {
			want, from, final = b, "second", tb.Final[i]
		}
		picked[from]++
		if tc.Final[i] != final || !slices.Equal(c.Image(i), want.Image(i)) {
			t.Errorf("image %d: kept final residual %v, want the %s run's %v (runs: %v, %v)", i, tc.Final[i], from, final, ta.Final[i], tb.Final[i])
		}
	}
	t.Logf("kept runs: %v", picked)
}

// A RunSpec with no images or batch, or negative steps, is an error, not a silent default;
// Steps 0 means each solver's own default (DPSFamilySteps for the DPS family).
func TestRunGraphRefusesZeroSizes(t *testing.T) {
	tk, err := task.Preset("sr4")
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []RunSpec{{Task: tk, Steps: 10, Batch: 1}, {Task: tk, N: 1, Batch: 1, Steps: -1}, {Task: tk, N: 1, Steps: 10}, {Task: tk, N: 1, Steps: 10, Batch: 1, Restarts: -1}} {
		if _, err := RunGraph(spec); err == nil || !strings.Contains(err.Error(), "at least") {
			t.Errorf("RunGraph(%+v): error %v", spec, err)
		}
	}
	for _, c := range []struct {
		solver string
		steps  any
	}{{"", DPSFamilySteps}, {"vanilla", DPSFamilySteps}, {"ddrm", 20}, {"reddiff", 1000}} {
		spec := RunSpec{Task: tk, N: 1, Batch: 1}
		sv, err := spec.SolverSpec(c.solver, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, params, err := sv.Solver()
		if err != nil {
			t.Fatal(err)
		}
		if params["steps"] != c.steps {
			t.Errorf("solver %q with Steps 0 runs %v steps, want %v", c.solver, params["steps"], c.steps)
		}
	}
	// The preset's scale is DPS's step size: ΠGDM's scale param keeps its own default.
	for name, want := range map[string]float64{"dps": tk.Conditioning.Params.Scale, "pigdm": 1} {
		sv, err := RunSpec{Task: tk, N: 1, Batch: 1}.SolverSpec(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, params, _ := sv.Solver(); params["scale"] != want {
			t.Errorf("%s runs with scale %v, want %v", name, params["scale"], want)
		}
	}
}
