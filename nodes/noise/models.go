package noise

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"gonum.org/v1/gonum/stat/distuv"
)

// Gaussian is additive white noise y = ax + σ z, z ~ N(0, I), not clipped (as the reference).
type Gaussian struct{ sigma float64 }

// NewGaussian returns Gaussian noise of standard deviation sigma > 0 in [-1, 1] image units.
func NewGaussian(sigma float64) (Model, error) {
	if !(sigma > 0) || math.IsInf(sigma, 1) {
		return nil, fmt.Errorf("noise: sigma must be a positive finite number ([-1, 1] units; the paper uses 0.05), got %g", sigma)
	}
	return &Gaussian{sigma: sigma}, nil
}

// Name is "gaussian".
func (g *Gaussian) Name() string { return "gaussian" }

// Sigma is the noise standard deviation in [-1, 1] units.
func (g *Gaussian) Sigma() float64 { return g.sigma }

// Measure returns ax + σ z with z drawn from seed.
func (g *Gaussian) Measure(ax *tensors.Tensor, seed uint64) (*tensors.Tensor, error) {
	rng := newRand(seed)
	return mapFlat(ax, "gaussian", func(v float64) float64 { return v + g.sigma*rng.NormFloat64() })
}

// Distance is ‖y − ax‖₂ per sample.
func (g *Gaussian) Distance(y, ax *graph.Node) *graph.Node {
	return safeSqrt(sumPerSample(graph.Square(graph.Sub(y, ax))))
}

// Poisson is the reference code's shot noise: with intensity I = clip((ax+1)/2, 0, 1) and
// counts k ~ Poisson(255·rate·I), y = clip(2k/(255·rate) − 1, −1, 1). Its Distance is one of
// the named PoissonForms.
type Poisson struct {
	rate  float64
	form  PoissonForm
	floor float64
}

// PoissonForm names the data-fidelity distance of Poisson noise. Units: an image value v in
// [-1, 1] has intensity I = (v+1)/2 in [0, 1] and 255·rate·I counts; y is the measurement,
// a = A(x̂0), k = 255·rate·I_y and μ = 255·rate·I_a. Each form is a per-sample norm-like
// value, differentiable in a with finite gradients for y, a in [-1, 1], guarded by the
// floor f in counts (DefaultFloor: one count):
//
//	paper      √Σ (y−a)²/(2·max(I_y, f/(255·rate))): Algorithm 2's Λ = 1/(2y) on the intensity
//	           scale (the same norm in counts is √(255·rate/4) times larger); a zero-count
//	           pixel weighs 255·rate/(2f), so dark images are dominated by their background;
//	           a larger f moves it towards plain (f ≥ 255·rate: plain·√(255·rate/(2f)))
//	reference  ‖y−a‖ · mean_i 1/max(|y_i|, f/(255·rate)): the reference code's
//	           mean(‖y−a‖/|y|), per sample, |y| in [-1, 1] units
//	plain      ‖y−a‖, unweighted, as for Gaussian noise
//	model      √Σ (y−a)²/(2·max(stopgrad(I_a), f/(255·rate))): Λ from the estimate instead of
//	           y (Pearson's χ² with the model's variance); its square has nll²'s gradient
//	nll        √(2D/(255·rate)) with D = 2Σ [k log(k/μ) − k + μ] the Poisson deviance (the
//	           exact negative log-likelihood less its minimum), 0·log 0 = 0 and log μ
//	           continued by its tangent below μ = f; it equals paper to second order where
//	           k ≫ f, but a zero-count pixel adds 4·I_a to nll² against 2·255·rate·I_a²/f
//	           to paper²
type PoissonForm string

// The Poisson likelihood forms; see PoissonForm.
const (
	FormPaper     PoissonForm = "paper"
	FormReference PoissonForm = "reference"
	FormPlain     PoissonForm = "plain"
	FormModel     PoissonForm = "model"
	FormNLL       PoissonForm = "nll"
)

// PoissonForms lists every form, in the order above.
var PoissonForms = []PoissonForm{FormPaper, FormReference, FormPlain, FormModel, FormNLL}

// DefaultFloor is the default floor of the Poisson distances: one count.
const DefaultFloor = 1.0

// NewPoisson returns Poisson noise with the given rate > 0 (the paper uses 1.0: counts up to
// 255 per pixel; a larger rate means less noise) and the paper's distance, floored at one
// count.
func NewPoisson(rate float64) (Model, error) { return NewPoissonForm(rate, FormPaper, DefaultFloor) }

// NewPoissonForm returns Poisson noise with the given rate whose Distance is the named form,
// guarded by floor counts (0 means DefaultFloor). An unknown form is an error naming the
// valid ones.
func NewPoissonForm(rate float64, form PoissonForm, floor float64) (Model, error) {
	if !(rate > 0) || math.IsInf(rate, 1) {
		return nil, fmt.Errorf("noise: rate must be a positive finite number (the paper uses 1.0), got %g", rate)
	}
	if !slices.Contains(PoissonForms, form) {
		names := make([]string, len(PoissonForms))
		for i, f := range PoissonForms {
			names[i] = string(f)
		}
		return nil, fmt.Errorf("noise: unknown poisson form %q; valid forms: %s", form, strings.Join(names, ", "))
	}
	if floor == 0 {
		floor = DefaultFloor
	}
	if !(floor > 0) || math.IsInf(floor, 1) {
		return nil, fmt.Errorf("noise: poisson floor must be a positive finite number of counts (default %g), got %g", DefaultFloor, floor)
	}
	return &Poisson{rate: rate, form: form, floor: floor}, nil
}

// Name is "poisson".
func (p *Poisson) Name() string { return "poisson" }

