package reddiff

import (
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
)

func init() { solver.MustRegister(New()) }

// Name is the solver's registered name.
const Name = "reddiff"

// adamEps is torch.optim.Adam's default ε, which the official code keeps.
const adamEps = 1e-8

// Weightings are the official denoise_term_weight choices: how λ_t grows with the inverse
// signal-to-noise ratio σ_t/α_t = √((1−ᾱ_t)/ᾱ_t).
var Weightings = []string{"linear", "sqrt", "square", "log", "trunc_linear", "power2over3", "const"}

// Inits are the starting points of μ.
var Inits = []string{"auto", "pinv", "measurement", "zeros", "random"}

// New is the RED-diff solver (also registered as "reddiff").
func New() solver.Solver { return reddiff{} }

type reddiff struct{}

func (reddiff) Info() solver.Info {
	params := diffusion.StepParams(1000, "optimisation steps, one per timestep of the 1000-step DDPM schedule respaced (paper and official code: 1000; ≥ 1)")
	params[1].Default = "stride"
	params[1].Doc = "which timesteps are visited, from noisiest to 0: stride (the official get_timesteps: 0, k, 2k, … for k = 1000/steps; steps must give an integer stride) or even (both ends)"
	params = append(params,
		solver.Param{Name: "lr", Type: solver.Float, Default: 0.25, Min: 0, MinSet: true, MinExclusive: true,
			Doc: "Adam learning rate on μ ([-1, 1] image units per step, > 0): official config 0.1, its README's runs 0.25 (inpainting) and 0.5 (the others); 0.25 here (on two 32² digits 0.1/0.25/0.5 give sr4 22.3/22.2/21.5 dB, inpaint-box 14.3/14.6/15.9 dB)"},
		solver.Param{Name: "lambda", Type: solver.Float, Default: 0.25, Min: 0, MinSet: true,
			Doc: "weight λ of the denoising regulariser (official grad_term_weight, config default 0.25; ≥ 0): λ_t = λ·weighting(σ_t/α_t)"},
		solver.Param{Name: "obs_weight", Type: solver.Float, Default: 1.0, Min: 0, MinSet: true,
			Doc: "weight of the data term mean((y − A(μ))²)/2 (official obs_weight 1; ≥ 0); the official loss is not divided by σ_y², this weight absorbs it"},
		solver.Param{Name: "weighting", Type: solver.String, Default: "linear", Enum: Weightings,
			Doc: "λ_t's dependence on r = σ_t/α_t (official denoise_term_weight, default linear): linear r, sqrt √r, square r², log log(1+r), trunc_linear min(r, 1), power2over3 r^(2/3), const 1"},
		solver.Param{Name: "beta1", Type: solver.Float, Default: 0.9, Min: 0, MinSet: true,
			Doc: "Adam's first-moment decay β₁ in [0, 1) (official 0.9)"},
		solver.Param{Name: "beta2", Type: solver.Float, Default: 0.99, Min: 0, MinSet: true,
			Doc: "Adam's second-moment decay β₂ in [0, 1) (official 0.99, not torch's 0.999)"},
		solver.Param{Name: "init", Type: solver.String, Default: "auto", Enum: Inits,
			Doc: "μ's start: auto (the official H_pinv(y): A⁺y — through the SVD with singular values below 3 % of the largest dropped — when the operator has an SVD or pseudo-inverse, |crop F⁻¹y| for phase retrieval, y itself for other image-shaped measurements, else zeros), pinv (that A⁺y), measurement (y, when shaped like x), zeros, random (N(0, I))"},
		solver.Param{Name: "clip", Type: solver.Bool, Default: false,
			Doc: "clamp the returned μ to [-1, 1] (the iterate itself is never clamped); official: false"},
	)
	return solver.Info{Name: Name, NeedsPrior: true, Params: params,
		Doc: "RED-diff (Mardani et al., ICLR 2024): Adam on μ for ‖y − A(μ)‖²/2 + λ_t⟨sg(ε̂(x_t, t) − ε), μ⟩ over t = T…0; no backprop through the network"}
}

// ValidateParams checks the bounds Resolve cannot express.
func (reddiff) ValidateParams(p solver.Params) error {
	for _, name := range []string{"beta1", "beta2"} {
		if b := p.Float(name); !(b < 1) {
			return fmt.Errorf("param %s: %v must be < 1", name, b)
		}
	}
	return nil
}

// CheckProblem refuses, before any work, a respacing the prior's schedule cannot give and
// an init the operator cannot provide. Any noise model is accepted (see the package doc).
func (reddiff) CheckProblem(p *solver.Problem, params solver.Params) error {
	if _, err := diffusion.Schedule(p, params.Int("steps"), params.String("respacing")); err != nil {
		return fmt.Errorf("param steps/respacing: %w", err)
	}
	switch params.String("init") {
	case "pinv":
		if !operator.Has(p.Operator, operator.CapPseudoInverse) && !operator.Has(p.Operator, operator.CapSVD) {
			return fmt.Errorf("param init=pinv needs the operator's %s or %s, which %s does not offer",
				operator.CapPseudoInverse, operator.CapSVD, p.Operator.Name())
		}
	case "measurement":
		ys, err := p.Operator.MeasurementShape(p.XShape)
		if err != nil {
			return err
		}
		if !ys.Equal(p.XShape) {
			return fmt.Errorf("param init=measurement needs y shaped like x, and %s maps %s to %s", p.Operator.Name(), p.XShape, ys)
		}
	}
	return nil
}

