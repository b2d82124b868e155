package ddrm

import (
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

func init() { solver.MustRegister(New()) }

// Name is the solver's registered name.
const Name = "ddrm"

// Defaults (see doc.go for where each comes from).
const (
	DefaultSteps     = 20
	DefaultRespacing = "stride"
	DefaultEta       = 0.85
	DefaultEtaB      = 1.0
	DefaultClip      = false
	DefaultCutoff    = 0.0
)

// New returns the DDRM solver.
func New() solver.Solver { return ddrm{} }

// ddrm is the solver. Its unexported knobs exist for the in-package tests, which break one
// term on purpose (or switch to the official code's arithmetic where it differs) and check
// that the guarantees' tests notice.
type ddrm struct {
	// ignoreY treats every coefficient as unobserved (unconditional DDIM): a broken variant.
	ignoreY bool
	// strict uses the official code's strict inequalities s·σ_{t−1} > σ_y and s·σ_{t−1} <
	// σ_y, so a coefficient with s·σ_{t−1} = σ_y (the last step of a noiseless run) falls into
	// the unobserved case; the default is the paper's σ_{t−1} ≥ σ_y/s.
	strict bool
}

func (ddrm) Info() solver.Info {
	params := append(diffusion.StepParams(DefaultSteps,
		"sampler steps = network evaluations per sample: the prior's 1000-step DDPM schedule respaced (paper and official code: 20)"),
		solver.Param{Name: "eta", Type: solver.Float, Default: DefaultEta, Min: 0, MinSet: true,
			Doc: "η in [0, 1] (unitless): share of fresh noise, as a fraction of σ_{t−1}, in the unobserved (s = 0) coefficients and in the " +
				"observed ones less noisy than y (σ_{t−1} < σ_y/s); 0 deterministic. Paper and official code: 0.85"},
		solver.Param{Name: "eta_b", Type: solver.Float, Default: DefaultEtaB, Min: 0, MinSet: true,
			Doc: "η_b in [0, 1] (unitless): weight of the measurement ȳ/s against x̂0 in the observed coefficients noisier than y " +
				"(σ_{t−1} ≥ σ_y/s), whose noise std is √(σ_{t−1}² − η_b²σ_y²/s²). Paper and official code: 1"},
		solver.Param{Name: "clip", Type: solver.Bool, Default: DefaultClip,
			Doc: "clip x̂0 to [-1, 1] inside the steps (ε̂ then recomputed from the clipped x̂0); the official code does not clip (false)"},
		solver.Param{Name: "cutoff", Type: solver.Float, Default: DefaultCutoff, Min: 0, MinSet: true,
			Doc: "singular values s ≤ cutoff·max(s) (per sample, unitless) are treated as 0, i.e. unobserved. 0 keeps all s > 0; " +
				"set e.g. 1e-3 for a noiseless run (σ_y = 0) through an ill-conditioned operator (blur), where ȳ/s would amplify rounding. " +
				"The official code zeroes s < 1e-3 (general H) and 1-D blur factors < 3e-2"},
	)
	for i := range params {
		if params[i].Name == "respacing" {
			params[i].Default = DefaultRespacing
			params[i].Doc = "which steps are kept: stride (the official code's range(0, T, T/steps), guided-diffusion's \"ddimN\": 0, k, 2k, …; " +
				"needs a step count some integer stride gives) or even (guided-diffusion's \"N\", both ends)"
		}
	}
	return solver.Info{Name: Name, NeedsPrior: true, Needs: []operator.Capability{operator.CapSVD}, Params: params,
		Doc: "DDRM (Kawar et al., NeurIPS 2022): per SVD coefficient, DDIM (η) where s = 0, pull toward ȳ/s below σ_y/s, sample around ȳ/s (η_b) above"}
}

// ValidateParams refuses η or η_b above 1 (the variances would be negative).
func (ddrm) ValidateParams(p solver.Params) error {
	if e := p.Float("eta"); e > 1 {
		return fmt.Errorf("param eta: %v must be ≤ 1 (σ̃ = σ√(1−η²))", e)
	}
	if e := p.Float("eta_b"); e > 1 {
		return fmt.Errorf("param eta_b: %v must be ≤ 1 (the noise variance σ² − η_b²σ_y²/s² must stay ≥ 0)", e)
	}
	if c := p.Float("cutoff"); c >= 1 {
		return fmt.Errorf("param cutoff: %v must be < 1 (it is relative to the largest singular value)", c)
	}
	return nil
}

// CheckProblem refuses non-Gaussian noise and a respacing that cannot give the asked steps
// (the SVD is Info's Needs).
func (ddrm) CheckProblem(p *solver.Problem, params solver.Params) error {
	if _, err := diffusion.GaussianSigma(p); err != nil {
		return err
	}
	if _, err := respaced(p, params.Int("steps"), params.String("respacing")); err != nil {
		return err
	}
	return nil
}

func respaced(p *solver.Problem, steps int, respacing string) (*schedule.Schedule, error) {
	s, err := diffusion.Schedule(p, steps, respacing)
	if err != nil {
		return nil, fmt.Errorf("param steps: %w (respacing %s; respacing=even takes any count)", err, respacing)
	}
	return s, nil
}

// config is one prepared run's numbers.
type config struct {
	eta, etaB, sigmaY, cutoff float64
	clip                      bool
}

func (d ddrm) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	who := "solver " + Name
	if p == nil || p.Prior == nil {
		return nil, fmt.Errorf("%s needs a diffusion prior", who)
	}
	if err := operator.Require(p.Operator, who, operator.CapSVD); err != nil {
		return nil, err
	}
	op := p.Operator.(operator.Singular)
	sigmaY, err := diffusion.GaussianSigma(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	if !(sigmaY >= 0) || math.IsInf(sigmaY, 0) {
		return nil, fmt.Errorf("%s: the noise std σ_y = %v must be finite and ≥ 0", who, sigmaY)
	}
	sched, err := respaced(p, params.Int("steps"), params.String("respacing"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	cfg := config{eta: params.Float("eta"), etaB: params.Float("eta_b"), sigmaY: sigmaY,
		cutoff: params.Float("cutoff"), clip: params.Bool("clip")}
	for _, c := range []struct {
		name string
		v    float64
	}{{"eta", cfg.eta}, {"eta_b", cfg.etaB}, {"cutoff", cfg.cutoff}} {
		if !(c.v >= 0 && c.v <= 1) {
			return nil, fmt.Errorf("%s: param %s: %v must be in [0, 1]", who, c.name, c.v)
		}
	}
	m := diffusion.NewModel(p.Prior, sched)
	n := sched.Len()
	// σ of x_t/√ᾱ (the official code's "VE" picture) at the current and the next level.
	sigma, sigmaNext := make([]float64, n), make([]float64, n)
	sqrtNext := make([]float64, n)
	for k := range n {
		sigma[k] = math.Sqrt((1 - m.AlphaBar[k]) / m.AlphaBar[k])
		sigmaNext[k] = math.Sqrt((1 - m.AlphaBarPrev[k]) / m.AlphaBarPrev[k])
		sqrtNext[k] = math.Sqrt(m.AlphaBarPrev[k])
	}
	xShape := p.XShape
	yShape, err := p.Operator.MeasurementShape(xShape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	if yShape.Rank() != 4 || xShape.Rank() != 4 || yShape.Dimensions[1] != xShape.Dimensions[1] ||
		yShape.Dimensions[2] > xShape.Dimensions[2] || yShape.Dimensions[3] > xShape.Dimensions[3] {
		return nil, fmt.Errorf("%s: the SVD's leading-block convention needs x [B, C, H, W] and y [B, C, h ≤ H, w ≤ W], got x %s, y %s", who, xShape, yShape)
	}
	h, w := yShape.Dimensions[2], yShape.Dimensions[3]
	sigmaT := sigma[0]

	return diffusion.Prepare(diffusion.Spec{Name: Name, Problem: p, Steps: n, NFE: n, Timesteps: m.Timesteps,
		Init: func(s *diffusion.Start) (*Node, []*Node) {
			// The official x_T: coefficient i is ȳ_i/s_i + √(σ_T² − σ_y²/s_i²)·z_i where s_i σ_T > σ_y,
			// σ_T z_i elsewhere, all divided by σ_T, then mapped back with V. z is drawn in the
			// image's shape and used as coefficients, as there.
			z := s.Normal(xShape)
			g, dt := z.Graph(), z.DType()
			sig := d.singulars(op, g, xShape, h, w, cfg.cutoff)
			ybar := op.Ut(s.Y)
			zl := lead(z, h, w)
			sT := Scalar(g, dt, sigmaT)
			large := LogicalAnd(sig.obs, GreaterThan(MulScalar(sig.s, sigmaT), Scalar(g, dt, cfg.sigmaY)))
			inv := Div(Scalar(g, dt, cfg.sigmaY), sig.safe) // σ_y/s
			rem := Sqrt(Max(Sub(Scalar(g, dt, sigmaT*sigmaT), Square(inv)), ZerosLike(inv)))
			obsVal := Add(Div(ybar, sig.safe), Mul(rem, zl))
			c := replaceLead(MulScalar(z, sigmaT), Where(large, obsVal, Mul(sT, zl)))
			return op.V(Div(c, sT)), nil
		},
		Step: func(s *diffusion.Step) diffusion.Out {
			g, dt := s.X.Graph(), s.X.DType()
			x0, eps := m.Tweedie(s, s.X, cfg.clip)
			if cfg.clip {
				// ε̂ consistent with the clipped x̂0: (x_t/√ᾱ − x̂0)/σ_t.
				eps = Div(Sub(Mul(s.At(m.SqrtRecip), s.X), x0), s.At(m.SqrtRecipM1))
			}
			sn := s.At(sigmaNext)
			std := MulScalar(sn, cfg.eta)                        // η σ_{t−1}
			tilde := MulScalar(sn, math.Sqrt(1-cfg.eta*cfg.eta)) // √(1−η²) σ_{t−1}
			vx0, veps := op.Vt(x0), op.Vt(eps)
			// Unobserved coefficients (s = 0, and the null space beyond the leading block):
			// x̄0 + √(1−η²)σ_{t−1}·ε̄ + ησ_{t−1}z.
			c := Add(Add(vx0, Mul(tilde, veps)), Mul(std, s.Normal(xShape)))
			if !d.ignoreY {
				sig := d.singulars(op, g, xShape, h, w, cfg.cutoff)
				ybar := op.Ut(s.Y)
				x0l, cl := lead(vx0, h, w), lead(c, h, w)
				sy := Scalar(g, dt, cfg.sigmaY)
				sySafe := Scalar(g, dt, cfg.sigmaY)
				if cfg.sigmaY == 0 {
					sySafe = Scalar(g, dt, 1) // the "after" case never occurs then
				}
				ssn := Mul(sig.s, sn) // s·σ_{t−1}
				var before, after *Node
				if d.strict {
					before = LogicalAnd(sig.obs, GreaterThan(ssn, sy))
					after = LogicalAnd(sig.obs, LessThan(ssn, sy))
				} else {
					before = LogicalAnd(sig.obs, GreaterOrEqual(ssn, sy))
					after = LogicalAnd(sig.obs, LogicalNot(before))
				}
				// Less noisy than y: x̄0 + √(1−η²)σ_{t−1}(ȳ − s x̄0)/σ_y + ησ_{t−1}z.
				afterVal := Add(Add(x0l, Mul(tilde, Div(Sub(ybar, Mul(sig.s, x0l)), sySafe))), Mul(std, s.Normal(ybar.Shape())))
				// Noisier than y: η_b ȳ/s + (1−η_b)x̄0 + √(σ_{t−1}² − η_b²σ_y²/s²)z.
				inv := Div(MulScalar(sy, cfg.etaB), sig.safe)
				diff := Sqrt(Max(Sub(Square(sn), Square(inv)), ZerosLike(inv)))
				beforeVal := Add(Add(MulScalar(Div(ybar, sig.safe), cfg.etaB), MulScalar(x0l, 1-cfg.etaB)), Mul(diff, s.Normal(ybar.Shape())))
				c = replaceLead(c, Where(before, beforeVal, Where(after, afterVal, cl)))
			}
			return diffusion.Out{X: Mul(s.At(sqrtNext), op.V(c)), Estimate: x0}
		}})
}

// svals are the singular values broadcast to the leading block [B, C, h, w]: s (0 where cut
// off), safe (s, or 1 where unobserved: a divisor) and obs (s > 0 after the cutoff).
type svals struct{ s, safe, obs *Node }

func (ddrm) singulars(op operator.Singular, g *Graph, xShape shapes.Shape, h, w int, cutoff float64) svals {
	d := xShape.Dimensions
	s := BroadcastToShape(op.Singulars(g, xShape), shapes.Make(xShape.DType, d[0], d[1], h, w))
	zero := ZerosLike(s)
	tol := zero
	if cutoff > 0 {
		tol = BroadcastToShape(MulScalar(ReduceAndKeep(s, ReduceMax, 1, 2, 3), cutoff), s.Shape())
	}
	obs := GreaterThan(s, tol)
	s = Where(obs, s, zero)
	return svals{s: s, safe: Where(obs, s, OnesLike(s)), obs: obs}
}

// lead is the [:, :, :h, :w] block of c.
func lead(c *Node, h, w int) *Node {
	d := c.Shape().Dimensions
	if d[2] == h && d[3] == w {
		return c
	}
	return Slice(c, AxisRange(), AxisRange(), AxisRange(0, h), AxisRange(0, w))
}

// replaceLead is c with its leading block replaced by l.
func replaceLead(c, l *Node) *Node {
	d, ld := c.Shape().Dimensions, l.Shape().Dimensions
	h, w := ld[2], ld[3]
	if d[2] == h && d[3] == w {
		return l
	}
	rows := l
	if w < d[3] {
		rows = Concatenate([]*Node{l, Slice(c, AxisRange(), AxisRange(), AxisRange(0, h), AxisRange(w, d[3]))}, 3)
	}
	if h < d[2] {
		rows = Concatenate([]*Node{rows, Slice(c, AxisRange(), AxisRange(), AxisRange(h, d[2]), AxisRange())}, 2)
	}
	return rows
}
