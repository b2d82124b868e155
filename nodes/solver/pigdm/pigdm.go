package pigdm

import (
	"fmt"
	"math"

	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/diffusion"
	"github.com/dpsflow/dpsflow/nodes/tweedie"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Name is the solver's registered name.
const Name = "pigdm"

// The values of the weight and likelihood params.
const (
	WeightOfficial = "official"
	WeightExact    = "exact"

	LikelihoodNoisy = "noisy"
	LikelihoodPinv  = "pinv"
)

func init() { solver.MustRegister(New()) }

// New returns the ΠGDM solver (also registered as "pigdm").
func New() solver.Solver { return pigdm{} }

// knobs break one term of the method on purpose, for the tests that show the checks catch
// it; the registered solver has none set.
type knobs struct {
	dropR2 bool // use (AAᵀ + σ_y² I)⁻¹: r_t² dropped from the likelihood covariance
	noVJP  bool // use v itself instead of its vector-Jacobian product through x̂0
}

type pigdm struct{ k knobs }

func (pigdm) Info() solver.Info {
	params := diffusion.StepParams(100, "DDIM steps (= NFE), 1 … 1000: the 1000-step schedule respaced; the official scripts use 100 (256² images), kept for 32² digits")
	params[1].Default = "stride"
	params[1].Doc = "which steps are kept: stride (the official code's range(0, 1000, 1000/steps), guided-diffusion's \"ddimN\"; steps must divide the schedule evenly) or even (both ends)"
	params = append(params,
		solver.Param{Name: "eta", Type: solver.Float, Default: 1.0, Min: 0, MinSet: true,
			Doc: "DDIM's η in [0, 1] (c1 = η·√((1−ᾱ_t/ᾱ_s)(1−ᾱ_s)/(1−ᾱ_t))); 1, as the official scripts (ancestral-like), 0 deterministic"},
		solver.Param{Name: "scale", Type: solver.Float, Default: 1.0, Min: 0, MinSet: true,
			Doc: "multiplier of the guidance term (the official grad_term_weight, 1), ≥ 0, unitless; 0 gives unconditional DDIM (not the presets' DPS scale, which runs pass to the DPS family only)"},
		solver.Param{Name: "weight", Type: solver.String, Default: WeightOfficial, Enum: []string{WeightOfficial, WeightExact},
			Doc: "guidance weight: official (RED-diff algos/pgdm.py, awd=True: x_s += √ᾱ_s·√ᾱ_t·r_t²·g) or exact (g enters through ε̂ as the conditional score: x_s += (1−ᾱ_t)(√(ᾱ_s/ᾱ_t) − c2/√(1−ᾱ_t))·g)"},
		solver.Param{Name: "likelihood", Type: solver.String, Default: LikelihoodNoisy, Enum: []string{LikelihoodNoisy, LikelihoodPinv},
			Doc: "noisy: p(y|x_t) ≈ N(A x̂0, r_t² AAᵀ + σ_y² I) with σ_y the problem's Gaussian noise, through the operator's SVD (the paper); pinv: σ_y taken as 0, A⁺(y − A x̂0)/r_t² (the official code, which ignores σ_y)"},
		solver.Param{Name: "clip", Type: solver.Bool, Default: false,
			Doc: "clip x̂0 to [-1, 1] before the guidance and the DDIM step (ε̂ re-derived from it); the official code does not clip"},
	)
	return solver.Info{Name: Name, NeedsPrior: true, Needs: []operator.Capability{operator.CapPseudoInverse}, Params: params,
		Doc: "Pseudoinverse-Guided Diffusion Models (Song, Vahdat, Mardani, Kautz, ICLR 2023): DDIM + the VJP of A⁺-guidance, p(y|x_t) ≈ N(A x̂0, r_t² AAᵀ + σ_y² I)"}
}

// ValidateParams refuses η > 1 (c2 = √(1 − ᾱ_s − c1²) needs c1² ≤ 1 − ᾱ_s).
func (pigdm) ValidateParams(p solver.Params) error {
	if eta := p.Float("eta"); eta > 1 {
		return fmt.Errorf("param eta: must be in [0, 1], got %v", eta)
	}
	return nil
}

// CheckProblem refuses non-Gaussian noise, the noisy likelihood on an operator without an
// SVD, and a steps/respacing pair the prior's schedule cannot give.
func (pigdm) CheckProblem(p *solver.Problem, params solver.Params) error {
	_, err := check(p, params)
	return err
}

// check returns σ_y (0 for likelihood pinv) or the reason the problem is refused.
func check(p *solver.Problem, params solver.Params) (float64, error) {
	sigma, err := diffusion.GaussianSigma(p)
	if err != nil {
		return 0, err
	}
	if params.String("likelihood") == LikelihoodPinv {
		sigma = 0
	} else if !operator.Has(p.Operator, operator.CapSVD) {
		return 0, fmt.Errorf("param likelihood=noisy (σ_y = %g) applies (r_t² AAᵀ + σ_y² I)⁻¹ through the operator's svd, which %s does not offer (it has: %s); use likelihood=pinv (σ_y taken as 0, only the pseudo-inverse)",
			sigma, p.Operator.Name(), capNames(p.Operator))
	}
	if _, err := diffusion.Schedule(p, params.Int("steps"), params.String("respacing")); err != nil {
		return 0, fmt.Errorf("params steps=%d, respacing=%s: %w", params.Int("steps"), params.String("respacing"), err)
	}
	return sigma, nil
}

func capNames(op operator.Operator) string {
	s := ""
	for i, c := range operator.Capabilities(op) {
		if i > 0 {
			s += ", "
		}
		s += string(c)
	}
	if s == "" {
		s = "—"
	}
	return s
}

// tables are the per-loop-step host coefficients (loop order, noisiest first).
type tables struct {
	sqrtAbPrev []float64 // √ᾱ_s (1 at the last step)
	c1, c2     []float64 // DDIM's noise and ε̂ coefficients
	r2         []float64 // r_t² = 1 − ᾱ_t
	// w multiplies g' = r_t²·g (g = ∇_{x_t} log p(y|x_t) as ΠGDM approximates it), scale
	// included: official √ᾱ_s·√ᾱ_t; exact (√ᾱ_s/√ᾱ_t − c2/√(1−ᾱ_t)).
	w []float64
}

func newTables(m *diffusion.Model, eta, scale float64, weight string) tables {
	n := len(m.AlphaBar)
	t := tables{sqrtAbPrev: make([]float64, n), c1: make([]float64, n), c2: make([]float64, n), r2: make([]float64, n), w: make([]float64, n)}
	for k := range n {
		a, as := m.AlphaBar[k], m.AlphaBarPrev[k]
		t.c1[k] = eta * math.Sqrt((1-a/as)*(1-as)/(1-a))
		t.c2[k] = math.Sqrt(math.Max(0, 1-as-t.c1[k]*t.c1[k]))
		t.sqrtAbPrev[k] = math.Sqrt(as)
		t.r2[k] = 1 - a
		if weight == WeightExact {
			t.w[k] = scale * (math.Sqrt(as/a) - t.c2[k]/math.Sqrt(1-a))
		} else {
			t.w[k] = scale * math.Sqrt(as) * math.Sqrt(a)
		}
	}
	return t
}

// guide holds what one step's guidance needs.
type guide struct {
	k     knobs
	m     *diffusion.Model
	op    operator.Operator
	sigma float64 // σ_y; 0: the pseudo-inverse form
	clip  bool
	r2    []float64
}

// scaledVector is v' = r_t²·Aᵀ(r_t² AAᵀ + σ_y² I)⁻¹(y − A x̂0) = V Σᵀ(ΣΣᵀ + σ_y²/r_t²)⁻¹ Uᵀ(y − A x̂0)
// through the SVD, or A⁺(y − A x̂0) when σ_y = 0 (the official code's H_pinv(y) − H_pinv(H x̂0)).
func (gd *guide) scaledVector(y, x0, r2 *Node) *Node {
	res := Sub(y, gd.op.Apply(x0))
	if gd.sigma == 0 {
		v := gd.op.(operator.PseudoInverter).PseudoInverse(res)
		if gd.k.dropR2 { // (AAᵀ)⁻¹ without 1/r_t², i.e. v' = r_t²·A⁺r
			v = Mul(r2, v)
		}
		return v
	}
	svd := gd.op.(operator.Singular)
	s := svd.Singulars(x0.Graph(), x0.Shape())
	ratio := Div(Scalar(x0.Graph(), x0.DType(), gd.sigma*gd.sigma), r2) // σ_y²/r_t²
	coef := Div(s, Add(Square(s), ratio))
	if gd.k.dropR2 { // r_t²·s/(s² + σ_y²)
		coef = Mul(r2, Div(s, AddScalar(Square(s), gd.sigma*gd.sigma)))
	}
	d := x0.Shape().Dimensions
	return svd.V(embed(Mul(coef, svd.Ut(res)), d[2], d[3]))
}

// term is one step's x̂0 and ε̂ (consistent with the clipped x̂0 when clip) and the
// guidance g' = r_t²·g = ∇_{x_t}⟨sg(v'), x̂0(x_t)⟩, the vector-Jacobian product through the
// prior. All three are cut from the graph's gradient.
func (gd *guide) term(s *diffusion.Step, xt *Node) (x0, eps, g *Node) {
	x0, eps = gd.m.Tweedie(s, xt, gd.clip)
	if gd.clip {
		eps = tweedie.Eps(xt, x0, s.At(gd.m.SqrtRecip), s.At(gd.m.SqrtRecipM1))
	}
	v := StopGradient(gd.scaledVector(s.Y, x0, s.At(gd.r2)))
	if gd.k.noVJP {
		g = v
	} else {
		g = Gradient(ReduceAllSum(Mul(v, x0)), xt)[0]
	}
	return StopGradient(x0), StopGradient(eps), StopGradient(g)
}

// embed places z [B, C, h, w] at the top-left of a zero [B, C, H, W] (Singular's
// leading-block convention).
func embed(z *Node, hh, ww int) *Node {
	d := z.Shape().Dimensions
	if d[2] < hh {
		z = Concatenate([]*Node{z, Zeros(z.Graph(), shapes.Make(z.DType(), d[0], d[1], hh-d[2], d[3]))}, 2)
	}
	if d[3] < ww {
		z = Concatenate([]*Node{z, Zeros(z.Graph(), shapes.Make(z.DType(), d[0], d[1], hh, ww-d[3]))}, 3)
	}
	return z
}

func (pg pigdm) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	who := "solver " + Name
	if p == nil || p.Prior == nil {
		return nil, fmt.Errorf("%s needs a diffusion prior, and the problem has none", who)
	}
	sigma, err := check(p, params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", who, err)
	}
	steps := params.Int("steps")
	sched, err := diffusion.Schedule(p, steps, params.String("respacing"))
	if err != nil {
		return nil, fmt.Errorf("%s: param steps: %w", who, err)
	}
	m := diffusion.NewModel(p.Prior, sched)
	eta := params.Float("eta")
	tab := newTables(m, eta, params.Float("scale"), params.String("weight"))
	gd := &guide{k: pg.k, m: m, op: p.Operator, sigma: sigma, clip: params.Bool("clip"), r2: tab.r2}
	return diffusion.Prepare(diffusion.Spec{Name: Name, Problem: p, Steps: steps, NFE: steps, Timesteps: m.Timesteps,
		Step: func(s *diffusion.Step) diffusion.Out {
			x0, eps, g := gd.term(s, s.X)
			sab, w := s.At(tab.sqrtAbPrev), s.At(tab.w)
			next := Add(Mul(sab, x0), Mul(s.At(tab.c2), eps))
			if eta > 0 {
				next = Add(next, Mul(s.At(tab.c1), s.Normal(p.XShape)))
			}
			next = Add(next, Mul(w, g))
			// The clean estimate the update implies: x_s = √ᾱ_s x̃0 + c2 ε̂ + c1 z; at the last
			// step (ᾱ_s = 1) it is x_s itself.
			est := Add(x0, Mul(Div(w, sab), g))
			return diffusion.Out{X: next, Estimate: est}
		}})
}
