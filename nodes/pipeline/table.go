package pipeline

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/plot"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Files a table writes.
const (
	TableMarkdown = "table.md"
	TableCSV      = "table.csv"
	TableJSON     = "table.json"
	TableDAG      = "table.yaml" // the DAG that computed it: rerun with `dpsflow dag run`
)

// TableGridFile is the comparison grid of a task: rows images; columns the measurement,
// each solver, the truth.
func TableGridFile(task string) string { return "grid-" + task + ".png" }

// The metrics of a table, in column order. Per-image metrics are mean ± std over the
// images; FD and KID are one number for the set (KID's ± is its std over subsets).
var TableMetricNames = []string{"psnr", "ssim", "lpips", "accuracy", "fd", "kid", "residual"}

// TablePlan is a table spec made into one DAG: every task's measurement once, every
// solver that can take the task on it, the metrics. Cells a solver cannot take (DDRM on a
// blur without an SVD) are Skipped with the reason instead of failing the table.
type TablePlan struct {
	Spec    *TableSpec
	Graph   *dag.Graph
	Run     RunSpec              // the run settings every cell shares (Task unset)
	Skipped map[[2]string]string // (task, label) → why the solver cannot take the task
	Feature string               // FD/KID feature network (FIDMNIST, FIDInception) or ""
}

// Node ids of a table's graph.
func tableProblem(task string) string     { return "/" + task }
func tableCell(task, label string) string { return "/" + task + "/" + label }

// PlanTable checks a spec against the prior and the images and builds its DAG; nothing is
// run. Errors name the spec file and what is wrong.
func PlanTable(s *TableSpec) (*TablePlan, error) {
	fail := func(err error) (*TablePlan, error) { return nil, fmt.Errorf("%s: %w", s.name(), err) }
	r := RunSpec{N: s.N, Start: s.Start, Steps: s.Steps, Batch: s.Batch, Restarts: s.Restarts, Seed: s.Seed, Backend: s.Backend}
	if r.Backend == "" {
		r.Backend = "embedded"
	}
	var prior PriorSpec
	var err error
	if s.ModelConfig == "" {
		r.Builtin = BuiltinMNIST
		prior, err = NewPriorSpec(r.Builtin, "", "")
	} else {
		r.ModelConfig, r.Checkpoint = s.ModelConfig, s.Checkpoint
		prior, err = NewPriorSpec("", s.ModelConfig, s.Checkpoint)
	}
	if err != nil {
		return fail(err)
	}
	model, weights, err := prior.Load()
	if err != nil {
		return fail(err)
	}
	r.Channels, r.Size = prior.Channels, prior.ImageSize
	if s.Images != "" {
		r.Images = s.Images
		if _, err := LoadImages(s.Images, r.Channels, r.Size, s.N); err != nil {
			return fail(err)
		}
	} else if r.Channels != 1 || r.Size != 32 {
		return fail(fmt.Errorf("the model takes %d×%d×%d images, so MNIST digits do not fit: give images", r.Channels, r.Size, r.Size))
	} else if _, err := LoadMNIST("test", s.Start, s.N); err != nil {
		return fail(err)
	}
	p := &TablePlan{Spec: s, Run: r, Skipped: map[[2]string]string{}}
	switch s.Metrics.FID {
	case "":
		if MNISTFeaturesFit(r.Channels, r.Size, r.Size) {
			p.Feature = FIDMNIST
		}
	case FIDMNIST:
		if !MNISTFeaturesFit(r.Channels, r.Size, r.Size) {
			return fail(fmt.Errorf("metrics.fid: mnist takes 1×32×32 images, these are %d×%d×%d", r.Channels, r.Size, r.Size))
		}
		p.Feature = FIDMNIST
	case FIDInception:
		p.Feature = FIDInception
	}
	g := &dag.Graph{Name: "table", Seed: s.Seed}
	r.addInputs(g)
	if p.Feature != "" {
		g.Add("features/truth", "features", p.featureParams(), map[string]string{"images": "truth.images"})
	}
	xShape := shapes.Make(dtypes.Float32, 1, r.Channels, r.Size, r.Size)
	score := model.Prior(weights)
	for i := range s.Tasks {
		t, err := s.Task(i)
		if err != nil {
			return fail(err)
		}
		name := TaskLabel(s.Tasks[i])
		op, err := t.Operator(r.Size, r.Size, s.Seed)
		if err != nil {
			return fail(err)
		}
		nm, err := t.Noise()
		if err != nil {
			return fail(err)
		}
		problem := &solver.Problem{Prior: score, Operator: op, Noise: nm, XShape: xShape}
		r.Task = t
		addProblem(g, tableProblem(name), t, s.Seed)
		for _, sv := range s.Solvers {
			spec, err := r.SolverSpec(sv.Name, sv.Params)
			if err != nil {
				return fail(fmt.Errorf("solver %s on task %s: %w", sv.Label, name, err))
			}
			solv, params, err := spec.Solver()
			if err != nil {
				return fail(err)
			}
			if err := solver.Check(solv, problem, params); err != nil {
				p.Skipped[[2]string{name, sv.Label}] = err.Error()
				continue
			}
			cell := tableCell(name, sv.Label)
			r.addSolverRun(g, tableProblem(name), cell, spec)
			p.addScores(g, cell)
		}
	}
	p.Graph = g
	return p, nil
}

