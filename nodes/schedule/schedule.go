// Package schedule holds the DDPM noise schedule of DPS on the host, in float64: the linear
// β schedule, ᾱ, the posterior q(x_{t−1} | x_t, x_0) coefficients and respacing to fewer
// steps. Graph code turns the slices it needs into constants.
//
// Definitions (paper.md, guided-diffusion's GaussianDiffusion):
//
//	α_t = 1 − β_t,  ᾱ_t = ∏_{s≤t} α_s,  ᾱ_{−1} = 1
//	β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)                (posterior variance; β̃_0 = 0)
//	log β̃ clipped: log β̃_0 is replaced by log β̃_1      (improved DDPM)
//	c0_t = √ᾱ_{t−1} β_t / (1 − ᾱ_t),  c1_t = √α_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t)
//	mean of q(x_{t−1} | x_t, x_0) = c0_t x_0 + c1_t x_t
//
// Step indices run 0…T−1 as in the reference code (its t = 0 is the paper's t = 1).
package schedule

import (
	"fmt"
	"math"
	"slices"
)

// Schedule is a DDPM schedule. All slices have Len() entries; index i is step i of this
// schedule, and Timesteps[i] is the base-schedule step the network is told (i itself
// unless the schedule was respaced).
type Schedule struct {
	Timesteps                   []int
	Betas                       []float64
	Alphas                      []float64
	AlphaBars                   []float64
	AlphaBarsPrev               []float64
	PosteriorVariance           []float64
	PosteriorLogVarianceClipped []float64
	PosteriorMeanCoefX0         []float64
	PosteriorMeanCoefXt         []float64
}

// Len is the number of steps.
func (s *Schedule) Len() int { return len(s.Betas) }

// LogBetas returns log β_t, the upper end of the learned-range log-variance interpolation.
func (s *Schedule) LogBetas() []float64 {
	out := make([]float64, len(s.Betas))
	for i, b := range s.Betas {
		out[i] = math.Log(b)
	}
	return out
}

// Default is the schedule of the paper and its checkpoints: T = 1000, β linear from 1e-4 to
// 0.02.
func Default() *Schedule {
	s, err := Linear(1000, 1e-4, 0.02)
	if err != nil {
		panic(err) // constant arguments: cannot happen
	}
	return s
}

// Linear returns T steps with β spaced linearly from betaStart to betaEnd inclusive, computed
// as numpy.linspace does (start + i·step, last entry exactly betaEnd) so that the numbers
// match the reference's float64 schedule.
func Linear(T int, betaStart, betaEnd float64) (*Schedule, error) {
	if T < 1 {
		return nil, fmt.Errorf("schedule: T must be at least 1, got %d", T)
	}
	if !(betaStart > 0 && betaStart < 1) {
		return nil, fmt.Errorf("schedule: beta_start must be in (0, 1), got %g", betaStart)
	}
	if !(betaEnd > 0 && betaEnd < 1) {
		return nil, fmt.Errorf("schedule: beta_end must be in (0, 1), got %g", betaEnd)
	}
	if betaStart > betaEnd {
		return nil, fmt.Errorf("schedule: beta_start (%g) must not exceed beta_end (%g)", betaStart, betaEnd)
	}
	betas := make([]float64, T)
	betas[0] = betaStart
	if T > 1 {
		step := (betaEnd - betaStart) / float64(T-1)
		for i := range betas {
			betas[i] = betaStart + float64(i)*step
		}
		betas[T-1] = betaEnd
	}
	alphas := make([]float64, T)
	alphaBars := make([]float64, T)
	prod := 1.0
	for i, b := range betas {
		alphas[i] = 1 - b
		prod *= alphas[i]
		alphaBars[i] = prod
	}
	return build(iota(T), betas, alphas, alphaBars), nil
}

// Respace keeps `steps` of s's steps, evenly spread over 0…Len()−1, as guided-diffusion's
// space_timesteps(Len(), [steps]) with a single section does: with stride
// (Len()−1)/(steps−1), accumulated by repeated float64 addition from 0, each kept index is
// the accumulated value rounded half to even (Python's round); steps = 1 keeps step 0 only.
// Both ends are kept when steps ≥ 2.
//
// The kept steps keep their ᾱ exactly; β_i = 1 − ᾱ_{t_i}/ᾱ_{t_{i−1}} (β_0 = 1 − ᾱ_{t_0}),
// except that a step whose predecessor is also kept keeps its own β and α, so Respace(Len())
// returns an identical schedule. Timesteps maps each new step to the base step.
func (s *Schedule) Respace(steps int) (*Schedule, error) {
	T := s.Len()
	if steps < 1 || steps > T {
		return nil, fmt.Errorf("schedule: steps must be in [1, %d], got %d", T, steps)
	}
	return s.keep(spacedSteps(T, steps)), nil
}

