package operator

// Blurs: y = k ⋆ reflect_pad(x, k/2) per channel, a "valid" cross-correlation (PyTorch's
// conv2d, as the reference's Blurkernel applies it) after reflect padding without repeating
// the edge pixel, so y has x's size. The padding needs H, W > k/2.
//
// A direct 61×61 convolution is slow on the embedded backend (seconds at 64² with its
// gradient), so neither blur is applied as one:
//   - separable kernels (Gaussian) are two banded [H, H] and [W, W] matrices that include
//     the reflect padding;
//   - any other kernel (motion) is an exact circular correlation on the padded grid
//     (H + 2p) × (W + 2p) computed with real DFT matrices: padding and the forward DFT are
//     folded into one complex matrix per axis, the columns use the half spectrum of a real
//     signal, the transfer function is conj(K̂), and the inverse DFT keeps only the H×W
//     valid outputs, which never wrap around.
//
// Both are sequences of matrix products, so the adjoint is exact: the transposed stages in
// reverse order.

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Blur is a per-channel blur by a k×k kernel with reflect padding k/2. It is Linear.
type Blur struct {
	name   string
	k      int
	kernel []float64 // [k*k], row-major: kernel[a*k+b] weighs x_pad[i+a, j+b]
	sep    []float64 // [k] with kernel = sep ⊗ sep, or nil
	pipes  perSize[[2]pipeline]
}

// NewBlur blurs with a given row-major k×k kernel; k must be odd and the kernel must sum
// to 1 within 1e-6. An empty name is "blur".
func NewBlur(kernel []float64, k int, name string) (*Blur, error) {
	if name == "" {
		name = "blur"
	}
	if k < 1 || k%2 == 0 {
		return nil, fmt.Errorf("%s: kernel size %d must be odd and positive", name, k)
	}
	if len(kernel) != k*k {
		return nil, fmt.Errorf("%s: kernel has %d values, want %d×%d = %d", name, len(kernel), k, k, k*k)
	}
	sum := 0.0
	for i, v := range kernel {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: kernel[%d] is %v", name, i, v)
		}
		sum += v
	}
	if math.Abs(sum-1) > 1e-6 {
		return nil, fmt.Errorf("%s: kernel sums to %.9g, must sum to 1 within 1e-6", name, sum)
	}
	return &Blur{name: name, k: k, kernel: append([]float64(nil), kernel...)}, nil
}

// NewGaussianBlur is the reference's Gaussian deblurring operator (task "gaussian_blur";
// reference: size 61, sigma 3.0): the kernel is GaussianKernel(size, sigma). Its kernel is
// separable, so it also has an SVD (SeparableBlur).
func NewGaussianBlur(size int, sigma float64) (*SeparableBlur, error) {
	g, err := gaussian1D(size, sigma)
	if err != nil {
		return nil, fmt.Errorf("gaussian_blur: %w", err)
	}
	b, err := NewBlur(outer(g), size, "gaussian_blur")
	if err != nil {
		return nil, err
	}
	b.sep = g
	return b.Separable()
}

// GaussianKernel returns the reference's size×size Gaussian kernel, row-major: what
// scipy.ndimage.gaussian_filter(delta, sigma) gives for a centred delta — the outer product
// of the sampled 1-D Gaussian exp(−t²/2σ²) truncated at radius ⌊4σ + 0.5⌋ (12 for σ = 3),
// normalised to sum 1, zero elsewhere. When that radius exceeds size/2, the tails fold back
// at the borders as scipy's "reflect" mode (edge repeated) does.
func GaussianKernel(size int, sigma float64) ([]float64, error) {
	g, err := gaussian1D(size, sigma)
	if err != nil {
		return nil, err
	}
	return outer(g), nil
}

func gaussian1D(size int, sigma float64) ([]float64, error) {
	if size < 1 || size%2 == 0 {
		return nil, fmt.Errorf("kernel_size %d must be odd and positive", size)
	}
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		return nil, fmt.Errorf("intensity (sigma) %v must be positive", sigma)
	}
	r := int(4*sigma + 0.5)
	w := make([]float64, 2*r+1)
	sum := 0.0
	for t := range w {
		d := float64(t - r)
		w[t] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += w[t]
	}
	c := size / 2
	g := make([]float64, size)
	for t, v := range w {
		j := c + t - r
		j = ((j % (2 * size)) + 2*size) % (2 * size) // scipy "reflect": period 2·size, edge repeated
		if j >= size {
			j = 2*size - 1 - j
		}
		g[j] += v / sum
	}
	return g, nil
}

func outer(g []float64) []float64 {
	k := make([]float64, len(g)*len(g))
	for a, u := range g {
		for b, v := range g {
			k[a*len(g)+b] = u * v
		}
	}
	return k
}

// Name is the task name ("gaussian_blur", "motion_blur") or the name given to NewBlur.
func (b *Blur) Name() string { return b.name }

// Kernel returns a copy of the k×k kernel, row-major, and k.
func (b *Blur) Kernel() ([]float64, int) { return append([]float64(nil), b.kernel...), b.k }

