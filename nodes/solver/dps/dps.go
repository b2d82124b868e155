// Package dps registers the DPS family as solvers: dps (Diffusion Posterior Sampling,
// Chung et al. 2023; alias ps), dps+ (ps+), mcg, projection and vanilla. Each is the
// compiled sampler of nodes/sampler with a guidance of nodes/guidance, driven by the shared
// solver loop; DDPM/DDIM, the step rule, the batch-wide norm, the variance type, clipping
// and what a run returns are parameters.
//
// FromConfig turns any sampler configuration — including a guidance written in Go or in a
// notebook cell — into a Solver, which is how the DAG's wired tweedie/likelihood/update
// composition runs.
package dps

import (
	"context"
	"fmt"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func init() {
	for _, s := range Solvers() {
		solver.MustRegister(s)
	}
}

// Solvers are the DPS family, one per guidance method.
func Solvers() []solver.Solver {
	return []solver.Solver{
		family{method: guidance.PS, info: solver.Info{Name: "dps", Aliases: []string{"ps"},
			Doc: "Diffusion Posterior Sampling (Chung et al., ICLR 2023): x_{t−1} = x' − ζ∇_{x_t}‖y − A(x̂0)‖"}},
		family{method: guidance.PSPlus, info: solver.Info{Name: "dps+", Aliases: []string{"ps+"},
			Doc: "DPS with the norm averaged over num_sampling jittered x̂0 (the reference's ps+)"}},
		family{method: guidance.MCG, info: solver.Info{Name: "mcg", Needs: []operator.Capability{operator.CapProjection},
			Doc: "manifold-constrained gradient (Chung et al., NeurIPS 2022): a DPS step, then projection onto the noised y"}},
		family{method: guidance.Projection, info: solver.Info{Name: "projection", Needs: []operator.Capability{operator.CapProjection},
			Doc: "Score-SDE / ILVR projection: replace the measured part of x_{t−1} by y noised to the step's level"}},
		family{method: guidance.Vanilla, info: solver.Info{Name: "vanilla",
			Doc: "unconditional samples of the prior (no measurement): the floor every solver should beat"}},
	}
}

// samplerParams are every family member's sampler options.
var samplerParams = []solver.Param{
	{Name: "steps", Type: solver.Int, Default: 1000, Doc: "sampler steps: the 1000-step DDPM schedule respaced", Min: 1, MinSet: true},
	{Name: "respacing", Type: solver.String, Default: "even", Enum: []string{"even", "stride"},
		Doc: "which steps are kept: even (guided-diffusion's \"N\", both ends) or stride (its \"ddimN\": 0, k, 2k, …)"},
	{Name: "sampler", Type: solver.String, Default: "ddpm", Enum: []string{"ddpm", "ddim"}, Doc: "ddpm (ancestral, the reference) or ddim"},
	{Name: "eta", Type: solver.Float, Default: 0.0, Min: 0, MinSet: true, Doc: "DDIM's η (0 deterministic, 1 ancestral-like)"},
	{Name: "variance", Type: solver.String, Default: "auto", Enum: []string{"auto", "fixed_small", "fixed_large", "learned_range"},
		Doc: "DDPM variance; auto: learned_range when the prior outputs it, else fixed_small"},
	{Name: "clip", Type: solver.Bool, Default: true, Doc: "clip x̂0 to [-1, 1] (the reference)"},
	{Name: "return", Type: solver.String, Default: "sample", Enum: []string{"sample", "x0hat"},
		Doc: "sample: the final x_0 (the reference code); x0hat: the last Tweedie estimate (Algorithm 1)"},
}

// gradientParams are the DPS step's options (dps, dps+, mcg).
var gradientParams = []solver.Param{
	{Name: "scale", Type: solver.Float, Default: 1.0, Min: 0, MinSet: true, MinExclusive: true,
		Doc: "step size: the reference's constant scale (rule reference) or ζ′ (rule paper)"},
	{Name: "rule", Type: solver.String, Default: "reference", Enum: []string{"reference", "paper"},
		Doc: "reference: scale·∇‖r‖; paper: (ζ′/‖r‖)·∇‖r‖² (equal for ζ′ = scale/2)"},
	{Name: "batch_norm", Type: solver.Bool, Default: false, Doc: "one norm over the whole batch, as the reference (results then depend on the batch size)"},
}

// plusParams are dps+'s own.
var plusParams = []solver.Param{
	{Name: "num_sampling", Type: solver.Int, Default: 5, Min: 1, MinSet: true, Doc: "jittered x̂0 the norm is averaged over"},
	{Name: "jitter", Type: solver.Float, Default: 0.05, Min: 0, MinSet: true, Doc: "amplitude of the uniform [0, 1) jitter added to x̂0"},
}

// family is one member of the DPS family.
type family struct {
	method guidance.Method
	info   solver.Info
}

func (f family) Info() solver.Info {
	info := f.info
	info.NeedsPrior = true
	info.Params = append([]solver.Param(nil), samplerParams...)
	if f.method == guidance.PS || f.method == guidance.PSPlus || f.method == guidance.MCG {
		info.Params = append(info.Params, gradientParams...)
	}
	if f.method == guidance.PSPlus {
		info.Params = append(info.Params, plusParams...)
	}
	return info
}

// SamplerConfig is the sampler configuration that params (resolved for this solver) stand for.
func (f family) SamplerConfig(params solver.Params) sampler.Config {
	g := guidance.Config{Method: f.method, Scale: params.Float("scale"), Rule: guidance.Rule(params.String("rule")),
		BatchNorm: params.Bool("batch_norm"), PlusSamples: params.Int("num_sampling"), PlusJitter: params.Float("jitter")}
	variance := params.String("variance")
	if variance == "auto" {
		variance = ""
	}
	return sampler.Config{Kind: sampler.Kind(params.String("sampler")), Steps: params.Int("steps"), Respacing: sampler.Respacing(params.String("respacing")), Eta: params.Float("eta"),
		NoClip: !params.Bool("clip"), Variance: sampler.VarianceType(variance), Return: sampler.Return(params.String("return")), Guidance: g}
}

func (f family) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	return FromConfig(f.info.Name, f.SamplerConfig(params)).Prepare(p, nil)
}

