package pipeline

import (
	"context"
	"fmt"
	"image"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/dps"
	"github.com/dpsflow/dpsflow/nodes/task"
)

// RunSpec is what `dpsflow run` asks for.
type RunSpec struct {
	Name string       // graph name, e.g. the task name
	Task *task.Config // operator, noise and guidance
	// Prior: Builtin "mnist", or ModelConfig + Checkpoint.
	Builtin, ModelConfig, Checkpoint string
	// Images is a PNG/JPEG folder or .npy; empty: MNIST test digits from Start.
	Images   string
	Start, N int
	Channels int // of the prior's images (for Images)
	Size     int
	// Steps sets the solver's steps param; 0: DPSFamilySteps for the DPS family, every
	// other solver its own default (its paper's).
	Steps int
	Batch int
	// Restarts samples each image this many times (seeds apart) and keeps the run with the
	// smallest final ‖y − A(x̂0)‖; 0 or 1: once (no restart). For phase retrieval, whose
	// runs often get stuck.
	Restarts int
	Seed     uint64
	Backend  string
	// Solver names the solver (`dpsflow solvers`); empty: the task's conditioning method
	// (ps → dps). Params override its parameters; the task's scale (and ps+'s
	// num_sampling) and Steps fill those it declares.
	Solver string
	Params map[string]any
	// Baseline adds a second solver (e.g. "vanilla") on the same measurement, shown beside
	// the first in the grid and in metrics.json.
	Baseline string
	Out      string // the run folder (absolute); empty: no save node
}

// Seeds of the random parts, apart so that no two share a stream.
const (
	measureSeedOffset = 1_000_003
	sampleSeedOffset  = 2_000_003
)

// RunGraph is the DAG of a run: load → measure → sample → metrics → save, with the prior,
// operator, noise and solver nodes feeding sample.
func RunGraph(r RunSpec) (*dag.Graph, error) {
	if r.Task == nil {
		return nil, fmt.Errorf("run: no task")
	}
	// One message per field, naming it: the CLI reports the one that is wrong.
	for _, c := range []struct {
		name     string
		value, x int
	}{{"N", r.N, 1}, {"Batch", r.Batch, 1}, {"Steps", r.Steps, 0}, {"Restarts", r.Restarts, 0}} {
		if c.value < c.x {
			return nil, fmt.Errorf("run: %s %d must be at least %d", c.name, c.value, c.x)
		}
	}
	g := &dag.Graph{Name: r.Name, Seed: r.Seed}
	r.addInputs(g)
	addProblem(g, "", r.Task, r.Seed)
	main, err := r.SolverSpec(r.Solver, r.Params)
	if err != nil {
		return nil, err
	}
	r.addSolverRun(g, "", "", main)
	save := map[string]string{"measurement": "measure.measurement", "recon": "sample.recon", "trace": "sample.trace",
		"metrics": "metrics.metrics", "truth": "truth.images", "operator": "operator.operator", "solver": "solver.solver", "noise": "noise.noise"}
	if r.Baseline != "" {
		base, err := r.SolverSpec(r.Baseline, nil)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		r.addSolverRun(g, "", "_"+r.Baseline, base)
		save["baseline"] = "sample_" + r.Baseline + ".recon"
		save["baseline_metrics"] = "metrics_" + r.Baseline + ".metrics"
	}
	if r.Out != "" {
		g.Add("save", "save", map[string]any{"dir": r.Out, "run": r.RunRecordParam()}, save)
	}
	return g, nil
}

// addInputs adds the nodes every solver of the run shares: "truth" and "prior".
func (r RunSpec) addInputs(g *dag.Graph) {
	if r.Images == "" {
		g.Add("truth", "mnist", map[string]any{"split": "test", "start": r.Start, "n": r.N}, nil)
	} else {
		g.Add("truth", "images", map[string]any{"path": r.Images, "n": r.N, "channels": r.Channels, "size": r.Size}, nil)
	}
	prior := map[string]any{}
	if r.Builtin != "" {
		prior["builtin"] = r.Builtin
	} else {
		prior["model_config"], prior["checkpoint"] = r.ModelConfig, r.Checkpoint
	}
	g.Add("prior", "prior", prior, nil)
}

// addProblem adds the task's "operator", "noise" and "measure" nodes, their names
// suffixed (a table has one set per task).
func addProblem(g *dag.Graph, suffix string, t *task.Config, seed uint64) {
	opParams := map[string]any{"name": t.OperatorName()}
	if p := t.OperatorParams(); len(p) > 0 {
		opParams["params"] = p
	}
	g.Add("operator"+suffix, "operator", opParams, nil)
	nz := t.Measurement.Noise
	noise := map[string]any{"name": nz.Name}
	if nz.Name == "poisson" {
		noise["rate"] = nz.Rate
		if nz.Form != "" {
			noise["form"] = nz.Form
		}
		if nz.Floor != 0 {
			noise["floor"] = nz.Floor
		}
	} else {
		noise["sigma"] = nz.Sigma
	}
	g.Add("noise"+suffix, "noise", noise, nil)
	measure := g.Add("measure"+suffix, "measure", nil, map[string]string{"images": "truth.images", "operator": "operator" + suffix + ".operator", "noise": "noise" + suffix + ".noise"})
	measure.Seed = seedPtr(seed + measureSeedOffset)
}