// options are test knobs that break or bend the method; the zero value is RED-diff.
type options struct {
	// timesteps overrides the visited diffusion steps (loop order, one per step).
	timesteps []int
	// throughNet differentiates the regulariser through the network (no stop-gradient).
	throughNet bool
	// flipSign negates the regulariser's gradient.
	flipSign bool
}

// config is a prepared RED-diff run's tables and settings.
type config struct {
	p                 *solver.Problem
	steps             int
	timesteps         []int     // diffusion step per loop step
	sqrtAB, sqrt1mAB  []float64 // √ᾱ_t, √(1−ᾱ_t)
	regWeight         []float64 // λ·weighting(σ_t/α_t) / n (n = values per sample of x)
	stepSize, sqrtBC2 []float64 // Adam: lr/(1−β₁^k), √(1−β₂^k) for k = step+1
	beta1, beta2      float64
	obsWeight         float64 // obs_weight / (2m), m = values per sample of y
	init              string
	clip              bool
	opt               options
	gaussian          bool // squared error directly (else the noise model's Distance²)
}

// weight is the official denoise_term_weight of r = σ_t/α_t.
func weight(kind string, r float64) float64 {
	switch kind {
	case "sqrt":
		return math.Sqrt(r)
	case "square":
		return r * r
	case "log":
		return math.Log(r + 1)
	case "trunc_linear":
		return math.Min(r, 1)
	case "power2over3":
		return math.Pow(r, 2.0/3)
	case "const":
		return 1
	}
	return r // linear
}

