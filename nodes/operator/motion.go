package operator

// Motion blur: a Blur whose kernel is a random camera-shake trajectory, drawn on the host
// from a seed. The reference draws its kernel with the "motionblur" package (Kernel(size,
// intensity)); MotionKernel is our own code for the same recipe, on a canvas twice the
// kernel size (2k × 2k, diagonal D = 2√2·k):
//
//  1. Path length L = 0.75·D·(U(0,1) + U(0, intensity²)); step lengths
//     Beta(1, 30)·(1 − intensity + 0.1)·D are drawn (those ≥ L rejected) until they add up
//     to L.
//  2. Directions: a maximal angle M ~ U(0, intensity·π) and a jitter probability
//     J ~ Beta(2, 20); the first direction is U(−M, M); each next one has magnitude
//     Triangular(0, intensity·M, M + 0.1) and keeps the previous one's sign, or flips it
//     with probability J. Intensity thus controls both length and turning.
//  3. The path is the running sum of the steps, centred on its centroid, rotated by
//     U(0, π) and placed at the middle of the canvas (pieces off the canvas are dropped).
//  4. Rasterisation (where the reference draws a 1-pixel PIL line, blurs it and resizes
//     with Lanczos to 8-bit grey): every segment is sampled every ≤ 0.1 canvas pixel and
//     each sample is spread bilinearly over its 4 neighbours with weight proportional to
//     the length it stands for (time spent there), then smoothed by a Gaussian of σ =
//     ⌊0.01·D⌋ canvas pixels (the reference's blur radius), averaged over 2×2 blocks to
//     k × k, and normalised to sum 1. The result is non-negative, exactly normalised in
//     float64 and not quantised; our centroid is the length-weighted one, which puts the
//     kernel's centre of mass at its middle pixel.
//
// Draws use math/rand/v2's PCG, so a seed gives the same kernel on every platform; they
// will not reproduce the reference's numpy draws.

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// NewMotionBlur is the reference's motion deblurring operator (task "motion_blur";
// reference: size 61, intensity 0.5) with the kernel MotionKernel(size, intensity, seed).
func NewMotionBlur(size int, intensity float64, seed uint64) (*Blur, error) {
	k, err := MotionKernel(size, intensity, seed)
	if err != nil {
		return nil, fmt.Errorf("motion_blur: %w", err)
	}
	return NewBlur(k, size, "motion_blur")
}