// RespaceStride keeps steps 0, k, 2k, … below Len() for the smallest stride k ≥ 1 that keeps
// exactly `steps` of them, as guided-diffusion's space_timesteps does for "ddimN" (the
// reference's DDIM respacing); a count no stride gives (e.g. 300 of 1000) is an error, as
// there. Coefficients follow Respace's rules.
func (s *Schedule) RespaceStride(steps int) (*Schedule, error) {
	T := s.Len()
	for k := 1; k <= T && steps >= 1; k++ {
		if (T+k-1)/k == steps { // len(range(0, T, k))
			kept := make([]int, 0, steps)
			for t := 0; t < T; t += k {
				kept = append(kept, t)
			}
			return s.keep(kept), nil
		}
	}
	return nil, fmt.Errorf("schedule: no integer stride keeps exactly %d of %d steps (as guided-diffusion requires for ddimN)", steps, T)
}

// Keep is the schedule restricted to the kept steps (indices into s, increasing, distinct),
// as Respace builds it: ᾱ kept exactly, β_i = 1 − ᾱ_{t_i}/ᾱ_{t_{i−1}}, and guided-diffusion's
// posterior quantities. For respacing rules of other codes (e.g. DiffPIR's quadratic one).
func (s *Schedule) Keep(kept []int) (*Schedule, error) {
	if len(kept) == 0 {
		return nil, fmt.Errorf("schedule: no steps kept")
	}
	for i, k := range kept {
		if k < 0 || k >= s.Len() {
			return nil, fmt.Errorf("schedule: kept step %d is outside [0, %d)", k, s.Len())
		}
		if i > 0 && k <= kept[i-1] {
			return nil, fmt.Errorf("schedule: kept steps must increase, but %d follows %d", k, kept[i-1])
		}
	}
	return s.keep(kept), nil
}

// keep is the schedule of the kept (sorted, distinct) steps.
func (s *Schedule) keep(kept []int) *Schedule {
	n := len(kept)
	betas, alphas, alphaBars, ts := make([]float64, n), make([]float64, n), make([]float64, n), make([]int, n)
	last, lastIdx := 1.0, -1
	for i, k := range kept {
		ab := s.AlphaBars[k]
		if k == lastIdx+1 {
			betas[i], alphas[i] = s.Betas[k], s.Alphas[k]
		} else {
			alphas[i] = ab / last
			betas[i] = 1 - alphas[i]
		}
		alphaBars[i], ts[i] = ab, s.Timesteps[k]
		last, lastIdx = ab, k
	}
	return build(ts, betas, alphas, alphaBars)
}

// spacedSteps mirrors guided-diffusion's space_timesteps(T, [steps]): the float accumulation
// and banker's rounding are kept so both pick the same indices. The set semantics there
// become sort + dedupe here (no duplicates arise when steps ≤ T, since the stride is ≥ 1).
func spacedSteps(T, steps int) []int {
	stride := 1.0
	if steps > 1 {
		stride = float64(T-1) / float64(steps-1)
	}
	out := make([]int, 0, steps)
	cur := 0.0
	for range steps {
		out = append(out, int(math.RoundToEven(cur)))
		cur += stride
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// build derives the posterior quantities with guided-diffusion's expressions (same operation
// order, so the float64 values agree with the reference).
func build(ts []int, betas, alphas, alphaBars []float64) *Schedule {
	n := len(betas)
	s := &Schedule{
		Timesteps: ts, Betas: betas, Alphas: alphas, AlphaBars: alphaBars,
		AlphaBarsPrev:               make([]float64, n),
		PosteriorVariance:           make([]float64, n),
		PosteriorLogVarianceClipped: make([]float64, n),
		PosteriorMeanCoefX0:         make([]float64, n),
		PosteriorMeanCoefXt:         make([]float64, n),
	}
	for i := range n {
		prev := 1.0
		if i > 0 {
			prev = alphaBars[i-1]
		}
		s.AlphaBarsPrev[i] = prev
		s.PosteriorVariance[i] = betas[i] * (1 - prev) / (1 - alphaBars[i])
		s.PosteriorMeanCoefX0[i] = betas[i] * math.Sqrt(prev) / (1 - alphaBars[i])
		s.PosteriorMeanCoefXt[i] = (1 - prev) * math.Sqrt(alphas[i]) / (1 - alphaBars[i])
	}
	for i := range n {
		s.PosteriorLogVarianceClipped[i] = math.Log(s.PosteriorVariance[i])
	}
	// β̃_0 = 0 would give −Inf; improved DDPM uses β̃_1 instead. A one-step schedule has no
	// β̃_1, so it falls back to β_0, the other end of the learned range (that step adds no
	// noise anyway).
	switch {
	case n > 1:
		s.PosteriorLogVarianceClipped[0] = math.Log(s.PosteriorVariance[1])
	case n == 1:
		s.PosteriorLogVarianceClipped[0] = math.Log(betas[0])
	}
	return s
}

func iota(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