func newConfig(p *solver.Problem, params solver.Params, opt options) (*config, error) {
	who := "solver " + Name
	steps := params.Int("steps")
	sched, err := diffusion.Schedule(p, steps, params.String("respacing"))
	if err != nil {
		return nil, fmt.Errorf("%s: param steps/respacing: %w", who, err)
	}
	ts := diffusion.Reversed(sched.Timesteps)
	abs := diffusion.Reversed(sched.AlphaBars)
	if opt.timesteps != nil {
		full := p.Schedule
		if full == nil {
			full = schedule.Default()
		}
		ts = opt.timesteps
		abs = make([]float64, len(ts))
		for k, t := range ts {
			abs[k] = full.AlphaBars[t]
		}
		steps = len(ts)
	}
	ms, err := p.Operator.MeasurementShape(p.XShape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	b := p.XShape.Dimensions[0]
	n, m := float64(p.XShape.Size()/b), float64(ms.Size()/b)
	c := &config{p: p, steps: steps, timesteps: ts, beta1: params.Float("beta1"), beta2: params.Float("beta2"),
		obsWeight: params.Float("obs_weight") / (2 * m), init: params.String("init"), clip: params.Bool("clip"), opt: opt}
	_, c.gaussian = p.Noise.(*noise.Gaussian)
	lr, lambda, kind := params.Float("lr"), params.Float("lambda"), params.String("weighting")
	for k := range steps {
		a := abs[k]
		c.sqrtAB = append(c.sqrtAB, math.Sqrt(a))
		c.sqrt1mAB = append(c.sqrt1mAB, math.Sqrt(1-a))
		c.regWeight = append(c.regWeight, lambda*weight(kind, math.Sqrt(1-a)/math.Sqrt(a))/n)
		step := float64(k + 1)
		c.stepSize = append(c.stepSize, lr/(1-math.Pow(c.beta1, step)))
		c.sqrtBC2 = append(c.sqrtBC2, math.Sqrt(1-math.Pow(c.beta2, step)))
	}
	return c, nil
}

// start is μ's starting point.
func (c *config) start(s *diffusion.Start) *Node {
	op, y, shape := c.p.Operator, s.Y, c.p.XShape
	g := y.Graph()
	pinv := func() *Node {
		if operator.Has(op, operator.CapSVD) {
			return operator.TruncatedPseudoInverse(op.(operator.Singular), y, shape, pinvCut)
		}
		return op.(operator.PseudoInverter).PseudoInverse(y)
	}
	switch c.init {
	case "pinv":
		return pinv()
	case "measurement":
		return y
	case "zeros":
		return Zeros(g, shape)
	case "random":
		return s.Normal(shape)
	}
	// auto: the official initialize(), H_pinv(y).
	switch {
	case operator.Has(op, operator.CapPseudoInverse) || operator.Has(op, operator.CapSVD):
		return pinv()
	case operator.Has(op, operator.CapMagnitudeProjection):
		// The official |fftshift(ifft2(ifftshift(y)))| cropped. ProjectMagnitude from z = 0
		// (phase 0 where F z = 0) is Re ifft2(ifftshift(y)), the centred DFT's adjoint; the
		// official also fftshifts the result (the origin to the centre of the padded grid).
		// ifft2 of a real image's centrosymmetric magnitudes is real, so |Re| is its modulus.
		mp := op.(operator.MagnitudeProjector)
		return Abs(mp.Crop(fftshift(mp.ProjectMagnitude(ZerosLike(y), y))))
	case y.Shape().Equal(shape):
		return y
	}
	return Zeros(g, shape)
}

// pinvCut is the official Deblurring's ZERO: singular values below pinvCut·max(s) are
// treated as 0 by the init's pseudo-inverse — A⁺y of the 61×61 Gaussian blur would amplify
// the noise by up to 1e10; the official blur truncates its per-axis values the same way.
// Pooling and inpainting (s ∈ {0, 1} or all equal) are unaffected.
const pinvCut = 3e-2

// fftshift is numpy's fftshift over the last two axes: index ⌊n/2⌋ receives index 0.
func fftshift(z *Node) *Node {
	for axis := 2; axis <= 3; axis++ {
		n := z.Shape().Dimensions[axis]
		if n < 2 {
			continue
		}
		cut := n - n/2
		head := SliceAxis(z, axis, AxisRange(cut, n))
		tail := SliceAxis(z, axis, AxisRange(0, cut))
		z = Concatenate([]*Node{head, tail}, axis)
	}
	return z
}

// dataGrad is ∇_μ obs_weight·mean((y − A(μ))²)/2 per sample (the official loss_obs; for
// non-Gaussian noise Distance² replaces the sum of squares), by graph.Gradient through the
// operator.
func (c *config) dataGrad(mu, y *Node) *Node {
	var sq *Node
	if c.gaussian {
		sq = ReduceAllSum(Square(Sub(y, c.p.Operator.Apply(mu))))
	} else {
		sq = ReduceAllSum(Square(c.p.Noise.Distance(y, c.p.Operator.Apply(mu))))
	}
	return MulScalar(Gradient(sq, mu)[0], c.obsWeight)
}

// update is one RED-diff step at loop step s.K with μ = s.X, Adam moments s.Aux and the
// forward-process noise eps: x_t = √ᾱ_t μ + √(1−ᾱ_t) ε, ε̂ = prior(x_t, t) (no gradient),
// g = ∇data + (λ_t/n)(ε̂ − ε), then Adam.
func (c *config) update(s *diffusion.Step, eps *Node) (mu, m, v *Node) {
	mu, m, v = s.X, s.Aux[0], s.Aux[1]
	xt := Add(Mul(s.At(c.sqrtAB), mu), Mul(s.At(c.sqrt1mAB), eps))
	t := BroadcastToDims(s.AtInt(c.timesteps), mu.Shape().Dimensions[0])
	epsHat, _ := c.p.Prior.Predict(xt, t)
	var reg *Node
	if c.opt.throughNet {
		reg = Gradient(ReduceAllSum(Mul(Sub(epsHat, eps), mu)), mu)[0]
	} else {
		reg = StopGradient(Sub(epsHat, eps))
	}
	reg = Mul(s.At(c.regWeight), reg)
	if c.opt.flipSign {
		reg = Neg(reg)
	}
	grad := Add(c.dataGrad(mu, s.Y), reg)
	m = Add(MulScalar(m, c.beta1), MulScalar(grad, 1-c.beta1))
	v = Add(MulScalar(v, c.beta2), MulScalar(Square(grad), 1-c.beta2))
	denom := AddScalar(Div(Sqrt(v), s.At(c.sqrtBC2)), adamEps)
	mu = Sub(mu, Mul(s.At(c.stepSize), Div(m, denom)))
	return mu, m, v
}

func (c *config) spec() diffusion.Spec {
	return diffusion.Spec{Name: Name, Problem: c.p, Steps: c.steps, NFE: c.steps, Timesteps: c.timesteps, Aux: 2,
		ReturnEstimate: true,
		Init: func(s *diffusion.Start) (*Node, []*Node) {
			mu := c.start(s)
			return mu, []*Node{ZerosLike(mu), ZerosLike(mu)}
		},
		Step: func(s *diffusion.Step) diffusion.Out {
			mu, m, v := c.update(s, s.Normal(c.p.XShape))
			est := mu
			if c.clip {
				est = ClipScalar(mu, -1, 1)
			}
			return diffusion.Out{X: mu, Aux: []*Node{m, v}, Estimate: est}
		}}
}

func prepare(p *solver.Problem, params solver.Params, opt options) (solver.Run, error) {
	c, err := newConfig(p, params, opt)
	if err != nil {
		return nil, err
	}
	return diffusion.Prepare(c.spec())
}

func (reddiff) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	if p == nil || p.Prior == nil {
		return nil, fmt.Errorf("solver %s needs a diffusion prior, and the problem has none", Name)
	}
	return prepare(p, params, options{})
}