// MotionKernel returns a size×size random-trajectory kernel, row-major, summing to 1
// (see the file comment for the recipe). size must be odd; intensity in [0, 1].
func MotionKernel(size int, intensity float64, seed uint64) ([]float64, error) {
	if size < 1 || size%2 == 0 {
		return nil, fmt.Errorf("kernel_size %d must be odd and positive", size)
	}
	if !(intensity >= 0 && intensity <= 1) {
		return nil, fmt.Errorf("intensity %v must be in [0, 1]", intensity)
	}
	rng := rand.New(rand.NewPCG(seed, 0x6d6f74696f6e)) // stream "motion"
	n := 2 * size
	diag := math.Sqrt2 * float64(n)

	// 1. Step lengths.
	total := 0.75 * diag * (rng.Float64() + intensity*intensity*rng.Float64())
	var steps []float64
	sum := 0.0
	for tries := 0; sum < total && tries < 1_000_000; tries++ {
		if s := betaInt(rng, 1, 30) * (1 - intensity + 0.1) * diag; s < total {
			steps = append(steps, s)
			sum += s
		}
	}
	if len(steps) == 0 { // total ≈ 0: a still camera
		steps = []float64{0}
	}

	// 2. Directions.
	maxAngle := rng.Float64() * intensity * math.Pi
	jitter := betaInt(rng, 2, 20)
	angles := []float64{maxAngle * (2*rng.Float64() - 1)}
	for len(angles) < len(steps) {
		a := triangular(rng, 0, intensity*maxAngle, maxAngle+0.1)
		sign := sgn(angles[len(angles)-1])
		if rng.Float64() < jitter {
			sign = -sign
		}
		angles = append(angles, a*sign)
	}

	// 3. Path: vertices after each step, centred on the length-weighted centroid of its
	// segments, rotated, moved to the canvas pixel that maps onto the kernel's middle.
	xs, ys := make([]float64, len(steps)), make([]float64, len(steps))
	var x, y float64
	for i, s := range steps {
		x += s * math.Cos(angles[i])
		y += s * math.Sin(angles[i])
		xs[i], ys[i] = x, y
	}
	var cx, cy, length float64
	for i := 1; i < len(xs); i++ {
		l := math.Hypot(xs[i]-xs[i-1], ys[i]-ys[i-1])
		cx += l * (xs[i] + xs[i-1]) / 2
		cy += l * (ys[i] + ys[i-1]) / 2
		length += l
	}
	if length > 0 {
		cx, cy = cx/length, cy/length
	} else {
		cx, cy = xs[0], ys[0]
	}
	sin, cos := math.Sincos(math.Pi * rng.Float64())
	mid := float64(2*(size/2)) + 0.5
	for i := range xs {
		dx, dy := xs[i]-cx, ys[i]-cy
		xs[i], ys[i] = mid+cos*dx-sin*dy, mid+sin*dx+cos*dy
	}

	// 4. Rasterise on the canvas (row = y, column = x), smooth, shrink, normalise.
	canvas := make([]float64, n*n)
	splat := func(px, py, wt float64) {
		x0, y0 := math.Floor(px), math.Floor(py)
		fx, fy := px-x0, py-y0
		for _, c := range [4][3]float64{{y0, x0, (1 - fy) * (1 - fx)}, {y0, x0 + 1, (1 - fy) * fx}, {y0 + 1, x0, fy * (1 - fx)}, {y0 + 1, x0 + 1, fy * fx}} {
			if r, col := int(c[0]), int(c[1]); r >= 0 && r < n && col >= 0 && col < n {
				canvas[r*n+col] += wt * c[2]
			}
		}
	}
	if length == 0 {
		splat(xs[0], ys[0], 1)
	}
	for i := 1; i < len(xs); i++ {
		l := math.Hypot(xs[i]-xs[i-1], ys[i]-ys[i-1])
		m := max(1, int(math.Ceil(l/0.1)))
		for j := range m {
			t := (float64(j) + 0.5) / float64(m)
			splat(xs[i-1]+t*(xs[i]-xs[i-1]), ys[i-1]+t*(ys[i]-ys[i-1]), l/float64(m))
		}
	}
	if sigma := math.Floor(0.01 * diag); sigma > 0 {
		canvas = smooth(canvas, n, sigma)
	}
	kernel := make([]float64, size*size)
	total = 0
	for r := range n {
		for c := range n {
			kernel[(r/2)*size+c/2] += canvas[r*n+c]
			total += canvas[r*n+c]
		}
	}
	if total == 0 { // the whole path fell off the canvas: cannot happen, it is centred
		return nil, fmt.Errorf("motion kernel for seed %d is empty", seed)
	}
	for i := range kernel {
		kernel[i] /= total
	}
	return kernel, nil
}

// smooth convolves an n×n image with a Gaussian of σ (radius 3σ, zero outside).
func smooth(img []float64, n int, sigma float64) []float64 {
	r := int(math.Ceil(3 * sigma))
	g := make([]float64, 2*r+1)
	for t := range g {
		d := float64(t - r)
		g[t] = math.Exp(-d * d / (2 * sigma * sigma))
	}
	pass := func(src []float64, rowStep, colStep int) []float64 {
		dst := make([]float64, len(src))
		for i := range n {
			for j := range n {
				for t, w := range g {
					if k := j + t - r; k >= 0 && k < n {
						dst[i*rowStep+j*colStep] += w * src[i*rowStep+k*colStep]
					}
				}
			}
		}
		return dst
	}
	return pass(pass(img, n, 1), 1, n)
}

// betaInt draws Beta(a, b) for integer a, b from two Gamma variates, each a sum of
// exponentials.
func betaInt(rng *rand.Rand, a, b int) float64 {
	gamma := func(k int) float64 {
		s := 0.0
		for range k {
			s -= math.Log(1 - rng.Float64()) // 1 − U ∈ (0, 1]
		}
		return s
	}
	x := gamma(a)
	return x / (x + gamma(b))
}

// triangular draws from the triangular distribution on [lo, hi] with the given mode
// (numpy's parameterisation).
func triangular(rng *rand.Rand, lo, mode, hi float64) float64 {
	if hi <= lo {
		return lo
	}
	u := rng.Float64()
	if u <= (mode-lo)/(hi-lo) {
		return lo + math.Sqrt(u*(hi-lo)*(mode-lo))
	}
	return hi - math.Sqrt((1-u)*(hi-lo)*(hi-mode))
}

// sgn is numpy's sign: −1, 0 or 1.
func sgn(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}
