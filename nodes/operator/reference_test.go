package operator

// Operators against independent computations written as plain loops: kernels against
// their closed forms, blurs against a direct reflect-padded correlation, phase retrieval
// against the DFT sum, bicubic weights against the imresize formula.

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func TestGaussianKernelClosedForm(t *testing.T) {
	k, err := GaussianKernel(61, 3)
	if err != nil {
		t.Fatal(err)
	}
	z := 0.0 // normaliser of the truncated 1-D Gaussian, radius 4σ = 12
	for d := -12; d <= 12; d++ {
		z += math.Exp(-float64(d*d) / 18)
	}
	g := func(i int) float64 {
		if d := i - 30; d >= -12 && d <= 12 {
			return math.Exp(-float64(d*d)/18) / z
		}
		return 0
	}
	sum := 0.0
	for a := range 61 {
		for b := range 61 {
			if got, want := k[a*61+b], g(a)*g(b); math.Abs(got-want) > 1e-15 {
				t.Fatalf("k[%d, %d] = %g, want %g", a, b, got, want)
			}
			sum += k[a*61+b]
		}
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("kernel sums to %.15g", sum)
	}
	// A σ whose 4σ radius exceeds the window folds its tails back: still sums to 1.
	k, _ = GaussianKernel(9, 3)
	if s := dot(k, ones(len(k))); math.Abs(s-1) > 1e-12 {
		t.Errorf("9×9 kernel with σ = 3 sums to %.15g", s)
	}
}

func ones(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

func TestMotionKernel(t *testing.T) {
	for seed := range uint64(5) {
		k, err := MotionKernel(61, 0.5, seed)
		if err != nil {
			t.Fatal(err)
		}
		if s := dot(k, ones(len(k))); math.Abs(s-1) > 1e-12 {
			t.Errorf("seed %d: kernel sums to %.15g", seed, s)
		}
		var cy, cx float64
		for i, v := range k {
			if v < 0 {
				t.Fatalf("seed %d: negative weight %g", seed, v)
			}
			cy += v * float64(i/61)
			cx += v * float64(i%61)
		}
		// Centred on the middle pixel, up to what the 2× shrink and the canvas edge move.
		if math.Hypot(cy-30, cx-30) > 2 {
			t.Errorf("seed %d: centre of mass (%.2f, %.2f), want near (30, 30)", seed, cy, cx)
		}
		again, _ := MotionKernel(61, 0.5, seed)
		if maxDiff(k, again) != 0 {
			t.Errorf("seed %d: two kernels from the same seed differ", seed)
		}
		other, _ := MotionKernel(61, 0.5, seed+100)
		if maxDiff(k, other) == 0 {
			t.Errorf("seeds %d and %d gave the same kernel", seed, seed+100)
		}
	}
}

// directBlur is the reference: reflect padding k/2 (no edge repeat), then a valid
// cross-correlation, per channel.
func directBlur(x []float64, c, h, w int, kernel []float64, k int) []float64 {
	p := k / 2
	refl := func(j, n int) int {
		if j < 0 {
			return -j
		}
		if j >= n {
			return 2*(n-1) - j
		}
		return j
	}
	y := make([]float64, len(x))
	for ch := range c {
		for i := range h {
			for j := range w {
				s := 0.0
				for a := range k {
					for b := range k {
						s += kernel[a*k+b] * x[(ch*h+refl(i+a-p, h))*w+refl(j+b-p, w)]
					}
				}
				y[(ch*h+i)*w+j] = s
			}
		}
	}
	return y
}

func TestBlursMatchDirectCorrelation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	gaussian, _ := NewGaussianBlur(61, 3)
	gauss := gaussian.Blur
	motion, _ := NewMotionBlur(61, 0.5, 9)
	asym := randn(rng, 5*5) // an asymmetric kernel catches flips and transposes
	s := dot(asym, ones(25))
	for i := range asym {
		asym[i] /= s
	}
	small, err := NewBlur(asym, 5, "asym5")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op   *Blur
		h, w int
	}{{gauss, 32, 33}, {motion, 31, 36}, {small, 9, 12}} {
		kernel, k := tc.op.Kernel()
		xt, x := randTensor(rng, 1, 2, tc.h, tc.w)
		got := run(t, tc.op.Apply, xt)[0]
		if d := maxDiff(got, directBlur(x, 2, tc.h, tc.w, kernel, k)); d > 1e-10 {
			t.Errorf("%s at %d×%d: differs from the direct correlation by %.2g", tc.op.Name(), tc.h, tc.w, d)
		}
	}
}

