package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/internal/buildinfo"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/plot"
)

// Output layout of a run folder (as the reference code's input/, recon/, label/, progress/).
const (
	MetricsFile = "metrics.json"
	GridFile    = "grid.png"
	ProgressDir = "progress"
)

// maskImages are the inpainting masks of the images of im (white = observed), drawn as
// each image's operator draws them; an empty set for operators without a mask.
func maskImages(spec OperatorSpec, im *Images) (*Images, error) {
	out := &Images{C: 1, H: im.H, W: im.W, Names: im.Names}
	for lo := 0; lo < im.N; lo += applyChunk {
		hi := min(im.N, lo+applyChunk)
		op, err := spec.BuildBatch(im.H, im.W, lo, hi-lo)
		if err != nil {
			return nil, err
		}
		masks, ok := operator.Masks(op)
		if !ok {
			return &Images{C: 1, H: im.H, W: im.W}, nil
		}
		if len(masks) == 1 && hi-lo > 1 { // one mask for the whole batch
			for len(masks) < hi-lo {
				masks = append(masks, masks[0])
			}
		}
		for _, m := range masks {
			for _, v := range m {
				out.Pixels = append(out.Pixels, float32(2*v-1))
			}
			out.N++
		}
	}
	return out, nil
}

// runSave writes the run's pictures and numbers into dir. Every file is written
// atomically, so a killed save leaves whole files or none, and a rerun rewrites them.
func runSave(c *dag.Call) error {
	dir := c.String("dir")
	m := c.In("measurement").(*Measurement)
	recon := c.In("recon").(*Images)
	tr := c.In("trace").(*Trace)
	met := c.In("metrics").(*Metrics)
	truth, _ := c.In("truth").(*Images)
	baseline, _ := c.In("baseline").(*Images)
	var files []string
	add := func(rel string, write func(path string) error) error {
		path := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := write(path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		files = append(files, rel)
		return nil
	}
	png := func(img image.Image) func(string) error {
		return func(path string) error { return plot.SavePNG(path, img) }
	}
	sets := []struct {
		folder string
		im     *Images
	}{{"input", m.View}, {"recon", recon}, {"label", truth}}
	for _, s := range sets {
		if s.im == nil {
			continue
		}
		for i := range s.im.N {
			if err := add(fmt.Sprintf("%s/%05d.png", s.folder, i), png(imageOf(s.im, i))); err != nil {
				return err
			}
		}
	}
	if spec, ok := c.In("operator").(OperatorSpec); ok && recon != nil {
		masks, err := maskImages(spec, recon)
		if err != nil {
			return err
		}
		for i := range masks.N {
			if err := add(fmt.Sprintf("masks/%05d.png", i), png(imageOf(masks, i))); err != nil {
				return err
			}
		}
	}
	bm, _ := c.In("baseline_metrics").(*Metrics)
	grid, err := comparisonGrid(m, recon, baseline, truth, met, bm)
	if err != nil {
		return err
	}
	if err := add(GridFile, png(grid)); err != nil {
		return err
	}
	if err := saveProgress(tr, recon, add, png); err != nil {
		return err
	}
	summary := struct {
		*Metrics
		Baseline *Metrics `json:"baseline,omitempty"`
		runRecord
	}{Metrics: met, runRecord: recordOf(c)}
	summary.Baseline = bm
	data, err := json.MarshalIndent(summary, "", "  ")
	if err != nil {
		return err
	}
	if err := add(MetricsFile, func(path string) error { return atomicfile.Write(path, append(data, '\n'), 0o644) }); err != nil {
		return err
	}
	c.Set("files", files)
	return nil
}

// runRecord is what metrics.json says about how the numbers were made, beside the
// method's name: the task, solver and its params (steps among them), noise, seed, backend
// and the dpsflow build. Fields a graph does not wire to its save node are left out.
type runRecord struct {
	Task     string         `json:"task,omitempty"`
	Operator *OperatorSpec  `json:"operator,omitempty"`
	Solver   string         `json:"solver,omitempty"`
	Params   map[string]any `json:"params,omitempty"`
	Steps    any            `json:"steps,omitempty"`
	Noise    *NoiseSpec     `json:"noise,omitempty"`
	Seed     *uint64        `json:"seed,omitempty"`
	Backend  string         `json:"backend,omitempty"`
	Version  string         `json:"dpsflow_version"`
}

// RunRecordParam is the save node's param with the settings only the run knows (the graph
// seed, the task's name, the backend); the solver and noise come from their nodes, so an
// edited run.yaml records what actually ran.
func (r RunSpec) RunRecordParam() map[string]any {
	backend := r.Backend
	if backend == "" {
		backend = "embedded"
	}
	return map[string]any{"task": r.Name, "seed": r.Seed, "backend": backend}
}

func recordOf(c *dag.Call) runRecord {
	rec := runRecord{Version: buildinfo.Version()}
	if sv, ok := c.In("solver").(SolverSpec); ok {
		rec.Solver, rec.Params, rec.Steps = sv.Name, sv.Params, sv.Params["steps"]
	}
	if nz, ok := c.In("noise").(NoiseSpec); ok {
		rec.Noise = &nz
	}
	if op, ok := c.In("operator").(OperatorSpec); ok {
		rec.Operator = &op
	}
	if run, ok := c.Param("run").(map[string]any); ok {
		rec.Task, _ = run["task"].(string)
		rec.Backend, _ = run["backend"].(string)
		switch v := run["seed"].(type) { // a map from YAML holds ints; one from Go, uint64
		case uint64:
			rec.Seed = &v
		case int:
			if v >= 0 {
				u := uint64(v)
				rec.Seed = &u
			}
		case int64:
			if v >= 0 {
				u := uint64(v)
				rec.Seed = &u
			}
		}
	}
	return rec
}

// saveProgress writes progress/: the x_t and x̂0 snapshots, the residual (and PSNR) per
// step as PNG and as an interactive chart with local echarts assets, and the trace as JSON.
func saveProgress(tr *Trace, recon *Images, add func(string, func(string) error) error, png func(image.Image) func(string) error) error {
	if len(tr.Frames) > 0 {
		var frames []plot.Frame
		for _, f := range tr.Frames {
			frames = append(frames, plot.Frame{Step: f.Step, Xt: plot.ImageOf(f.Xt, recon.C, recon.H, recon.W), X0: plot.ImageOf(f.X0, recon.C, recon.H, recon.W)})
		}
		img, err := plot.Snapshots(frames, 2)
		if err != nil {
			return err
		}
		if err := add(ProgressDir+"/snapshots.png", png(img)); err != nil {
			return err
		}
	}
	steps := make([]float64, len(tr.Residual))
	for i := range steps {
		steps[i] = float64(i + 1)
	}
	type chart struct {
		name, title, yLabel string
		series              plot.Series
		logY                bool
	}
	charts := []chart{{"residual", "‖y − A(E[x0|x_t])‖ per step (mean over images)", "‖y − A(E[x0|x_t])‖", plot.Series{Name: "residual", X: steps, Y: tr.Residual}, logScalable(tr.Residual)}}
	if len(tr.PSNR) > 0 {
		xs := make([]float64, len(tr.PSNRSteps))
		for i, s := range tr.PSNRSteps {
			xs[i] = float64(s)
		}
		charts = append(charts, chart{"psnr", "PSNR of E[x0|x_t] per step (mean over images)", "PSNR (dB)", plot.Series{Name: "PSNR", X: xs, Y: tr.PSNR}, false})
	}
	for _, ch := range charts {
		if err := add(ProgressDir+"/"+ch.name+".png", func(path string) error {
			return plot.CurvesPNG(path, ch.title, "step", ch.yLabel, []plot.Series{ch.series}, ch.logY)
		}); err != nil {
			return err
		}
		if err := add(ProgressDir+"/"+ch.name+".html", func(path string) error {
			var buf bytes.Buffer
			if err := plot.CurvesHTML(&buf, ch.title, "step", ch.yLabel, []plot.Series{ch.series}, plot.Dir("assets")); err != nil {
				return err
			}
			return atomicfile.Write(path, buf.Bytes(), 0o644)
		}); err != nil {
			return err
		}
	}
	if err := add(ProgressDir+"/assets/echarts.min.js", func(path string) error { return plot.WriteAssets(filepath.Dir(path)) }); err != nil {
		return err
	}
	data, err := json.MarshalIndent(struct {
		Residual  []float64 `json:"residual_per_step"`
		PSNRSteps []int     `json:"psnr_steps,omitempty"`
		PSNR      []float64 `json:"psnr,omitempty"`
	}{tr.Residual, tr.PSNRSteps, tr.PSNR}, "", " ")
	if err != nil {
		return err
	}
	return add(ProgressDir+"/trace.json", func(path string) error { return atomicfile.Write(path, data, 0o644) })
}

// comparisonGrid is grid.png: columns measurement, the method, the baseline (optional),
// the truth (optional); one row per image.
func comparisonGrid(m *Measurement, recon, baseline, truth *Images, met, bm *Metrics) (image.Image, error) {
	panels := []plot.Panel{{Title: "measurement"}, {Title: met.Method}}
	if baseline != nil {
		title := "baseline"
		if bm != nil {
			title = bm.Method
		}
		panels = append(panels, plot.Panel{Title: title})
	}
	if truth != nil {
		panels = append(panels, plot.Panel{Title: "truth"})
	}
	for i := range recon.N {
		k := 0
		for _, im := range []*Images{m.View, recon, baseline, truth} {
			if im != nil {
				panels[k].Images = append(panels[k].Images, imageOf(im, i))
				k++
			}
		}
	}
	return plot.ComparisonGrid(panels, 3)
}

func imageOf(im *Images, i int) image.Image { return plot.ImageOf(im.Image(i), im.C, im.H, im.W) }

// logScalable says whether a log axis can show ys: positive and not all equal (a one-step
// solver's single residual, or a zero one, is drawn on a linear axis).
func logScalable(ys []float64) bool {
	return len(ys) > 0 && slices.Min(ys) > 0 && slices.Max(ys) > slices.Min(ys)
}
