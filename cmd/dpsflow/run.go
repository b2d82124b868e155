package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/dps"
	"github.com/dpsflow/dpsflow/nodes/task"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/spf13/cobra"
)

// defaultTask is what `dpsflow run` solves when no task is given.
const defaultTask = "sr4"

// runFlags are the flags of `dpsflow run`.
type runFlags struct {
	task, taskConfig, diffusionConfig, modelConfig, checkpoint, images, noise, solver, method, baseline, backend, out string
	params                                                                                                            []string
	n, start, steps, batch, restarts                                                                                  int
	scale                                                                                                             float64
	seed                                                                                                              uint64
	stepsGiven, scaleGiven                                                                                            bool // on the command line
}

func newRunCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run --task NAME | --task-config T.yaml --out DIR",
		Short: "Solve an inverse problem with DPS (or another solver): the main job",
		Long: `run measures ground-truth images with a task's operator and noise, reconstructs them by
diffusion posterior sampling (or the solver --solver names; see 'dpsflow solvers'), and
writes DIR/input, DIR/recon, DIR/label (PNG), DIR/masks (inpainting), DIR/grid.png,
DIR/progress/ (snapshots, residual and PSNR per step as PNG and HTML), DIR/metrics.json and
DIR/run.yaml, the exact DAG (rerun it with 'dpsflow dag run DIR/run.yaml').

With no model flags it uses the shipped MNIST prior and held-out MNIST test digits. A run
that is interrupted (Ctrl-C, kill) resumes where it stopped when started again with the same
flags. Task names: ` + strings.Join(task.Presets(), ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.task, "task", "", "preset task name ("+strings.Join(task.Presets(), ", ")+"; default "+defaultTask+")")
	fl.StringVar(&f.taskConfig, "task-config", "", "a task config in the reference format (instead of --task)")
	fl.StringVar(&f.diffusionConfig, "diffusion-config", "", "the reference's diffusion_config.yaml: sampler, respacing (steps), eta, variance, clipping (instead of --steps)")
	fl.StringVar(&f.modelConfig, "model-config", "", "reference-format model_config.yaml (default: the shipped MNIST prior)")
	fl.StringVar(&f.checkpoint, "checkpoint", "", "weights for --model-config: PyTorch .pt or .safetensors")
	fl.StringVar(&f.images, "images", "", "ground truth: a PNG/JPEG folder (sorted by name), one PNG/JPEG file or a .npy [N, C, H, W]; grey priors refuse colour images, transparency is composited on black (default: MNIST test digits)")
	fl.IntVar(&f.n, "n", 8, "number of images")
	fl.IntVar(&f.start, "start", 0, "first MNIST test digit (not with --images) (default 0)")
	fl.IntVar(&f.steps, "steps", 0, fmt.Sprintf("the solver's steps (the 1000-step schedule respaced); default %d for the DPS family (dps, dps+, mcg, projection, vanilla), every other solver its own default (see 'dpsflow solvers')", pipeline.DPSFamilySteps))
	fl.IntVar(&f.batch, "batch", 8, "images sampled at once")
	fl.IntVar(&f.restarts, "restarts", 1, "sample each image K times and keep the run with the smallest ‖y − A(x̂0)‖ (for phase retrieval)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of every random draw (mask, noise, sampler) (default 0)")
	fl.StringVar(&f.noise, "noise", "", "override the task's noise: gaussian:SIGMA or poisson:RATE[:FORM[:FLOOR]] (the Poisson likelihood paper|reference|plain|model|nll, its floor in counts; default paper floored at 32) (default: the task's, "+presetDefaults(func(t *task.Config) string {
		if nz := t.Measurement.Noise; nz.Name == "poisson" {
			return fmt.Sprintf("poisson:%g", nz.Rate)
		}
		return fmt.Sprintf("%s:%g", t.Measurement.Noise.Name, t.Measurement.Noise.Sigma)
	})+")")
	fl.StringVar(&f.solver, "solver", "", "the solver (see 'dpsflow solvers'; default: the task's conditioning method, dps for the presets)")
	fl.StringArrayVar(&f.params, "param", nil, "a solver parameter NAME=VALUE (repeatable; see 'dpsflow solvers')")
	fl.StringVar(&f.method, "method", "", "the same as --solver (the reference's method names ps, ps+, mcg, projection, vanilla work too) (default: the task's conditioning method, dps for the presets)")
	fl.Float64Var(&f.scale, "scale", 0, "override the task's guidance scale, a finite number > 0 (the DPS family's scale param) (default: the task's, "+presetDefaults(func(t *task.Config) string {
		return fmt.Sprintf("%g", t.Conditioning.Params.Scale)
	})+")")
	fl.StringVar(&f.baseline, "baseline", "", "also run this solver (e.g. vanilla) on the same measurements and compare")
	fl.StringVar(&f.backend, "backend", "", backendFlagUsage)
	fl.StringVar(&f.out, "out", "", "the run folder (required; new, empty, or this run's own)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// presetDefaults says what show gives for the preset tasks, for --help: the most common
// value, then the presets that differ ("4; phase-retrieval 1").
func presetDefaults(show func(*task.Config) string) string {
	values := map[string]string{}
	count := map[string]int{}
	common := ""
	for _, name := range task.Presets() {
		if t, err := task.Preset(name); err == nil {
			v := show(t)
			values[name] = v
			if count[v]++; count[v] > count[common] {
				common = v
			}
		}
	}
	if len(count) == 1 {
		return common + " for every preset"
	}
	parts := []string{common}
	for _, name := range task.Presets() {
		if v, ok := values[name]; ok && v != common {
			parts = append(parts, name+" "+v)
		}
	}
	return strings.Join(parts, "; ")
}

func (f *runFlags) run(cmd *cobra.Command) error {
	f.stepsGiven = cmd.Flags().Changed("steps")
	f.scaleGiven = cmd.Flags().Changed("scale")
	// Everything is checked before the folder exists: the flags and files (spec), then the
	// graph through the kinds' own checks (what 'dag explain' reports).
	spec, err := f.spec()
	if err != nil {
		return usageError{err}
	}
	reg, err := pipeline.NewRegistry()
	if err != nil {
		return err
	}
	g, err := pipeline.RunGraph(spec)
	if err != nil {
		return usageError{err}
	}
	if err := reg.Validate(g); err != nil {
		return usageError{err}
	}
	yamlData, err := runYAMLFor(g, spec.Out) // the save dir relative to run.yaml: the folder can move
	if err != nil {
		return err
	}
	if err := checkOutDir(spec.Out, "run.yaml", yamlData); err != nil {
		return usageError{err}
	}
	release, err := lockDir(spec.Out)
	if err != nil {
		return err
	}
	defer release()
	// Again under the lock: another process may have used the folder meanwhile.
	if err := checkOutDir(spec.Out, "run.yaml", yamlData); err != nil {
		return usageError{err}
	}
	if err := clearUnfinishedRun(cmd, spec.Out, yamlData); err != nil {
		return err
	}
	runYAML := filepath.Join(spec.Out, "run.yaml")
	if err := writeRunYAML(runYAML, yamlData); err != nil {
		return err
	}
	res, err := runGraph(cmd, reg, g, cacheDirFor(runYAML), nil)
	if err != nil {
		return err
	}
	printMetrics(cmd, res, spec)
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (grid: %s)\n", spec.Out, filepath.Join(spec.Out, pipeline.GridFile))
	return nil
}

// spec checks every input before anything is written: task, noise, model, images.
func (f *runFlags) spec() (pipeline.RunSpec, error) {
	s := pipeline.RunSpec{N: f.n, Start: f.start, Steps: f.steps, Batch: f.batch, Restarts: f.restarts, Seed: f.seed, Backend: f.backend, Baseline: f.baseline}
	var err error
	switch {
	case f.task != "" && f.taskConfig != "":
		return s, errors.New("give --task NAME or --task-config FILE, not both")
	case f.taskConfig == "":
		if f.task == "" {
			f.task = defaultTask
		}
		s.Name = f.task
		s.Task, err = task.Preset(f.task)
	default:
		s.Name = strings.TrimSuffix(filepath.Base(f.taskConfig), filepath.Ext(f.taskConfig))
		s.Task, err = task.Load(f.taskConfig)
	}
	if err != nil {
		return s, err
	}
	if sc := s.Task.Conditioning.Params.Scale; math.IsNaN(sc) || math.IsInf(sc, 0) || sc < 0 {
		where := "task " + f.task
		if f.taskConfig != "" {
			where = "task config " + f.taskConfig
		}
		return s, fmt.Errorf("%s: conditioning.params.scale %v: must be a finite number ≥ 0", where, sc)
	}
	if err := f.overrideTask(s.Task); err != nil {
		return s, err
	}
	if f.out == "" {
		return s, errors.New("--out is required")
	}
	if s.Out, err = filepath.Abs(f.out); err != nil {
		return s, err
	}
	for _, c := range []struct {
		flag  string
		value int
		given bool
	}{{"--n", f.n, true}, {"--steps", f.steps, f.stepsGiven}, {"--batch", f.batch, true}, {"--restarts", f.restarts, true}} {
		if c.given && c.value < 1 {
			return s, fmt.Errorf("%s %d: must be at least 1", c.flag, c.value)
		}
	}
	if f.start < 0 {
		return s, fmt.Errorf("--start %d: must be 0 or more", f.start)
	}
	if s.Backend == "" {
		s.Backend = os.Getenv(xla.EnvSpec)
	}
	if s.Backend == "" {
		s.Backend = xla.DefaultSpec
	}
	// Loaded once here, as 'dpsflow doctor' does: a missing or broken plugin is bad input.
	if err := pipeline.CheckBackend(s.Backend); err != nil {
		if f.backend == "" {
			return s, fmt.Errorf("$%s: %w", xla.EnvSpec, err)
		}
		return s, fmt.Errorf("--backend: %w", err)
	}
	// The prior: read, hashed and (for user weights) loaded once, so a checkpoint that does
	// not fit its config fails here, before the run folder exists.
	var prior pipeline.PriorSpec
	var model *adm.Model
	var weights *mlctx.Context
	switch {
	case f.modelConfig == "" && f.checkpoint == "":
		s.Builtin = pipeline.BuiltinMNIST
		if prior, err = pipeline.NewPriorSpec(s.Builtin, "", ""); err == nil {
			model, weights, err = prior.Load()
		}
	case f.modelConfig == "" || f.checkpoint == "":
		return s, errors.New("give both --model-config and --checkpoint, or neither (the shipped MNIST prior)")
	default:
		if s.ModelConfig, err = filepath.Abs(f.modelConfig); err != nil {
			return s, err
		}
		if s.Checkpoint, err = filepath.Abs(f.checkpoint); err != nil {
			return s, err
		}
		if prior, err = pipeline.NewPriorSpec("", s.ModelConfig, s.Checkpoint); err == nil {
			model, weights, err = prior.Load()
		}
	}
	if err != nil {
		return s, err
	}
	s.Channels, s.Size = prior.Channels, prior.ImageSize
	if f.images != "" {
		if f.start != 0 { // --start numbers MNIST digits; refused rather than ignored
			return s, fmt.Errorf("--start %d: --start picks MNIST test digits and does nothing with --images %s; put the images you want in the folder instead", f.start, f.images)
		}
		if s.Images, err = filepath.Abs(f.images); err != nil {
			return s, err
		}
		if _, err := pipeline.LoadImages(s.Images, s.Channels, s.Size, s.N); err != nil {
			return s, err
		}
	} else if s.Channels != 1 || s.Size != 32 {
		return s, fmt.Errorf("the model takes %d×%d×%d images, so MNIST digits do not fit: give --images", s.Channels, s.Size, s.Size)
	} else if _, err := pipeline.LoadMNIST("test", s.Start, s.N); err != nil {
		return s, err
	}
	op, err := s.Task.Operator(s.Size, s.Size, s.Seed)
	if err != nil {
		return s, err
	}
	// The solvers: known, their params valid, and the operator able to do what they need.
	if f.solver != "" && f.method != "" {
		return s, errors.New("give --solver or --method (its older name), not both")
	}
	s.Solver = f.solver + f.method
	if f.scaleGiven && s.Solver != "" {
		// --scale is the task's guidance scale, which only the DPS family takes.
		if sv, err := solver.Lookup(s.Solver); err == nil {
			if !dps.InFamily(sv) {
				return s, fmt.Errorf("--scale is the DPS family's guidance scale; for %s give --param NAME=VALUE (see 'dpsflow solvers')", sv.Info().Name)
			}
		}
	}
	if s.Params, err = solver.ParseAssignments(f.params); err != nil {
		return s, err
	}
	if f.diffusionConfig != "" {
		if err := f.applyDiffusionConfig(&s); err != nil {
			return s, err
		}
	}
	nm, err := s.Task.Noise()
	if err != nil {
		return s, err
	}
	problem := &solver.Problem{Prior: model.Prior(weights), Operator: op, Noise: nm, XShape: shapes.Make(dtypes.Float32, 1, s.Channels, s.Size, s.Size)}
	check := func(name string, given map[string]any) error {
		spec, err := s.SolverSpec(name, given)
		if err != nil {
			return err
		}
		sv, params, err := spec.Solver()
		if err != nil {
			return err
		}
		if err := pipeline.CheckSolverSteps(spec); err != nil {
			if f.stepsGiven {
				return fmt.Errorf("--steps %d: %w", f.steps, err)
			}
			return err
		}
		return solver.Check(sv, problem, params)
	}
	if err := check(s.Solver, s.Params); err != nil {
		return s, err
	}
	if s.Baseline != "" {
		if err := check(s.Baseline, nil); err != nil {
			return s, fmt.Errorf("--baseline: %w", err)
		}
	}
	return s, nil
}

// applyDiffusionConfig takes the sampler settings of a reference diffusion_config.yaml as
// solver parameters (those given with --param win) and its respaced step count as --steps.
func (f *runFlags) applyDiffusionConfig(s *pipeline.RunSpec) error {
	if f.stepsGiven {
		return errors.New("give --steps or --diffusion-config (its timestep_respacing sets the steps), not both")
	}
	d, err := task.LoadDiffusion(f.diffusionConfig)
	if err != nil {
		return err
	}
	s.Steps = d.Steps()
	for k, v := range map[string]any{"sampler": d.Kind(), "respacing": d.Respacing(), "eta": d.Eta(), "variance": d.Variance(), "clip": d.Clip()} {
		if _, given := s.Params[k]; !given {
			s.Params[k] = v
		}
	}
	return nil
}

// overrideTask applies --noise and --scale.
func (f *runFlags) overrideTask(t *task.Config) error {
	if f.noise != "" {
		if err := t.SetNoise(f.noise); err != nil {
			return fmt.Errorf("--noise: %w", err)
		}
	}
	if _, err := t.Noise(); err != nil {
		return err
	}
	if f.scaleGiven {
		if math.IsNaN(f.scale) || math.IsInf(f.scale, 0) || f.scale <= 0 {
			return fmt.Errorf("--scale %v: must be a finite number > 0", f.scale)
		}
		t.Conditioning.Params.Scale = f.scale
	}
	return nil
}

// checkOutDir accepts, without changing anything, a folder that does not exist, an empty
// one, one holding only dpsflow's own .dpsflow (its cache and lock), one that holds this
// very run (the same DAG in its dagFile: the run resumes), and a run folder whose run never
// finished (no metrics.json: it failed or was interrupted; the corrected command replaces
// it). Anything else is an error, so nothing is overwritten.
func checkOutDir(dir, dagFile string, dagYAML []byte) error {
	if empty, err := emptyDir(dir); empty || err != nil {
		return err
	}
	old, err := os.ReadFile(filepath.Join(dir, dagFile))
	if err != nil {
		return fmt.Errorf("--out %s exists and holds other files; give a new or empty folder", dir)
	}
	if bytes.Equal(old, dagYAML) || !finished(dir) {
		return nil
	}
	return fmt.Errorf("--out %s holds another, finished run (its %s differs from this one's); give a new folder, or rerun that one with 'dpsflow dag run %s'", dir, dagFile, filepath.Join(dir, dagFile))
}

// finished says whether the run in dir got to its end (save writes metrics.json last).
func finished(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, pipeline.MetricsFile))
	return err == nil
}