func TestPhaseRetrievalMatchesDFT(t *testing.T) {
	const c, h, w = 2, 8, 12
	op, _ := NewPhaseRetrieval(2)
	ph, pw := 2, 3 // ⌊2/8·8⌋, ⌊2/8·12⌋
	m, n := h+2*ph, w+2*pw
	xt, x := randTensor(rand.New(rand.NewPCG(6, 6)), 1, c, h, w)
	got := run(t, op.Apply, xt)[0]
	if len(got) != c*m*n {
		t.Fatalf("got %d values, want %d", len(got), c*m*n)
	}
	for ch := range c {
		for k := range m { // centred: row k is frequency k − m/2
			for l := range n {
				var s complex128
				for i := range h {
					for j := range w {
						phase := -2 * math.Pi * (float64((k-m/2)*(i+ph))/float64(m) + float64((l-n/2)*(j+pw))/float64(n))
						s += complex(x[(ch*h+i)*w+j], 0) * cmplx.Exp(complex(0, phase))
					}
				}
				want := cmplx.Abs(s) / math.Sqrt(float64(m*n))
				if g := got[(ch*m+k)*n+l]; math.Abs(g-want) > 1e-9 {
					t.Fatalf("channel %d, frequency (%d, %d): %.12g, want %.12g", ch, k, l, g, want)
				}
			}
		}
	}
}

// imresizeWeight evaluates MATLAB's antialiased cubic weight of 1-based input pixel j for
// 1-based output pixel x at scale s, before normalisation and without borders.
func imresizeWeight(x, j int, s float64) float64 {
	u := float64(x)/s + 0.5*(1-1/s)
	d := math.Abs(s * (u - float64(j)))
	switch {
	case d <= 1:
		return s * (1.5*d*d*d - 2.5*d*d + 1)
	case d <= 2:
		return s * (-0.5*d*d*d + 2.5*d*d - 4*d + 2)
	}
	return 0
}

func TestBicubicWeights(t *testing.T) {
	const n, s = 40, 0.25
	m := ResizeMatrix(n, s)
	out := len(m) / n
	if out != 10 {
		t.Fatalf("%d outputs, want 10", out)
	}
	// (ii) Rows against the formula, borders folded by hand (0 ↔ 1, n+1 ↔ n, …).
	for _, x := range []int{1, 2, 5, 9, 10} {
		want := make([]float64, n)
		total := 0.0
		for j := -20; j <= n+20; j++ {
			wt := imresizeWeight(x, j, s)
			total += wt
			src := j
			if src < 1 {
				src = 1 - src
			}
			if src > n {
				src = 2*n + 1 - src
			}
			want[src-1] += wt
		}
		for j := range want {
			want[j] /= total
		}
		if d := maxDiff(m[(x-1)*n:x*n], want); d > 1e-14 {
			t.Errorf("output pixel %d: weights differ from the formula by %.2g", x, d)
		}
	}
	// (iii) A ramp is reproduced away from the borders: output x sits at input u.
	ramp := make([]float64, n)
	for j := range ramp {
		ramp[j] = float64(j + 1)
	}
	for x := 1; x <= out; x++ {
		u := float64(x)/s + 0.5*(1-1/s)
		if u-8 < 1 || u+8 > n {
			continue // the 16-tap support reaches a border
		}
		if got := dot(m[(x-1)*n:x*n], ramp); math.Abs(got-u) > 1e-12 {
			t.Errorf("ramp at output %d: %.15g, want %.15g", x, got, u)
		}
	}
	// (i) Constant images stay constant, through the graph, for a non-square size.
	op, _ := NewBicubicSR(4)
	c := make([]float64, 2*32*48)
	for i := range c {
		c[i] = 0.3
	}
	got := run(t, op.Apply, tensors.FromFlatDataAndDimensions(c, 1, 2, 32, 48))[0]
	if len(got) != 2*8*12 {
		t.Fatalf("got %d values, want %d", len(got), 2*8*12)
	}
	for i, v := range got {
		if math.Abs(v-0.3) > 1e-14 {
			t.Fatalf("constant 0.3 became %.17g at %d", v, i)
		}
	}
}

func TestInpaintingMasks(t *testing.T) {
	box, err := BoxInpaintingFor(32, 32, 11)
	if err != nil {
		t.Fatal(err)
	}
	m := box.Mask()
	top, left, dropped := 32, 32, 0
	for i, v := range m {
		if v == 0 {
			dropped++
			top, left = min(top, i/32), min(left, i%32)
		}
	}
	if dropped != 16*16 || top < 2 || left < 2 || top+16 > 30 || left+16 > 30 {
		t.Errorf("box at 32²: %d pixels dropped from row %d, column %d; want a 16×16 box 2 px inside", dropped, top, left)
	}
	fixed, _ := NewRandomInpaintingFixed(50, 50, PaperDropFraction, 1)
	if d := 2500 - int(dot(fixed.Mask(), ones(2500))); d != 2300 {
		t.Errorf("drop fraction 0.92 of 2500 pixels dropped %d, want 2300", d)
	}
	rng, _ := NewRandomInpaintingRange(50, 50, 0.3, 0.7, 1)
	if d := 2500 - dot(rng.Mask(), ones(2500)); d < 750 || d > 1750 {
		t.Errorf("drop fraction in [0.3, 0.7] dropped %v of 2500", d)
	}
	// One mask for every channel.
	y := run(t, func(x *graph.Node) *graph.Node { return rng.Apply(graph.OnesLike(x)) },
		tensors.FromFlatDataAndDimensions(make([]float64, 3*50*50), 1, 3, 50, 50))[0]
	for c := 1; c < 3; c++ {
		if maxDiff(y[:2500], y[c*2500:(c+1)*2500]) != 0 {
			t.Errorf("channel %d has another mask than channel 0", c)
		}
	}
}
