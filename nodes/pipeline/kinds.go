package pipeline

import (
	"fmt"
	"math"
	"slices"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/codever"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver/dps"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// NewRegistry is a dag registry with the DPS types and kinds.
func NewRegistry() (*dag.Registry, error) {
	reg := dag.NewRegistry()
	if err := Register(reg); err != nil {
		return nil, err
	}
	return reg, nil
}

// Register adds the DPS port types and node kinds to reg.
func Register(reg *dag.Registry) error {
	if err := RegisterTypes(reg); err != nil {
		return err
	}
	for _, k := range Kinds() {
		if err := reg.Register(k); err != nil {
			return err
		}
	}
	return nil
}

// Kinds are the DPS node kinds (see the package doc).
func Kinds() []dag.Kind {
	return append([]dag.Kind{
		{
			Name: "mnist", Version: "1", Check: checkMNIST, CodeVersion: codever.Of("nodes/mnist"), Doc: "MNIST digits [start, start+n) of a split, as 1×32×32 images in [-1, 1]",
			Params:  []dag.Param{{Name: "split", Type: "string", Default: "test"}, {Name: "start", Type: "int", Default: 0}, {Name: "n", Type: "int", Default: 8}},
			Outputs: []dag.Port{{Name: "images", Type: TypeImages}},
			Run: func(c *dag.Call) error {
				im, err := LoadMNIST(c.String("split"), c.Int("start"), c.Int("n"))
				c.Set("images", im)
				return err
			},
		},
		{
			Name: "images", Version: "2", Check: checkImages, CodeVersion: codever.Of("nodes/npy"), Fingerprint: fingerprintImages,
			Doc: "images from a PNG/JPEG folder, one PNG/JPEG file or a .npy file, checked against the prior's size and channels (colour refused for a grey prior; transparency composited on black)",
			Params: []dag.Param{{Name: "path", Type: "string", Required: true}, {Name: "n", Type: "int", Default: 0, Doc: "keep the first n (0: all)"},
				{Name: "channels", Type: "int", Default: 1}, {Name: "size", Type: "int", Default: 32}},
			Outputs: []dag.Port{{Name: "images", Type: TypeImages}},
			Run: func(c *dag.Call) error {
				im, err := LoadImages(c.String("path"), c.Int("channels"), c.Int("size"), c.Int("n"))
				c.Set("images", im)
				return err
			},
		},
		{
			Name: "prior", Version: "1", Check: checkPrior, CodeVersion: codever.Of("nodes/prior/adm", "models"), Fingerprint: fingerprintPrior,
			Doc:     "a score network: builtin mnist, or model_config + checkpoint; hashes both so edits invalidate what depends on them",
			Params:  []dag.Param{{Name: "builtin", Type: "string"}, {Name: "model_config", Type: "string"}, {Name: "checkpoint", Type: "string"}},
			Outputs: []dag.Port{{Name: "prior", Type: TypePrior}},
			Run: func(c *dag.Call) error {
				s, err := NewPriorSpec(optString(c, "builtin"), optString(c, "model_config"), optString(c, "checkpoint"))
				c.Set("prior", s)
				return err
			},
		},
		{
			Name: "operator", Version: "1", CodeVersion: codever.Of("nodes/operator"), Doc: "the measurement operator A by reference task name and parameters (seeded random parts)",
			Params:  []dag.Param{{Name: "name", Type: "string", Required: true}, {Name: "params", Type: "map"}},
			Outputs: []dag.Port{{Name: "operator", Type: TypeOperator}},
			Run: func(c *dag.Call) error {
				s := OperatorSpec{Name: c.String("name"), Seed: c.Seed()}
				if p, ok := c.Param("params").(map[string]any); ok {
					s.Params = p
				}
				c.Set("operator", s)
				return nil
			},
		},
		{
			Name: "noise", Version: "1", Check: checkNoise, CodeVersion: codever.Of("nodes/noise"),
			Doc: "the noise model and likelihood: gaussian (sigma, in [-1, 1] units) or poisson (rate; likelihood form paper|reference|plain|model|nll, floor in counts)",
			Params: []dag.Param{{Name: "name", Type: "string", Default: "gaussian"}, {Name: "sigma", Type: "float", Default: 0.05}, {Name: "rate", Type: "float", Default: 1.0},
				{Name: "form", Type: "string", Default: "", Doc: "poisson likelihood (empty: the default form)"}, {Name: "floor", Type: "float", Default: 0.0, Doc: "poisson weight floor in counts (0: 32 for paper, 1 for the others)"}},
			Outputs: []dag.Port{{Name: "noise", Type: TypeNoise}},
			Run: func(c *dag.Call) error {
				s := NoiseSpec{Name: c.String("name")}
				if s.Name == "poisson" {
					s.Rate, s.Form, s.Floor = c.Float("rate"), c.String("form"), c.Float("floor")
				} else {
					s.Sigma = c.Float("sigma")
				}
				_, err := s.Build()
				c.Set("noise", s)
				return err
			},
		},
		{
			Name: "likelihood", Version: "1", Check: checkLikelihood, CodeVersion: codever.Of("nodes/guidance"), Doc: "the guidance: method vanilla|projection|mcg|ps|ps+, scale, rule reference|paper",
			Params: []dag.Param{{Name: "method", Type: "string", Default: "ps"}, {Name: "scale", Type: "float", Default: 1.0},
				{Name: "rule", Type: "string", Default: "reference"}, {Name: "batch_norm", Type: "bool", Default: false}},
			Outputs: []dag.Port{{Name: "likelihood", Type: TypeLikelihood}},
			Run: func(c *dag.Call) error {
				c.Set("likelihood", LikelihoodSpec{Method: guidance.Method(c.String("method")), Scale: c.Float("scale"),
					Rule: guidance.Rule(c.String("rule")), BatchNorm: c.Bool("batch_norm")})
				return nil
			},
		},
		{
			Name: "tweedie", Version: "1", CodeVersion: codever.Of("nodes/tweedie"), Doc: "the Tweedie estimate x̂0 = (x_t − √(1−ᾱ) ε̂)/√ᾱ, clipped to [-1, 1] or not",
			Params:  []dag.Param{{Name: "clip", Type: "bool", Default: true}},
			Outputs: []dag.Port{{Name: "tweedie", Type: TypeTweedie}},
			Run:     func(c *dag.Call) error { c.Set("tweedie", TweedieSpec{Clip: c.Bool("clip")}); return nil },
		},
		{
			Name: "update", Version: "1", Check: checkUpdate, CodeVersion: codever.Of("nodes/sampler"), Doc: "the posterior update: kind ddpm|ddim, steps (respaced), eta, variance, return sample|x0hat",
			Params: []dag.Param{{Name: "kind", Type: "string", Default: "ddpm"}, {Name: "steps", Type: "int", Default: 100}, {Name: "eta", Type: "float", Default: 0.0},
				{Name: "variance", Type: "string", Default: ""}, {Name: "return", Type: "string", Default: ""}},
			Outputs: []dag.Port{{Name: "update", Type: TypeUpdate}},
			Run: func(c *dag.Call) error {
				c.Set("update", UpdateSpec{Kind: c.String("kind"), Steps: c.Int("steps"), Eta: c.Float("eta"), Variance: c.String("variance"), Return: c.String("return")})
				return nil
			},
		},
		{
			Name: "measure", Version: "2", CodeVersion: codever.Of("nodes/operator", "nodes/noise", "xla"), Doc: "y = A(x) + noise, drawn from the node's seed (each image's operator from the operator seed and its index), and a picture of y",
			Inputs:  []dag.Port{{Name: "images", Type: TypeImages}, {Name: "operator", Type: TypeOperator}, {Name: "noise", Type: TypeNoise}},
			Outputs: []dag.Port{{Name: "measurement", Type: TypeMeasurement}},
			Run:     runMeasure,
		},
		{
			Name: "solver", Version: "1", Check: checkSolver, CodeVersion: codever.Of("nodes/solver/builtin"), Doc: "a named solver of `dpsflow solvers` with its params (unknown names and bad params refused)",
			Params:  []dag.Param{{Name: "name", Type: "string", Default: "dps"}, {Name: "params", Type: "map"}},
			Outputs: []dag.Port{{Name: "solver", Type: TypeSolver}},
			Run: func(c *dag.Call) error {
				given, _ := c.Param("params").(map[string]any)
				s, err := NewSolverSpec(c.String("name"), given)
				c.Set("solver", s)
				return err
			},
		},
		{
			Name: "sample", Version: "3", Check: checkSample, CodeVersion: codever.Of("nodes/solver/builtin", "nodes/prior/adm", "nodes/operator", "nodes/noise", "nodes/metrics", "xla"),
			Doc: "runs a solver over the batch (a named one, or the wired likelihood + tweedie + update), with optional restarts; resumes from checkpoints after a kill",
			Inputs: []dag.Port{{Name: "prior", Type: TypePrior, Optional: true, Doc: "the diffusion prior (classical solvers need none)"},
				{Name: "operator", Type: TypeOperator}, {Name: "noise", Type: TypeNoise},
				{Name: "solver", Type: TypeSolver, Optional: true, Doc: "a named solver; or wire likelihood, tweedie and update"},
				{Name: "likelihood", Type: TypeLikelihood, Optional: true}, {Name: "tweedie", Type: TypeTweedie, Optional: true},
				{Name: "update", Type: TypeUpdate, Optional: true},
				{Name: "measurement", Type: TypeMeasurement}, {Name: "truth", Type: TypeImages, Optional: true, Doc: "for the PSNR-per-step curve"}},
			Params: []dag.Param{{Name: "batch", Type: "int", Default: 8}, {Name: "snapshot_every", Type: "int", Default: 10},
				{Name: "checkpoint_every", Type: "int", Default: 10}, {Name: "backend", Type: "string", Default: "embedded"},
				{Name: "restarts", Type: "int", Default: 1, Doc: "runs per image with different seeds; keeps the one with the smallest final ‖y − A(x̂0)‖"}},
			Outputs: []dag.Port{{Name: "recon", Type: TypeImages}, {Name: "trace", Type: TypeTrace}},
			Run:     runSample,
		},
		{
			Name: "metrics", Version: "2", CodeVersion: codever.Of("nodes/metrics", "nodes/operator", "xla"), Doc: "per image and mean ± std: PSNR and SSIM (with truth), ‖y − A(x)‖, seconds, network evaluations",
			Inputs: []dag.Port{{Name: "recon", Type: TypeImages}, {Name: "measurement", Type: TypeMeasurement}, {Name: "operator", Type: TypeOperator},
				{Name: "trace", Type: TypeTrace}, {Name: "likelihood", Type: TypeLikelihood, Optional: true, Doc: "unused: the trace names the solver (kept for run files of earlier versions)"},
				{Name: "truth", Type: TypeImages, Optional: true}},
			Outputs: []dag.Port{{Name: "metrics", Type: TypeMetrics}},
			Run:     runMetrics,
		},
		{
			Name: "save", Version: "1", Check: checkSave, NoCache: true,
			Doc: "writes DIR/input, recon, label PNGs, masks/ (inpainting), grid.png, progress/ (snapshots, curves as PNG and HTML) and metrics.json",
			Inputs: []dag.Port{{Name: "measurement", Type: TypeMeasurement}, {Name: "recon", Type: TypeImages}, {Name: "trace", Type: TypeTrace},
				{Name: "operator", Type: TypeOperator, Optional: true, Doc: "for masks/: each image's inpainting mask"},
				{Name: "metrics", Type: TypeMetrics}, {Name: "truth", Type: TypeImages, Optional: true},
				{Name: "baseline", Type: TypeImages, Optional: true, Doc: "another method's reconstructions, shown in the grid"},
				{Name: "baseline_metrics", Type: TypeMetrics, Optional: true},
				{Name: "solver", Type: TypeSolver, Optional: true, Doc: "recorded in metrics.json (name, params, steps)"},
				{Name: "noise", Type: TypeNoise, Optional: true, Doc: "recorded in metrics.json"}},
			Params: []dag.Param{{Name: "dir", Type: "string", Required: true, Doc: "the run folder; relative to run.yaml's folder when read from a file"},
				{Name: "run", Type: "map", Doc: "task, seed and backend, recorded in metrics.json"}},
			Outputs: []dag.Port{{Name: "files", Type: "strings"}},
			Run:     runSave,
		},
	}, evalKinds()...)
}

func optString(c *dag.Call, name string) string {
	s, _ := c.Param(name).(string)
	return s
}

// hostBackendSpec runs the small host-side graphs (measure, metrics); sampling uses the
// node's backend parameter.
const hostBackendSpec = "embedded"

// applyOperator computes A(x) for every image, each through its own operator (drawn from
// the spec's seed and the image's index), in chunks on the shared host backend.
func applyOperator(spec OperatorSpec, im *Images) (*tensors.Tensor, error) {
	be, release, err := xla.Shared(hostBackendSpec)
	if err != nil {
		return nil, err
	}
	defer release()
	var parts []float32
	var dims []int
	for lo := 0; lo < im.N; lo += applyChunk {
		hi := min(im.N, lo+applyChunk)
		op, err := spec.BuildBatch(im.H, im.W, lo, hi-lo)
		if err != nil {
			return nil, err
		}
		x := im.Tensor(lo, hi)
		if _, err := op.MeasurementShape(x.Shape()); err != nil {
			return nil, err
		}
		exec, err := graph.NewExec(be, op.Apply)
		if err != nil {
			return nil, err
		}
		y, err := exec.Exec1(x)
		exec.Finalize()
		if err != nil {
			return nil, err
		}
		parts = append(parts, tensors.MustCopyFlatData[float32](y)...)
		dims = y.Shape().Dimensions
		y.FinalizeAll()
	}
	dims = append([]int{im.N}, dims[1:]...)
	return tensors.FromFlatDataAndDimensions(parts, dims...), nil
}

// applyChunk bounds the images one operator graph takes (per-image operators grow with it).
const applyChunk = 16

func runMeasure(c *dag.Call) error {
	im := c.In("images").(*Images)
	clean, err := applyOperator(c.In("operator").(OperatorSpec), im)
	if err != nil {
		return err
	}
	nm, err := c.In("noise").(NoiseSpec).Build()
	if err != nil {
		return err
	}
	y, err := nm.Measure(clean, c.Seed())
	if err != nil {
		return err
	}
	m := &Measurement{Shape: y.Shape().Dimensions, Y: tensors.MustCopyFlatData[float32](y)}
	m.View = viewOf(m, im)
	c.Set("measurement", m)
	return nil
}

// viewOf pictures y at the images' size: y itself when it has their shape, a nearest
// upscaling when it is a smaller image, else its log-magnitude scaled to [-1, 1] per image
// (phase retrieval), resampled to the images' size.
func viewOf(m *Measurement, im *Images) *Images {
	v := &Images{N: im.N, C: im.C, H: im.H, W: im.W, Pixels: make([]float32, len(im.Pixels)), Names: im.Names}
	d := m.Shape
	if len(d) != 4 || d[1] != im.C {
		return v // not an image: left blank
	}
	h, w := d[2], d[3]
	logScale := !(im.H%h == 0 && im.W%w == 0)
	for i := range im.N {
		row, dst := m.Row(i), v.Image(i)
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		val := func(k int) float32 {
			if logScale {
				return float32(math.Log1p(math.Abs(float64(row[k]))))
			}
			return row[k]
		}
		if logScale {
			for k := range row {
				lo, hi = min(lo, val(k)), max(hi, val(k))
			}
		}
		for ch := range im.C {
			for y := range im.H {
				for x := range im.W {
					k := ch*h*w + (y*h/im.H)*w + x*w/im.W
					p := val(k)
					if logScale && hi > lo {
						p = 2*(p-lo)/(hi-lo) - 1
					}
					dst[ch*im.H*im.W+y*im.W+x] = max(-1, min(1, p))
				}
			}
		}
	}
	return v
}

func runMetrics(c *dag.Call) error {
	recon := c.In("recon").(*Images)
	m := c.In("measurement").(*Measurement)
	tr := c.In("trace").(*Trace)
	ax, err := applyOperator(c.In("operator").(OperatorSpec), recon)
	if err != nil {
		return err
	}
	axs := tensors.MustCopyFlatData[float32](ax)
	per := len(axs) / recon.N
	truth, _ := c.In("truth").(*Images)
	out := &Metrics{Method: tr.Solver}
	cols := map[string][]float64{}
	for i := range recon.N {
		r := ImageMetrics{Name: recon.Names[i], Residual: metrics.Residual(m.Row(i), axs[i*per:(i+1)*per]), Seconds: tr.Seconds[i]}
		cols["residual"] = append(cols["residual"], r.Residual)
		cols["seconds"] = append(cols["seconds"], r.Seconds)
		if i < len(tr.NFE) {
			r.NFE = tr.NFE[i]
			cols["nfe"] = append(cols["nfe"], float64(r.NFE))
		}
		if truth != nil {
			est := clipped(recon.Image(i))
			r.PSNR = metrics.PSNR(est, truth.Image(i), 2)
			if r.SSIM, err = metrics.SSIM(est, truth.Image(i), recon.C, recon.H, recon.W, 2); err != nil {
				return fmt.Errorf("SSIM of %s: %w", recon.Names[i], err)
			}
			cols["psnr"] = append(cols["psnr"], r.PSNR)
			cols["ssim"] = append(cols["ssim"], r.SSIM)
		}
		out.Images = append(out.Images, r)
	}
	out.Summary = map[string]Stat{}
	for k, xs := range cols {
		mean, std := metrics.MeanStd(xs)
		out.Summary[k] = Stat{Mean: mean, Std: std}
	}
	c.Set("metrics", out)
	return nil
}

// clipped is a copy of x clipped to [-1, 1], the range images are scored in.
func clipped(x []float32) []float32 {
	out := slices.Clone(x)
	for i, v := range out {
		out[i] = max(-1, min(1, v))
	}
	return out
}

// The kinds' Check functions: what Run would refuse, found by 'dag explain' and before a
// run starts. params have their declared types (dag.Validate checks those first).

func paramErr(name, format string, args ...any) error {
	return &dag.ParamError{Param: name, Msg: fmt.Sprintf(format, args...)}
}

func checkMNIST(p map[string]any) error {
	if split := p["split"].(string); split != "train" && split != "test" {
		return paramErr("split", "%q is not train or test", split)
	}
	if n := p["n"].(int); n < 1 {
		return paramErr("n", "%d images; give at least 1", n)
	}
	if start := p["start"].(int); start < 0 {
		return paramErr("start", "%d is negative", start)
	}
	_, err := LoadMNIST(p["split"].(string), p["start"].(int), p["n"].(int))
	return err
}

func checkImages(p map[string]any) error {
	for _, name := range []string{"channels", "size"} {
		if v := p[name].(int); v < 1 {
			return paramErr(name, "%d; must be at least 1", v)
		}
	}
	if n := p["n"].(int); n < 0 {
		return paramErr("n", "%d is negative (0 keeps every image)", n)
	}
	// The file itself: a header that does not fit, zero images, the wrong size.
	if _, err := LoadImages(p["path"].(string), p["channels"].(int), p["size"].(int), p["n"].(int)); err != nil {
		return paramErr("path", "%v", err)
	}
	return nil
}

func checkPrior(p map[string]any) error {
	str := func(k string) string { s, _ := p[k].(string); return s }
	_, err := NewPriorSpec(str("builtin"), str("model_config"), str("checkpoint"))
	return err
}

func checkNoise(p map[string]any) error {
	s := NoiseSpec{Name: p["name"].(string)}
	if s.Name == "poisson" {
		s.Rate, s.Form, s.Floor = p["rate"].(float64), p["form"].(string), p["floor"].(float64)
	} else {
		s.Sigma = p["sigma"].(float64)
	}
	_, err := s.Build()
	return err
}

func checkLikelihood(p map[string]any) error {
	if scale := p["scale"].(float64); math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 0 {
		return paramErr("scale", "%v; must be a finite number ≥ 0", scale)
	}
	// The operator is not known here: the projection methods are checked as the methods
	// that take the same params (the sample node checks them against the operator).
	method := guidance.Method(p["method"].(string))
	switch method {
	case guidance.Projection:
		method = guidance.Vanilla
	case guidance.MCG:
		method = guidance.PS
	}
	_, err := LikelihoodSpec{Method: method, Scale: p["scale"].(float64), Rule: guidance.Rule(p["rule"].(string))}.Validate(nil)
	return err
}

func checkUpdate(p map[string]any) error {
	T := schedule.Default().Len()
	if steps := p["steps"].(int); steps < 0 || steps > T {
		return paramErr("steps", "%d; must be in [0, %d] (the schedule's steps; 0: all of them)", steps, T)
	}
	if eta := p["eta"].(float64); !(eta >= 0) || math.IsInf(eta, 0) {
		return paramErr("eta", "%v; must be a finite number ≥ 0", eta)
	}
	if k := p["kind"].(string); k != string(sampler.DDPM) && k != string(sampler.DDIM) {
		return paramErr("kind", "%q is not %s or %s", k, sampler.DDPM, sampler.DDIM)
	}
	return nil
}

func checkSolver(p map[string]any) error {
	given, _ := p["params"].(map[string]any)
	s, err := NewSolverSpec(p["name"].(string), given)
	if err != nil {
		return err
	}
	return CheckSolverSteps(s)
}

// CheckSolverSteps refuses a DPS-family solver whose steps do not fit the 1000-step
// schedule it respaces (the sampler would find out only when the sample node runs).
func CheckSolverSteps(s SolverSpec) error {
	sv, params, err := s.Solver()
	if err != nil {
		return err
	}
	cfg, ok := dps.SamplerConfig(sv, params)
	if !ok {
		return nil
	}
	sched := schedule.Default()
	if cfg.Steps > sched.Len() {
		return fmt.Errorf("solver %s: param steps: %d is above the schedule's %d steps", s.Name, cfg.Steps, sched.Len())
	}
	if cfg.Respacing == sampler.RespaceStride && cfg.Steps > 0 {
		if _, err := sched.RespaceStride(cfg.Steps); err != nil {
			return fmt.Errorf("solver %s: param steps: %w", s.Name, err)
		}
	}
	return nil
}

func checkSample(p map[string]any) error {
	for _, name := range []string{"batch", "restarts"} {
		if v := p[name].(int); v < 1 {
			return paramErr(name, "%d; must be at least 1", v)
		}
	}
	for _, name := range []string{"snapshot_every", "checkpoint_every"} {
		if v := p[name].(int); v < 0 {
			return paramErr(name, "%d is negative (0: never)", v)
		}
	}
	return CheckBackend(p["backend"].(string))
}

// CheckBackend loads the backend of spec once, as 'dpsflow doctor' does, so that a missing
// or broken PJRT plugin is found before anything runs. Errors are *xla.SpecError.
func CheckBackend(spec string) error {
	_, release, err := xla.Shared(spec)
	if err != nil {
		return err
	}
	release()
	return nil
}

func checkSave(p map[string]any) error {
	if p["dir"].(string) == "" {
		return paramErr("dir", "empty; give the run folder")
	}
	return nil
}
