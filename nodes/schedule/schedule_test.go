package schedule

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func relClose(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if d := math.Abs(got - want); d > tol*math.Max(math.Abs(want), 1e-300) {
		t.Errorf("%s = %.17g, want %.17g (rel. tol %g)", name, got, want, tol)
	}
}

// Closed forms at a few steps, computed independently of build's expressions.
func TestLinearClosedForms(t *testing.T) {
	s := Default()
	if s.Len() != 1000 {
		t.Fatalf("Len = %d", s.Len())
	}
	relClose(t, "β_0", s.Betas[0], 1e-4, 0)
	relClose(t, "β_999", s.Betas[999], 0.02, 0)
	relClose(t, "β_500", s.Betas[500], 1e-4+500*(0.02-1e-4)/999, 1e-15)
	relClose(t, "ᾱ_0", s.AlphaBars[0], 0.9999, 1e-15)
	relClose(t, "ᾱ_1", s.AlphaBars[1], 0.9999*(1-(1e-4+0.0199/999)), 1e-15)
	// Python float64 cumprod of the same linspace (the reference's value).
	relClose(t, "ᾱ_999", s.AlphaBars[999], 4.0358297653756754e-05, 1e-12)
	relClose(t, "ᾱ_499", s.AlphaBars[499], 0.07858724288177821, 1e-12)

	// t = 0: q(x_{-1}|x_0, x_t) is the point mass at x_0.
	if s.PosteriorVariance[0] != 0 || s.PosteriorMeanCoefXt[0] != 0 || s.AlphaBarsPrev[0] != 1 {
		t.Errorf("t=0: β̃=%g c1=%g ᾱprev=%g, want 0, 0, 1", s.PosteriorVariance[0], s.PosteriorMeanCoefXt[0], s.AlphaBarsPrev[0])
	}
	relClose(t, "c0_0", s.PosteriorMeanCoefX0[0], 1, 1e-12)
	relClose(t, "clipped log β̃_0", s.PosteriorLogVarianceClipped[0], math.Log(s.PosteriorVariance[1]), 0)
	// β̃_1 = β_1 β_0 / (1 − α_0 α_1) by hand.
	b0, b1 := s.Betas[0], s.Betas[1]
	relClose(t, "β̃_1", s.PosteriorVariance[1], b1*b0/(1-(1-b0)*(1-b1)), 1e-12)
	for _, i := range []int{1, 10, 999} {
		relClose(t, "log β̃", s.PosteriorLogVarianceClipped[i], math.Log(s.PosteriorVariance[i]), 1e-15)
		relClose(t, "log β", s.LogBetas()[i], math.Log(s.Betas[i]), 0)
	}
}

// ᾱ_t = ∏ α_s = exp Σ log(1 − β_s), for the base and a respaced schedule.
func TestCumulativeProduct(t *testing.T) {
	base := Default()
	sp, err := base.Respace(37)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Schedule{base, sp} {
		logSum := 0.0
		for i := range s.Len() {
			relClose(t, "α", s.Alphas[i], 1-s.Betas[i], 1e-13)
			logSum += math.Log1p(-s.Betas[i])
			relClose(t, "ᾱ", s.AlphaBars[i], math.Exp(logSum), 1e-11)
			if i > 0 && s.AlphaBarsPrev[i] != s.AlphaBars[i-1] {
				t.Fatalf("ᾱprev[%d] != ᾱ[%d]", i, i-1)
			}
		}
	}
}

// c0, c1 and β̃ are the mean and variance of q(x_{t−1}|x_t, x_0) ∝ q(x_t|x_{t−1}) q(x_{t−1}|x_0),
// a product of N(√α_t x_{t−1}, β_t) (in x_{t−1}) and N(√ᾱ_{t−1} x_0, 1 − ᾱ_{t−1}).
func TestPosteriorIsGaussianProduct(t *testing.T) {
	base := Default()
	sp, _ := base.Respace(50)
	for _, s := range []*Schedule{base, sp} {
		for _, i := range []int{1, 2, 10, s.Len() / 2, s.Len() - 1} {
			a, prev := s.Alphas[i], s.AlphaBars[i-1]
			b := 1 - a
			prec := a/b + 1/(1-prev)
			variance := 1 / prec
			// mean = variance·(√α_t x_t/β_t + √ᾱ_{t−1} x_0/(1 − ᾱ_{t−1})): read off coefficients.
			cXt := variance * math.Sqrt(a) / b
			cX0 := variance * math.Sqrt(prev) / (1 - prev)
			relClose(t, "β̃", s.PosteriorVariance[i], variance, 1e-10)
			relClose(t, "c1", s.PosteriorMeanCoefXt[i], cXt, 1e-10)
			relClose(t, "c0", s.PosteriorMeanCoefX0[i], cX0, 1e-10)
		}
	}
}

