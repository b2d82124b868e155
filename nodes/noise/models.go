package noise

import (
	"fmt"
	"math"
	"math/rand/v2"

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
// counts k ~ Poisson(255·rate·I), y = clip(2k/(255·rate) − 1, −1, 1).
type Poisson struct{ rate float64 }

// NewPoisson returns Poisson noise with the given rate > 0 (the paper uses 1.0: counts up to
// 255 per pixel; a larger rate means less noise).
func NewPoisson(rate float64) (Model, error) {
	if !(rate > 0) || math.IsInf(rate, 1) {
		return nil, fmt.Errorf("noise: rate must be a positive finite number (the paper uses 1.0), got %g", rate)
	}
	return &Poisson{rate: rate}, nil
}

// Name is "poisson".
func (p *Poisson) Name() string { return "poisson" }

// Rate is the photon-count scale λ: an intensity of 1 has mean count 255·λ.
func (p *Poisson) Rate() float64 { return p.rate }

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

// Distance is the paper's Λ-weighted norm sqrt(Σ (y − ax)² Λ) per sample with
// Λ_ii = 1/(2 ŷ_i) on the intensity scale ŷ = (y+1)/2, and ŷ floored at one count,
// ε = 1/(255·rate), so that dark pixels (y = −1, zero counts) get a large but finite weight
// 255·rate/2 rather than a division by zero. The residual stays in [-1, 1] units.
func (p *Poisson) Distance(y, ax *graph.Node) *graph.Node {
	intensity := graph.MulScalar(graph.AddScalar(y, 1), 0.5)
	weight := graph.Reciprocal(graph.MulScalar(graph.MaxScalar(intensity, 1/(255*p.rate)), 2))
	return safeSqrt(sumPerSample(graph.Mul(graph.Square(graph.Sub(y, ax)), weight)))
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

// safeSqrt is √s with gradient 0 instead of NaN at s = 0 (the "double Where": the inner
// Where keeps √ away from 0 so no Inf enters the backward pass, the outer restores the value).
func safeSqrt(s *graph.Node) *graph.Node {
	zeros := graph.ZerosLike(s)
	pos := graph.GreaterThan(s, zeros)
	return graph.Where(pos, graph.Sqrt(graph.Where(pos, s, graph.OnesLike(s))), zeros)
}