// runOutputs are what the save node writes into a run folder.
var runOutputs = []string{"input", "recon", "label", "masks", "progress", pipeline.GridFile, pipeline.MetricsFile}

// clearUnfinishedRun removes what an unfinished run of another DAG wrote into dir (its
// outputs; the cache is kept, its entries are content-addressed) so that its files do not
// mix with this run's, and says so.
func clearUnfinishedRun(cmd *cobra.Command, dir string, dagYAML []byte) error {
	old, err := os.ReadFile(filepath.Join(dir, "run.yaml"))
	if err != nil || bytes.Equal(old, dagYAML) {
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "replacing the unfinished run in %s (its run.yaml differs; the cache is kept)\n", dir)
	return removeRunOutputs(dir)
}

// removeRunOutputs deletes what a save node wrote into dir (not the cache).
func removeRunOutputs(dir string) error {
	for _, name := range runOutputs {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// emptyDir says whether dir is missing, empty, or holds only .dpsflow.
func emptyDir(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("--out: %w", err)
	}
	for _, e := range entries {
		if e.Name() != ".dpsflow" {
			return false, nil
		}
	}
	return true, nil
}

// cacheDirFor is where the results of a DAG file's nodes are kept: beside it, so that
// rerunning it (or resuming it) reuses them.
func cacheDirFor(dagFile string) string {
	return filepath.Join(filepath.Dir(dagFile), ".dpsflow", "cache")
}

// runGraph runs g with the cache in cacheDir, showing progress on stderr; Ctrl-C or
// SIGTERM stops it between sampler steps (a later run resumes).
func runGraph(cmd *cobra.Command, reg *dag.Registry, g *dag.Graph, cacheDir string, force []string) (*dag.Result, error) {
	cache, err := dag.OpenCache(cacheDir)
	if err != nil {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := newProgress(cmd.ErrOrStderr())
	r := &dag.Runner{Registry: reg, Cache: cache, Events: p.event, Force: force}
	res, err := r.Run(ctx, g)
	p.finish()
	if err != nil && ctx.Err() != nil {
		return nil, interruptedError{fmt.Errorf("interrupted: finished nodes are cached and the sampler checkpointed; run the same command again to resume (%w)", err)}
	}
	return res, err
}

func printMetrics(cmd *cobra.Command, res *dag.Result, spec pipeline.RunSpec) {
	out := cmd.OutOrStdout()
	show := func(node string) {
		v, err := res.Value(node + ".metrics")
		if err != nil {
			return
		}
		m := v.(*pipeline.Metrics)
		var parts []string
		for _, k := range []string{"psnr", "ssim", "residual", "seconds"} {
			if s, ok := m.Summary[k]; ok {
				parts = append(parts, fmt.Sprintf("%s %.4g ± %.2g", k, s.Mean, s.Std))
			}
		}
		fmt.Fprintf(out, "%-8s %s\n", m.Method, strings.Join(parts, ", "))
	}
	show("metrics")
	if spec.Baseline != "" {
		show("metrics_" + spec.Baseline)
	}
}