// addSolverRun adds "solver", "sample" and "metrics" nodes for one solver on the problem
// of addProblem(problem); suffix names them.
func (r RunSpec) addSolverRun(g *dag.Graph, problem, suffix string, spec SolverSpec) {
	g.Add("solver"+suffix, "solver", map[string]any{"name": spec.Name, "params": spec.Params}, nil)
	s := g.Add("sample"+suffix, "sample", map[string]any{"batch": r.Batch, "backend": r.Backend, "restarts": max(1, r.Restarts)}, map[string]string{
		"prior": "prior.prior", "operator": "operator" + problem + ".operator", "noise": "noise" + problem + ".noise", "solver": "solver" + suffix + ".solver",
		"measurement": "measure" + problem + ".measurement", "truth": "truth.images"})
	s.Seed = seedPtr(r.Seed + sampleSeedOffset)
	g.Add("metrics"+suffix, "metrics", nil, map[string]string{"recon": "sample" + suffix + ".recon", "measurement": "measure" + problem + ".measurement",
		"operator": "operator" + problem + ".operator", "trace": "sample" + suffix + ".trace", "truth": "truth.images"})
}

// DPSFamilySteps are the steps of the DPS family's solvers (dps, dps+, mcg, projection,
// vanilla) in a run that does not set them: the preset tasks' scales are tuned for 100 steps
// on MNIST, while the solvers' own default is the paper's 1000.
const DPSFamilySteps = 100

// SolverSpec resolves a solver of the run (name empty: the task's conditioning method)
// with the run's defaults for the parameters it declares — Steps (or DPSFamilySteps), and
// for the DPS family the task's scale and num_sampling — overridden by given.
func (r RunSpec) SolverSpec(name string, given map[string]any) (SolverSpec, error) {
	if name == "" {
		name = r.Task.Conditioning.Method
	}
	sv, err := solver.Lookup(name)
	if err != nil {
		return SolverSpec{}, err
	}
	params := map[string]any{}
	declared := map[string]bool{}
	for _, p := range sv.Info().Params {
		declared[p.Name] = true
	}
	// The task's conditioning params are the DPS family's (the reference's task YAML): other
	// solvers' params of the same name (ΠGDM's scale) mean something else.
	family := dps.InFamily(sv)
	steps := r.Steps
	if family && steps == 0 {
		steps = DPSFamilySteps
	}
	if declared["steps"] && steps > 0 {
		params["steps"] = steps
	}
	if s := r.Task.Conditioning.Params.Scale; family && declared["scale"] && s != 0 {
		params["scale"] = s
	}
	if k := r.Task.Conditioning.Params.NumSampling; family && declared["num_sampling"] && k > 0 {
		params["num_sampling"] = k
	}
	for k, v := range given {
		params[k] = v
	}
	return NewSolverSpec(name, params)
}

// Outcome is what a run gives back to Go code (a notebook, a program).
type Outcome struct {
	Truth, Recon, Baseline   *Images // Baseline: nil without RunSpec.Baseline
	Measurement              *Measurement
	Trace                    *Trace
	Metrics, BaselineMetrics *Metrics
	Result                   *dag.Result // every node's values and status
}

// Grid is the comparison figure of grid.png.
func (o *Outcome) Grid() (image.Image, error) {
	return comparisonGrid(o.Measurement, o.Recon, o.Baseline, o.Truth, o.Metrics, o.BaselineMetrics)
}

// Execute runs the graph of r with node results cached in cacheDir ("" caches nothing),
// reporting events (may be nil), and returns the run's values. With r.Out empty nothing
// is written outside the cache.
func Execute(ctx context.Context, r RunSpec, cacheDir string, events func(dag.Event)) (*Outcome, error) {
	g, err := RunGraph(r)
	if err != nil {
		return nil, err
	}
	runner, err := newRunner(cacheDir, events)
	if err != nil {
		return nil, err
	}
	res, err := runner.Run(ctx, g)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Result: res}
	get := func(ref string) any { v, _ := res.Value(ref); return v }
	o.Truth, _ = get("truth.images").(*Images)
	o.Recon, _ = get("sample.recon").(*Images)
	o.Measurement, _ = get("measure.measurement").(*Measurement)
	o.Trace, _ = get("sample.trace").(*Trace)
	o.Metrics, _ = get("metrics.metrics").(*Metrics)
	if r.Baseline != "" {
		o.Baseline, _ = get("sample_" + r.Baseline + ".recon").(*Images)
		o.BaselineMetrics, _ = get("metrics_" + r.Baseline + ".metrics").(*Metrics)
	}
	return o, nil
}

// newRunner is a runner of the DPS kinds with results cached in cacheDir ("" caches
// nothing), reporting events (may be nil).
func newRunner(cacheDir string, events func(dag.Event)) (*dag.Runner, error) {
	reg, err := NewRegistry()
	if err != nil {
		return nil, err
	}
	runner := &dag.Runner{Registry: reg, Events: events}
	if cacheDir != "" {
		if runner.Cache, err = dag.OpenCache(cacheDir); err != nil {
			return nil, err
		}
	}
	return runner, nil
}

func seedPtr(s uint64) *uint64 { return &s }