// Rate is the photon-count scale λ: an intensity of 1 has mean count 255·λ.
func (p *Poisson) Rate() float64 { return p.rate }

// Form is the distance's form.
func (p *Poisson) Form() PoissonForm { return p.form }

// Floor is the distance's guard in counts.
func (p *Poisson) Floor() float64 { return p.floor }

// Measure draws the counts with gonum's Poisson sampler fed by a seeded PCG: exact inversion
// by exponential inter-arrival times below a mean of 10, Hörmann's PTRS transformed
// rejection above (exact, not a normal approximation).
func (p *Poisson) Measure(ax *tensors.Tensor, seed uint64) (*tensors.Tensor, error) {
	src := rand.NewPCG(seed, seed^pcgStream)
	scale := 255 * p.rate
	return mapFlat(ax, "poisson", func(v float64) float64 {
		mean := scale * min(max((v+1)/2, 0), 1)
		k := 0.0
		if mean > 0 {
			k = distuv.Poisson{Lambda: mean, Src: src}.Rand()
		}
		return min(max(k/255/p.rate*2-1, -1), 1)
	})
}

// Distance is the form's distance per sample (see PoissonForm).
func (p *Poisson) Distance(y, ax *graph.Node) *graph.Node {
	c := 255 * p.rate
	eps := p.floor / c // the floor on the intensity (and |y|) scale
	switch p.form {
	case FormReference:
		inv := graph.Reciprocal(graph.MaxScalar(graph.Abs(y), eps))
		return graph.Mul(safeSqrt(sumPerSample(graph.Square(graph.Sub(y, ax)))), meanPerSample(inv))
	case FormPlain:
		return safeSqrt(sumPerSample(graph.Square(graph.Sub(y, ax))))
	case FormModel:
		intensity := graph.StopGradient(graph.MulScalar(graph.AddScalar(ax, 1), 0.5))
		weight := graph.Reciprocal(graph.MulScalar(graph.MaxScalar(intensity, eps), 2))
		return safeSqrt(sumPerSample(graph.Mul(graph.Square(graph.Sub(y, ax)), weight)))
	case FormNLL:
		k := graph.MaxScalar(graph.MulScalar(graph.AddScalar(y, 1), c/2), 0)
		mu := graph.MulScalar(graph.AddScalar(ax, 1), c/2)
		clamped := graph.MaxScalar(mu, p.floor)
		logMu := graph.Add(graph.Log(clamped), graph.DivScalar(graph.Sub(mu, clamped), p.floor))
		pos := graph.GreaterThan(k, graph.ZerosLike(k))
		kLogK := graph.Where(pos, graph.Mul(k, graph.Log(graph.Where(pos, k, graph.OnesLike(k)))), graph.ZerosLike(k))
		term := graph.Add(graph.Sub(graph.Sub(kLogK, graph.Mul(k, logMu)), k), mu)
		return safeSqrt(graph.MulScalar(sumPerSample(term), 4/c))
	default: // FormPaper
		intensity := graph.MulScalar(graph.AddScalar(y, 1), 0.5)
		weight := graph.Reciprocal(graph.MulScalar(graph.MaxScalar(intensity, eps), 2))
		return safeSqrt(sumPerSample(graph.Mul(graph.Square(graph.Sub(y, ax)), weight)))
	}
}

// pcgStream separates the PCG's second word from the seed so that seeds 0 and 1 do not start
// from nearly identical states.
const pcgStream = 0x9e3779b97f4a7c15

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^pcgStream)) }

// mapFlat applies f elementwise in float64, in row-major order (so the draws are
// layout-independent), returning a new tensor of ax's shape and dtype.
func mapFlat(ax *tensors.Tensor, name string, f func(float64) float64) (*tensors.Tensor, error) {
	if ax == nil {
		return nil, fmt.Errorf("noise %s: nil measurement tensor", name)
	}
	dims := ax.Shape().Dimensions
	switch ax.DType() {
	case dtypes.Float64:
		data, err := tensors.CopyFlatData[float64](ax)
		if err != nil {
			return nil, fmt.Errorf("noise %s: %w", name, err)
		}
		for i, v := range data {
			data[i] = f(v)
		}
		return tensors.FromFlatDataAndDimensions(data, dims...), nil
	case dtypes.Float32:
		data, err := tensors.CopyFlatData[float32](ax)
		if err != nil {
			return nil, fmt.Errorf("noise %s: %w", name, err)
		}
		for i, v := range data {
			data[i] = float32(f(float64(v)))
		}
		return tensors.FromFlatDataAndDimensions(data, dims...), nil
	default:
		return nil, fmt.Errorf("noise %s: measurement dtype %s not supported (want float32 or float64)", name, ax.DType())
	}
}

// sumPerSample sums over all axes but the batch axis 0.
func sumPerSample(x *graph.Node) *graph.Node {
	if x.Rank() <= 1 {
		return x // ReduceSum with no axes would reduce the batch axis too
	}
	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i + 1
	}
	return graph.ReduceSum(x, axes...)
}

// meanPerSample averages over all axes but the batch axis 0.
func meanPerSample(x *graph.Node) *graph.Node {
	if x.Rank() <= 1 {
		return x
	}
	return graph.DivScalar(sumPerSample(x), float64(x.Shape().Size()/x.Shape().Dimensions[0]))
}

// safeSqrt is √s with gradient 0 instead of NaN at s = 0 (the "double Where": the inner
// Where keeps √ away from 0 so no Inf enters the backward pass, the outer restores the value).
func safeSqrt(s *graph.Node) *graph.Node {
	zeros := graph.ZerosLike(s)
	pos := graph.GreaterThan(s, zeros)
	return graph.Where(pos, graph.Sqrt(graph.Where(pos, s, graph.OnesLike(s))), zeros)
}