func TestRespaceKeepsAlphaBars(t *testing.T) {
	base := Default()
	for _, n := range []int{1, 2, 3, 7, 10, 50, 250, 999} {
		s, err := base.Respace(n)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != n {
			t.Fatalf("Respace(%d).Len() = %d", n, s.Len())
		}
		if s.Timesteps[0] != 0 || (n > 1 && s.Timesteps[n-1] != 999) {
			t.Errorf("Respace(%d) ends: %v … %v", n, s.Timesteps[0], s.Timesteps[n-1])
		}
		for i, k := range s.Timesteps {
			if s.AlphaBars[i] != base.AlphaBars[k] {
				t.Fatalf("Respace(%d): ᾱ[%d] = %g, base ᾱ[%d] = %g", n, i, s.AlphaBars[i], k, base.AlphaBars[k])
			}
			prev := 1.0
			if i > 0 {
				prev = base.AlphaBars[s.Timesteps[i-1]]
			}
			relClose(t, "respaced β", s.Betas[i], 1-base.AlphaBars[k]/prev, 1e-12)
		}
	}
	// Respacing twice composes the maps.
	s10, _ := base.Respace(10)
	s4, _ := s10.Respace(4)
	if want := []int{0, 333, 666, 999}; !slices.Equal(s4.Timesteps, want) {
		t.Errorf("Respace(10).Respace(4).Timesteps = %v, want %v", s4.Timesteps, want)
	}
}

// Indices from guided-diffusion's space_timesteps(T, [n]) run in Python (sorted), including
// cases where round-half-to-even decides (1000/3: 499.5 → 500; 10/3: 4.5 → 4).
func TestRespaceMatchesGuidedDiffusion(t *testing.T) {
	cases := []struct {
		T, n int
		want []int
	}{
		{1000, 10, []int{0, 111, 222, 333, 444, 555, 666, 777, 888, 999}},
		{1000, 7, []int{0, 166, 333, 500, 666, 832, 999}},
		{1000, 3, []int{0, 500, 999}},
		{1000, 1, []int{0}},
		{10, 3, []int{0, 4, 9}},
		{6, 3, []int{0, 2, 5}},
		{21, 9, []int{0, 2, 5, 8, 10, 12, 15, 18, 20}},
		{1000, 50, []int{0, 20, 41, 61, 82, 102, 122, 143, 163, 183, 204, 224, 245, 265, 285, 306, 326, 347, 367, 387, 408, 428, 449, 469, 489, 510, 530, 550, 571, 591, 612, 632, 652, 673, 693, 714, 734, 754, 775, 795, 816, 836, 856, 877, 897, 917, 938, 958, 979, 999}},
	}
	for _, c := range cases {
		base, err := Linear(c.T, 1e-4, 0.02)
		if err != nil {
			t.Fatal(err)
		}
		s, err := base.Respace(c.n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Timesteps, c.want) {
			t.Errorf("Respace(%d) of T=%d: %v, want %v", c.n, c.T, s.Timesteps, c.want)
		}
	}
	base := Default()
	s, _ := base.Respace(250)
	sum := 0
	for _, k := range s.Timesteps {
		sum += k
	}
	if sum != 124875 || s.Timesteps[5] != 20 || s.Timesteps[247] != 991 {
		t.Errorf("Respace(250): sum %d, [5]=%d, [247]=%d; want 124875, 20, 991", sum, s.Timesteps[5], s.Timesteps[247])
	}
}