// featureParams are the params of a "features" node.
func (p *TablePlan) featureParams() map[string]any {
	fp := map[string]any{"net": p.Feature, "backend": p.Run.Backend}
	if p.Feature == FIDInception {
		fp["weights"] = p.Spec.Metrics.FIDWeights
	}
	return fp
}

// addScores adds the learned metrics of one cell: LPIPS per image, and the set's features
// with FD/KID (and class accuracy) against the truth's.
func (p *TablePlan) addScores(g *dag.Graph, cell string) {
	recon := "sample" + cell + ".recon"
	if l := p.Spec.Metrics.LPIPS; l != nil {
		g.Add("lpips"+cell, "lpips", map[string]any{"net": l.Net, "backbone": l.Backbone, "lin": l.Lin, "backend": p.Run.Backend},
			map[string]string{"recon": recon, "truth": "truth.images"})
	}
	if p.Feature != "" {
		g.Add("features"+cell, "features", p.featureParams(), map[string]string{"images": recon})
		fd := g.Add("fd"+cell, "fd", map[string]any{"kid_subsets": p.Spec.Metrics.KIDSubsets, "kid_subset_size": p.Spec.Metrics.KIDSubsetSize},
			map[string]string{"pred": "features" + cell + ".features", "ref": "features/truth.features"})
		fd.Seed = seedPtr(p.Spec.Seed)
	}
}

// TableRow is one (task, solver) cell of table.json.
type TableRow struct {
	Task            string          `json:"task"`
	Solver          string          `json:"solver"` // the label
	Name            string          `json:"name"`   // the registered solver
	Params          map[string]any  `json:"params"`
	N               int             `json:"n"`
	NFE             float64         `json:"nfe"`
	SecondsPerImage float64         `json:"seconds_per_image"`
	Metrics         map[string]Stat `json:"metrics"`
	Skipped         string          `json:"skipped,omitempty"` // why the solver cannot take the task
	Failed          string          `json:"failed,omitempty"`  // the error of a cell that ran and failed
	// Diverged: the failure is the solver's state becoming NaN/Inf (a result about the
	// solver at these settings, not a fault of the run).
	Diverged bool `json:"diverged,omitempty"`
}

// Table is a computed table: its rows in spec order (task-major) and the images behind
// them, for the grids.
type Table struct {
	Plan   *TablePlan
	Rows   []TableRow
	Result *dag.Result
}

// RunTable runs the plan's DAG with results cached in cacheDir ("" caches nothing) and
// collects its rows. A cell that fails (a solver that diverges) is a row with Failed set
// and the table is still made; a failure of what every cell shares (the images, a task's
// measurement) or a cancelled run is an error.
func RunTable(ctx context.Context, p *TablePlan, cacheDir string, events func(dag.Event)) (*Table, error) {
	runner, err := newRunner(cacheDir, events)
	if err != nil {
		return nil, err
	}
	res, err := runner.Run(ctx, p.Graph)
	if err != nil && (ctx.Err() != nil || res == nil) {
		return nil, err
	}
	return CollectTable(p, res)
}

// cellKinds are the kinds of a cell's own nodes (their ids end in /TASK/LABEL).
var cellKinds = []string{"solver", "sample", "metrics", "lpips", "features", "fd"}

