package diffpir

import (
	"fmt"
	"math"
	"slices"

	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/dpsflow/dpsflow/nodes/tweedie"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
)

func init() { solver.MustRegister(New()) }

// Name is the solver's registered name.
const Name = "diffpir"

// Defaults (see doc.go for where each comes from).
const (
	DefaultSteps     = 100
	DefaultRespacing = "quad"
	DefaultLambda    = 7.0
	DefaultZeta      = 1.0
	DefaultCGIters   = 20
	// SigmaFloor is the smallest measurement-noise level ρ_t is computed with, in [-1, 1]
	// units: the official code's max(0.001, σ) with σ in [0, 1] units.
	SigmaFloor = 0.002
)

// New returns the DiffPIR solver.
func New() solver.Solver { return diffPIR{} }

// diffPIR is the solver. Its unexported knobs exist for the in-package tests, which break one
// term on purpose and check that the guarantees' tests notice.
type diffPIR struct {
	// rhoWithoutSigmaBar drops the 1/σ̄_t² factor of ρ_t (a broken variant).
	rhoWithoutSigmaBar bool
}

func (diffPIR) Info() solver.Info {
	params := append(diffusion.StepParams(DefaultSteps,
		"sampler steps = network evaluations per sample: the prior's 1000-step DDPM schedule respaced (paper and official code: 100 NFE)"),
		solver.Param{Name: "lambda", Type: solver.Float, Default: DefaultLambda, Min: 0, MinSet: true, MinExclusive: true,
			Doc: "λ > 0 (unitless) in the data step's weight ρ_t = λ·(σ_y/2)²·ᾱ_t/(1−ᾱ_t), σ_y the noise std in [-1, 1] units " +
				"(σ_y/2 is the [0, 1]-unit σ_n of the official code, so its λ values carry over; in [-1, 1] units this is λ/4). " +
				"Official code: 7 deblurring (also deepinv's default); SR sweeps 2–12; inpainting 1 (noiseless)"},
		solver.Param{Name: "zeta", Type: solver.Float, Default: DefaultZeta, Min: 0, MinSet: true,
			Doc: "ζ in [0, 1]: share of fresh noise in the step to t−1 (0: deterministic, DDIM-like; 1: x̂0' re-noised with fresh noise only). " +
				"Official code: 0.3 deblurring, 0.25 SR, 1.0 inpainting; here 1.0 for every task because on 32² MNIST digits ζ = 1 beats 0.3 on all five linear presets (e.g. SR×4 22.5 vs 17.4 dB)"},
		solver.Param{Name: "cg_iters", Type: solver.Int, Default: DefaultCGIters, Min: 1, MinSet: true,
			Doc: "conjugate-gradient steps of the data step (from x̂0), used only for operators with an adjoint but no data-prox (e.g. motion blur)"},
		solver.Param{Name: "clip", Type: solver.Bool, Default: true,
			Doc: "clip the Tweedie estimate x̂0 to [-1, 1] before the data step (the official code's clip_denoised=True)"},
	)
	for i := range params {
		if params[i].Name == "respacing" {
			params[i].Default = DefaultRespacing
			params[i].Enum = append(slices.Clone(params[i].Enum), "quad")
			params[i].Doc = "which steps are kept: quad (the official code's skip_type=quad: t_i = T−1−⌊√(i/(n−1))·T⌋, last t = 0; " +
				"large steps at high noise), even (guided-diffusion's \"N\", both ends) or stride (its \"ddimN\": 0, k, 2k, …)"
		}
	}
	return solver.Info{Name: Name, NeedsPrior: true, Params: params,
		Doc: "DiffPIR (Zhu et al., CVPRW 2023): x̂0 → data prox argmin ½‖Ax−y‖² + (ρ_t/2)‖x−x̂0‖² → x_{t−1} with ζ fresh noise"}
}

// ValidateParams refuses a ζ outside [0, 1].
func (diffPIR) ValidateParams(p solver.Params) error {
	if z := p.Float("zeta"); z > 1 {
		return fmt.Errorf("param zeta: %v must be ≤ 1 (it is the share of fresh noise)", z)
	}
	return nil
}

// CheckProblem refuses operators without a data step, non-Gaussian noise and a respacing
// that cannot give the asked steps.
func (diffPIR) CheckProblem(p *solver.Problem, params solver.Params) error {
	if err := operator.CheckDataStep(p.Operator); err != nil {
		return err
	}
	if _, err := diffusion.GaussianSigma(p); err != nil {
		return err
	}
	if _, err := respaced(p, params.Int("steps"), params.String("respacing")); err != nil {
		return err
	}
	return nil
}

// respaced is p's schedule respaced to steps: quad here, even and stride by diffusion.Schedule.
func respaced(p *solver.Problem, steps int, respacing string) (*schedule.Schedule, error) {
	if respacing != "quad" {
		s, err := diffusion.Schedule(p, steps, respacing)
		if err != nil {
			return nil, fmt.Errorf("param steps: %w", err)
		}
		return s, nil
	}
	base := p.Schedule
	if base == nil {
		base = schedule.Default()
	}
	kept, err := QuadSteps(base.Len(), steps)
	if err != nil {
		return nil, err
	}
	return base.Keep(kept)
}