// MeasurementShape is x's shape; H and W must exceed the padding k/2.
func (b *Blur) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	if err := checkImage(b.name, x, 0, 0); err != nil {
		return shapes.Shape{}, err
	}
	for i, what := range []string{"height", "width"} {
		if n := x.Dimensions[2+i]; n <= b.k/2 {
			return shapes.Shape{}, fmt.Errorf("%s: input %s (dimension %d of NCHW) %d must exceed the reflect padding %d of a %d×%d kernel",
				b.name, what, 2+i, n, b.k/2, b.k, b.k)
		}
	}
	return x, nil
}

// Apply blurs x.
func (b *Blur) Apply(x *graph.Node) *graph.Node {
	mustShape(b, x)
	return b.pipelines(x)[0].real(x)
}

// Adjoint is the exact adjoint of Apply (padding included).
func (b *Blur) Adjoint(y *graph.Node) *graph.Node {
	mustShape(b, y)
	return b.pipelines(y)[1].real(y)
}

func (b *Blur) pipelines(x *graph.Node) [2]pipeline {
	h, w := x.Shape().Dimensions[2], x.Shape().Dimensions[3]
	return b.pipes.get(h, w, func() [2]pipeline {
		var p pipeline
		if b.sep != nil {
			p = pipeline{{alongW, bandMatrix(w, b.sep)}, {alongH, bandMatrix(h, b.sep)}}
		} else {
			p = b.dftPipeline(h, w)
		}
		return [2]pipeline{p, p.adjoint()}
	})
}

// bandMatrix is the [n, n] matrix of y_i = Σ_t g_t x_pad[i+t] after reflect padding len(g)/2.
func bandMatrix(n int, g []float64) cmat {
	m := cmat{rows: n, cols: n, re: make([]float64, n*n)}
	p := len(g) / 2
	for i := range n {
		for t, v := range g {
			m.re[i*n+reflectIndex(i+t-p, n)] += v
		}
	}
	return m
}

// dftPipeline computes the padded correlation by DFTs on the (h+2p)×(w+2p) grid:
// AW (pad + half-spectrum DFT of the columns), AH (pad + DFT of the rows), the transfer
// function conj(K̂)/(PH·PW), BH (inverse DFT, first h rows), BW (inverse half-spectrum DFT
// of the first w columns, real part).
func (b *Blur) dftPipeline(h, w int) pipeline {
	p := b.k / 2
	ph, pw := h+2*p, w+2*p
	q := pw/2 + 1
	// forward[u, i] = Σ_{m: reflect(m−p) = i} e^{−2πi·u·m/P}: padding folded into the DFT.
	forward := func(n, pn, rows int) cmat {
		m := cmat{rows: rows, cols: n, re: make([]float64, rows*n), im: make([]float64, rows*n)}
		for u := range rows {
			for j := range pn {
				s, c := math.Sincos(-2 * math.Pi * float64(u*j%pn) / float64(pn))
				i := reflectIndex(j-p, n)
				m.re[u*n+i] += c
				m.im[u*n+i] += s
			}
		}
		return m
	}
	// inverse[j, u] = weight(u)·e^{2πi·u·j/P} for the first n outputs.
	inverse := func(n, pn, cols int, weight func(u int) float64) cmat {
		m := cmat{rows: n, cols: cols, re: make([]float64, n*cols), im: make([]float64, n*cols)}
		for j := range n {
			for u := range cols {
				s, c := math.Sincos(2 * math.Pi * float64(u*j%pn) / float64(pn))
				m.re[j*cols+u], m.im[j*cols+u] = weight(u)*c, weight(u)*s
			}
		}
		return m
	}
	// Half spectrum of a real signal: frequencies 1 … ⌈P/2⌉−1 stand for their mirror too.
	half := func(v int) float64 {
		if v == 0 || 2*v == pw {
			return 1
		}
		return 2
	}
	// conj(K̂)[u, v] = Σ_a e^{2πi·u·a/PH} Σ_b k[a, b] e^{2πi·v·b/PW}, scaled by 1/(PH·PW).
	k := b.k
	tr, ti := make([]float64, k*q), make([]float64, k*q)
	for a := range k {
		for v := range q {
			for c := range k {
				s, co := math.Sincos(2 * math.Pi * float64(v*c%pw) / float64(pw))
				tr[a*q+v] += b.kernel[a*k+c] * co
				ti[a*q+v] += b.kernel[a*k+c] * s
			}
		}
	}
	g := cmat{rows: ph, cols: q, re: make([]float64, ph*q), im: make([]float64, ph*q)}
	norm := 1 / float64(ph*pw)
	for u := range ph {
		for a := range k {
			s, c := math.Sincos(2 * math.Pi * float64(u*a%ph) / float64(ph))
			for v := range q {
				g.re[u*q+v] += norm * (c*tr[a*q+v] - s*ti[a*q+v])
				g.im[u*q+v] += norm * (c*ti[a*q+v] + s*tr[a*q+v])
			}
		}
	}
	one := func(int) float64 { return 1 }
	return pipeline{
		{alongW, forward(w, pw, q)},
		{alongH, forward(h, ph, ph)},
		{pointwise, g},
		{alongH, inverse(h, ph, ph, one)},
		{alongW, inverse(w, pw, q, half)},
	}
}