// InFamily says whether s is one of the DPS family (Solvers): the solvers the reference task
// YAML's conditioning params (scale, num_sampling) and the runs' 100 steps are meant for.
func InFamily(s solver.Solver) bool { _, ok := s.(family); return ok }

// SamplerConfig is the sampler configuration of a DPS-family solver s with resolved params;
// false when s is not one.
func SamplerConfig(s solver.Solver, params solver.Params) (sampler.Config, bool) {
	f, ok := s.(family)
	if !ok {
		return sampler.Config{}, false
	}
	return f.SamplerConfig(params), true
}

// FromConfig is the solver that runs the sampler with cfg (any guidance) under name. It has
// no parameters: cfg is all of them.
func FromConfig(name string, cfg sampler.Config) solver.Solver { return composed{name: name, cfg: cfg} }

type composed struct {
	name string
	cfg  sampler.Config
}

func (c composed) Info() solver.Info {
	return solver.Info{Name: c.name, NeedsPrior: true, Doc: "a diffusion sampler with a wired guidance, Tweedie estimate and update"}
}

func (c composed) Prepare(p *solver.Problem, _ solver.Params) (solver.Run, error) {
	sched := p.Schedule
	if sched == nil {
		sched = schedule.Default()
	}
	s, err := sampler.New(p.Backend, p.Prior, sched, p.Operator, p.Noise, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", c.name, err)
	}
	return &run{s: s, shape: p.XShape}, nil
}

type run struct {
	s     *sampler.Sampler
	shape shapes.Shape
}

// Solve runs the sampler; NFE is one network evaluation per step (ps+'s jittered norms
// reuse the step's x̂0).
func (r *run) Solve(ctx context.Context, y *tensors.Tensor, seed uint64, h solver.Hooks) (*solver.Result, error) {
	res, err := r.s.RunWith(ctx, y, r.shape, seed, h)
	if err != nil {
		return nil, err
	}
	return &solver.Result{X: res.X, Distances: res.Distances, NFE: r.s.Schedule().Len()}, nil
}