// QuadSteps are the base-schedule steps the official code's skip_type "quad" visits for n
// steps of a T-step schedule, in increasing order: with s_i = ⌊√(i·T²/(n−1))⌋ for
// i = 0…n−1 and the last lowered by one, the steps are T−1−s_i (T−1 first, 0 last). n = 1
// keeps step 0 only. It is an error when they are not n distinct steps (n > T/2 + 1).
func QuadSteps(T, n int) ([]int, error) {
	if n < 1 || n > T {
		return nil, fmt.Errorf("param steps: %d must be in [1, %d]", n, T)
	}
	if n == 1 {
		return []int{0}, nil
	}
	out := make([]int, n)
	for i := range n {
		// numpy.linspace(0, T², n)[i] = i·step with step = T²/(n−1); its last entry is T².
		v := float64(i) * (float64(T) * float64(T) / float64(n-1))
		if i == n-1 {
			v = float64(T) * float64(T)
		}
		s := int(math.Sqrt(v))
		if i == n-1 {
			s--
		}
		out[n-1-i] = T - 1 - s
	}
	if !slices.IsSorted(out) || len(slices.Compact(slices.Clone(out))) != n {
		return nil, fmt.Errorf("param steps: respacing quad gives fewer than %d distinct steps of %d (at most %d); use respacing even", n, T, T/2+1)
	}
	return out, nil
}

// Rho is ρ_t = λ·(σ/2)²·ᾱ/(1−ᾱ) = λ·σ_n²/σ̄_t² with σ_n = max(σ, SigmaFloor)/2 the noise
// level in [0, 1] units (as the official code has it) and σ̄_t² = (1−ᾱ_t)/ᾱ_t.
func Rho(lambda, sigma, alphaBar float64) float64 {
	sn := math.Max(sigma, SigmaFloor) / 2
	return lambda * sn * sn * alphaBar / (1 - alphaBar)
}

func (d diffPIR) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	who := "solver " + Name
	if p == nil || p.Operator == nil || p.Noise == nil {
		return nil, fmt.Errorf("%s: the problem needs an operator and a noise model", who)
	}
	if p.Prior == nil {
		return nil, fmt.Errorf("%s needs a diffusion prior, and the problem has none", who)
	}
	if err := d.CheckProblem(p, params); err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	if err := d.ValidateParams(params); err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	lambda, zeta, cg, clip := params.Float("lambda"), params.Float("zeta"), params.Int("cg_iters"), params.Bool("clip")
	if !(lambda > 0) || math.IsInf(lambda, 0) {
		return nil, fmt.Errorf("%s: param lambda must be a positive number, got %v", who, lambda)
	}
	if !(zeta >= 0 && zeta <= 1) {
		return nil, fmt.Errorf("%s: param zeta must be in [0, 1], got %v", who, zeta)
	}
	if cg < 1 && !operator.Has(p.Operator, operator.CapDataProx) {
		return nil, fmt.Errorf("%s: param cg_iters must be ≥ 1, got %d", who, cg)
	}
	sigma, _ := diffusion.GaussianSigma(p)
	sched, _ := respaced(p, params.Int("steps"), params.String("respacing"))
	m := diffusion.NewModel(p.Prior, sched)
	n := sched.Len()
	rho := make([]float64, n)
	keepX0, keepNoise := make([]float64, n), make([]float64, n) // √ᾱ_{t−1}, √(1−ᾱ_{t−1})
	for k, ab := range m.AlphaBar {
		rho[k] = Rho(lambda, sigma, ab)
		if d.rhoWithoutSigmaBar {
			rho[k] = Rho(lambda, sigma, 0.5) // λ·σ_n²: no 1/σ̄_t² factor
		}
		keepX0[k], keepNoise[k] = math.Sqrt(m.AlphaBarPrev[k]), math.Sqrt(1-m.AlphaBarPrev[k])
	}
	op := p.Operator
	sqrtKeep, sqrtFresh := math.Sqrt(1-zeta), math.Sqrt(zeta)
	return diffusion.Prepare(diffusion.Spec{Name: Name, Problem: p, Steps: n, NFE: n, Timesteps: m.Timesteps,
		Step: func(s *diffusion.Step) diffusion.Out {
			x0, _ := m.Tweedie(s, s.X, clip)
			x0p := operator.ProxDataOrCG(op, x0, s.Y, s.At(rho), cg)
			// dir = √(1−ζ) ε̂ + √ζ ε, with ε̂ re-derived from x̂0' (no ε̂ at ζ = 1, no ε at ζ = 0).
			var dir *Node
			if zeta < 1 {
				eps := tweedie.Eps(s.X, x0p, s.At(m.SqrtRecip), s.At(m.SqrtRecipM1))
				dir = MulScalar(eps, sqrtKeep)
			}
			if zeta > 0 {
				fresh := MulScalar(s.Normal(s.X.Shape()), sqrtFresh)
				if dir == nil {
					dir = fresh
				} else {
					dir = Add(dir, fresh)
				}
			}
			next := Add(Mul(s.At(keepX0), x0p), Mul(s.At(keepNoise), dir))
			return diffusion.Out{X: next, Estimate: x0p}
		}})
}