func TestRespaceIdentity(t *testing.T) {
	base := Default()
	s, err := base.Respace(base.Len())
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]float64{
		"Betas": {s.Betas, base.Betas}, "Alphas": {s.Alphas, base.Alphas}, "AlphaBars": {s.AlphaBars, base.AlphaBars},
		"AlphaBarsPrev": {s.AlphaBarsPrev, base.AlphaBarsPrev}, "PosteriorVariance": {s.PosteriorVariance, base.PosteriorVariance},
		"PosteriorLogVarianceClipped": {s.PosteriorLogVarianceClipped, base.PosteriorLogVarianceClipped},
		"PosteriorMeanCoefX0":         {s.PosteriorMeanCoefX0, base.PosteriorMeanCoefX0},
		"PosteriorMeanCoefXt":         {s.PosteriorMeanCoefXt, base.PosteriorMeanCoefXt},
	} {
		if !slices.Equal(pair[0], pair[1]) {
			t.Errorf("Respace(T).%s differs from the base", name)
		}
	}
	if !slices.Equal(s.Timesteps, base.Timesteps) {
		t.Errorf("Respace(T).Timesteps differs from the base")
	}
}

func TestOneStep(t *testing.T) {
	s, err := Linear(1, 0.1, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || s.AlphaBars[0] != 0.9 || math.IsInf(s.PosteriorLogVarianceClipped[0], 0) {
		t.Errorf("one-step schedule: %+v", s)
	}
}

func TestBadArgs(t *testing.T) {
	for _, c := range []struct {
		T          int
		start, end float64
		want       string
	}{
		{0, 1e-4, 0.02, "T"},
		{-3, 1e-4, 0.02, "T"},
		{10, 0, 0.02, "beta_start"},
		{10, math.NaN(), 0.02, "beta_start"},
		{10, 1e-4, 1, "beta_end"},
		{10, 1e-4, -0.5, "beta_end"},
		{10, 0.02, 1e-4, "beta_start (0.02) must not exceed beta_end"},
	} {
		_, err := Linear(c.T, c.start, c.end)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Linear(%d, %g, %g) error %v, want it to mention %q", c.T, c.start, c.end, err, c.want)
		}
	}
	for _, n := range []int{0, -1, 1001} {
		if _, err := Default().Respace(n); err == nil || !strings.Contains(err.Error(), "steps") {
			t.Errorf("Respace(%d) error %v, want it to mention steps", n, err)
		}
	}
}

// RespaceStride keeps range(0, T, k) for the stride k with exactly the asked count, as
// guided-diffusion's space_timesteps(T, "ddimN"): ddim100 → 0, 10, …, 990; ddim334 → stride
// 3 (0 … 999); ddim300 → no stride, an error.
func TestRespaceStride(t *testing.T) {
	base := Default()
	for _, c := range []struct{ steps, stride int }{{100, 10}, {50, 20}, {334, 3}, {1000, 1}, {1, 1000}} {
		s, err := base.RespaceStride(c.steps)
		if err != nil {
			t.Fatalf("%d steps: %v", c.steps, err)
		}
		if s.Len() != c.steps {
			t.Fatalf("%d steps: got %d", c.steps, s.Len())
		}
		for i, ts := range s.Timesteps {
			if ts != i*c.stride {
				t.Fatalf("%d steps: step %d keeps t=%d, want %d", c.steps, i, ts, i*c.stride)
			}
			if s.AlphaBars[i] != base.AlphaBars[ts] {
				t.Fatalf("%d steps: ᾱ at t=%d changed", c.steps, ts)
			}
		}
	}
	if _, err := base.RespaceStride(300); err == nil {
		t.Error("300 of 1000 steps: no stride gives it, but RespaceStride accepted it")
	}
}

// Keep of the steps Respace keeps is Respace's schedule; unsorted, repeated or out-of-range
// steps are refused.
func TestKeepEqualsRespaceAndRefusesBadSteps(t *testing.T) {
	base := Default()
	want, err := base.Respace(50)
	if err != nil {
		t.Fatal(err)
	}
	got, err := base.Keep(want.Timesteps)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("Keep of Respace(50)'s steps differs from Respace(50)")
	}
	for _, bad := range [][]int{nil, {3, 2}, {1, 1}, {-1, 4}, {5, 1000}} {
		if _, err := base.Keep(bad); err == nil {
			t.Errorf("Keep(%v) accepted", bad)
		}
	}
}