// CollectTable reads the rows of a table from the result of its DAG. A failed node of a
// cell marks the row failed; a failed node outside the cells is an error.
func CollectTable(p *TablePlan, res *dag.Result) (*Table, error) {
	t := &Table{Plan: p, Result: res}
	// A failed node outside the cells (the images, a measurement) spoils every cell.
	for id, err := range res.Errors {
		kind, cell, _ := strings.Cut(id, "/")
		if !slices.Contains(cellKinds, kind) || strings.Count(cell, "/") != 1 {
			return nil, &dag.NodeError{Node: id, Kind: p.Graph.Node(id).Kind, Err: err}
		}
	}
	for _, taskName := range p.Spec.Tasks {
		task := TaskLabel(taskName)
		for _, sv := range p.Spec.Solvers {
			row := TableRow{Task: task, Solver: sv.Label, Name: sv.Name, N: p.Spec.N, Metrics: map[string]Stat{}}
			if why, ok := p.Skipped[[2]string{task, sv.Label}]; ok {
				row.Skipped = why
				t.Rows = append(t.Rows, row)
				continue
			}
			cell := tableCell(task, sv.Label)
			node := p.Graph.Node("solver" + cell)
			row.Params, _ = node.Params["params"].(map[string]any)
			row.Name, _ = node.Params["name"].(string)
			if err := cellError(res, cell); err != nil {
				row.Failed = err.Error()
				var d *solver.DivergedError
				row.Diverged = errors.As(err, &d)
				t.Rows = append(t.Rows, row)
				continue
			}
			v, err := res.Value("metrics" + cell + ".metrics")
			if err != nil {
				return nil, err
			}
			m := v.(*Metrics)
			row.NFE, row.SecondsPerImage = m.Summary["nfe"].Mean, m.Summary["seconds"].Mean
			for _, k := range []string{"psnr", "ssim", "residual"} {
				if st, ok := m.Summary[k]; ok {
					row.Metrics[k] = st
				}
			}
			if v, err := res.Value("lpips" + cell + ".scores"); err == nil {
				mean, std := metrics.MeanStd(v.(*Scores).Values)
				row.Metrics["lpips"] = Stat{Mean: mean, Std: std}
			}
			if v, err := res.Value("fd" + cell + ".set"); err == nil {
				sm := v.(*SetMetrics)
				row.Metrics["fd"] = Stat{Mean: sm.FD}
				row.Metrics["kid"] = Stat{Mean: sm.KID, Std: sm.KIDStd}
				if sm.Correct != nil {
					row.Metrics["accuracy"] = sm.Accuracy()
				}
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t, nil
}

// cellError is the error of a cell's first failed node, in cellKinds order (a failed
// sample, not the metrics it left without input), or nil.
func cellError(res *dag.Result, cell string) error {
	for _, kind := range cellKinds {
		if err := res.Errors[kind+cell]; err != nil {
			return &dag.NodeError{Node: kind + cell, Kind: kind, Err: err}
		}
	}
	return nil
}

// Failures are the rows that failed for another reason than diverging.
func (t *Table) Failures() []TableRow {
	var out []TableRow
	for _, r := range t.Rows {
		if r.Failed != "" && !r.Diverged {
			out = append(out, r)
		}
	}
	return out
}

// metricColumns are the metrics some row has, in TableMetricNames order.
func (t *Table) metricColumns() []string {
	var cols []string
	for _, k := range TableMetricNames {
		for _, r := range t.Rows {
			if _, ok := r.Metrics[k]; ok {
				cols = append(cols, k)
				break
			}
		}
	}
	return cols
}

// setMetric says whether a metric is one number for the set (no ± over images).
func setMetric(k string) bool { return k == "fd" }

// Markdown is table.md: one section per task, a row per solver.
func (t *Table) Markdown() string {
	var b strings.Builder
	cols := t.metricColumns()
	spec := t.Plan.Spec
	fmt.Fprintf(&b, "%d images, seed %d", spec.N, spec.Seed)
	if spec.Noise != "" {
		fmt.Fprintf(&b, ", noise %s", spec.Noise)
	}
	if t.Plan.Feature != "" {
		fmt.Fprintf(&b, "; FD/KID on %s features", t.Plan.Feature)
	}
	b.WriteString(". Mean ± std over images (KID: ± its std over subsets).\n")
	task := ""
	for _, r := range t.Rows {
		if r.Task != task {
			task = r.Task
			fmt.Fprintf(&b, "\n### %s\n\n| solver | %s | NFE | s/image |\n|---|%s---:|---:|\n", task, strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
		}
		cells := []string{r.Solver}
		off := r.Skipped != "" || r.Failed != ""
		for _, k := range cols {
			st, ok := r.Metrics[k]
			switch {
			case r.Failed != "" && r.Diverged:
				cells = append(cells, "diverged")
			case off:
				cells = append(cells, "—")
			case !ok:
				cells = append(cells, "")
			case setMetric(k):
				cells = append(cells, formatStat(k, st, false))
			default:
				cells = append(cells, formatStat(k, st, true))
			}
		}
		if off {
			cells = append(cells, "—", "—")
		} else {
			cells = append(cells, fmt.Sprintf("%.0f", r.NFE), fmt.Sprintf("%.3g", r.SecondsPerImage))
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | "))
	}
	var skipped, failed []string
	for _, r := range t.Rows {
		if r.Skipped != "" {
			skipped = append(skipped, fmt.Sprintf("- %s on %s: %s", r.Solver, r.Task, r.Skipped))
		}
		if r.Failed != "" {
			failed = append(failed, fmt.Sprintf("- %s on %s: %s", r.Solver, r.Task, r.Failed))
		}
	}
	if len(skipped) > 0 {
		b.WriteString("\nNot run (—):\n\n" + strings.Join(skipped, "\n") + "\n")
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed:\n\n" + strings.Join(failed, "\n") + "\n")
	}
	return b.String()
}

// formatStat prints a metric with the precision its scale needs.
func formatStat(k string, st Stat, withStd bool) string {
	f := "%.4f"
	switch k {
	case "psnr", "fd":
		f = "%.2f"
	case "residual":
		f = "%.3g"
	}
	if !withStd {
		return fmt.Sprintf(f, st.Mean)
	}
	return fmt.Sprintf(f+" ± "+f, st.Mean, st.Std)
}

// CSV is table.csv: one line per cell, each metric's mean and std in two columns.
func (t *Table) CSV() ([]byte, error) {
	cols := t.metricColumns()
	head := []string{"task", "solver", "name", "n", "nfe", "seconds_per_image"}
	for _, k := range cols {
		head = append(head, k, k+"_std")
	}
	head = append(head, "skipped", "failed")
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(head)
	num := func(x float64) string { return fmt.Sprintf("%.6g", x) }
	for _, r := range t.Rows {
		line := []string{r.Task, r.Solver, r.Name, fmt.Sprint(r.N), num(r.NFE), num(r.SecondsPerImage)}
		for _, k := range cols {
			if st, ok := r.Metrics[k]; ok {
				line = append(line, num(st.Mean), num(st.Std))
			} else {
				line = append(line, "", "")
			}
		}
		_ = w.Write(append(line, r.Skipped, r.Failed))
	}
	w.Flush()
	return []byte(b.String()), w.Error()
}

// Grid is the comparison grid of one task: rows images; columns the measurement, each
// solver that ran, the truth.
func (t *Table) Grid(task string) (image.Image, error) {
	res := t.Result
	m, err := res.Value("measure" + tableProblem(task) + ".measurement")
	if err != nil {
		return nil, err
	}
	truthV, err := res.Value("truth.images")
	if err != nil {
		return nil, err
	}
	truth := truthV.(*Images)
	cols := []*Images{m.(*Measurement).View}
	panels := []plot.Panel{{Title: "measurement"}}
	for _, sv := range t.Plan.Spec.Solvers {
		v, err := res.Value("sample" + tableCell(task, sv.Label) + ".recon")
		if err != nil {
			continue // skipped: the solver cannot take the task
		}
		cols = append(cols, v.(*Images))
		panels = append(panels, plot.Panel{Title: sv.Label})
	}
	cols = append(cols, truth)
	panels = append(panels, plot.Panel{Title: "truth"})
	for i := range truth.N {
		for k, im := range cols {
			panels[k].Images = append(panels[k].Images, imageOf(im, i))
		}
	}
	return plot.ComparisonGrid(panels, 2)
}

// Write writes table.md, table.csv, table.json and a grid per task into dir, atomically
// each, and returns their paths.
func (t *Table) Write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	put := func(name string, data []byte) error {
		p := filepath.Join(dir, name)
		paths = append(paths, p)
		return atomicfile.Write(p, data, 0o644)
	}
	if err := put(TableMarkdown, []byte(t.Markdown())); err != nil {
		return nil, err
	}
	c, err := t.CSV()
	if err != nil {
		return nil, err
	}
	if err := put(TableCSV, c); err != nil {
		return nil, err
	}
	j, err := json.MarshalIndent(t.Rows, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := put(TableJSON, append(j, '\n')); err != nil {
		return nil, err
	}
	var tasks []string
	for _, r := range t.Rows {
		if !slices.Contains(tasks, r.Task) {
			tasks = append(tasks, r.Task)
		}
	}
	// Grids of tasks an earlier spec of this folder had are stale.
	old, _ := filepath.Glob(filepath.Join(dir, TableGridFile("*")))
	for _, p := range old {
		if !slices.Contains(tasks, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "grid-"), ".png")) {
			_ = os.Remove(p)
		}
	}
	for _, task := range tasks {
		img, err := t.Grid(task)
		if err != nil {
			return nil, fmt.Errorf("grid of %s: %w", task, err)
		}
		p := filepath.Join(dir, TableGridFile(task))
		if err := plot.SavePNG(p, img); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
