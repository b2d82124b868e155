package operator

// Nonlinear blur: the reference uses a pretrained blur network (bkse) fed with a latent
// kernel code, and draws a new code on every call — so the "measurement operator" changes
// at each DPS step, a known bug. Pretrained bkse weights are not available here; this is
// our own small network with fixed weights drawn from the seed, and the latent code is
// drawn once, when the operator is built:
//
//	z  ~ 1.2·N(0, I₁₆)                                  (the reference scales its code by 1.2)
//	k  = softmax(−|d|²/(2·1.5²) + 0.5·Wk z)             a positive 5×5 kernel summing to 1
//	b  = k ⋆ reflect_pad(x, 2)                           the blurred image
//	h  = SiLU((W1 ⋆ b + c1)·(1 + s(z)) + t(z))           8 features, 3×3, modulated by the code
//	y  = b + 0.1·tanh(W2 ⋆ h + c2)                       3×3 back to one channel
//
// Each channel goes through the network on its own, so any channel count works. All
// kernels are odd (GoMLX's convolution input-gradient is wrong for even sizes). Only the
// 3×3 convolutions see x nonlinearly, which keeps y close to a blur of x.

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

const (
	nlCode     = 16  // latent code size
	nlFeatures = 8   // hidden channels
	nlResidual = 0.1 // weight of the nonlinear correction
)

// NonlinearBlur is the nonlinear deblurring operator (task "nonlinear_blur").
type NonlinearBlur struct {
	code         []float64 // [nlCode]
	kernel       []float64 // [5*5], from the code
	w1, c1, s, t []float64 // [F,1,3,3], [F], [F], [F]
	w2           []float64 // [1,F,3,3]
	c2           float64
}

// NewNonlinearBlur draws the network weights and the latent code from seed.
func NewNonlinearBlur(seed uint64) *NonlinearBlur {
	rng := rand.New(rand.NewPCG(seed, 0x6e6c626c7572)) // stream "nlblur"
	return newNonlinearBlur(rng, rng)
}

// NewNonlinearBlurSeeds draws the network weights from weightSeed, exactly as
// NewNonlinearBlur(weightSeed) does, and the latent code from codeSeed: one network with a
// code per measurement (NewBatch uses the run's seed and ImageSeed). With
// codeSeed = weightSeed the code differs from NewNonlinearBlur's, which draws it after the
// weights from the same stream.
func NewNonlinearBlurSeeds(weightSeed, codeSeed uint64) *NonlinearBlur {
	return newNonlinearBlur(rand.New(rand.NewPCG(weightSeed, 0x6e6c626c7572)), // stream "nlblur"
		rand.New(rand.NewPCG(codeSeed, 0x6e6c636f6465))) // stream "nlcode"
}

// newNonlinearBlur draws the weights from rng, then the code from codeRng.
func newNonlinearBlur(rng, codeRng *rand.Rand) *NonlinearBlur {
	normal := func(n int, std float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = std * rng.NormFloat64()
		}
		return v
	}
	n := &NonlinearBlur{}
	wk := normal(25*nlCode, 1/math.Sqrt(nlCode))
	ws, wt := normal(nlFeatures*nlCode, 0.1/math.Sqrt(nlCode)), normal(nlFeatures*nlCode, 0.1/math.Sqrt(nlCode))
	n.w1, n.c1 = normal(nlFeatures*9, math.Sqrt(2.0/9)), normal(nlFeatures, 0.1)
	n.w2, n.c2 = normal(nlFeatures*9, math.Sqrt(1.0/(9*nlFeatures))), 0.1*rng.NormFloat64()
	rng = codeRng
	n.code = normal(nlCode, 1.2) // drawn last: the weights do not depend on how it is used

	// The code-dependent parts are constants once the code is fixed: compute them here.
	logits := make([]float64, 25)
	top := math.Inf(-1)
	for i := range logits {
		dy, dx := float64(i/5-2), float64(i%5-2)
		logits[i] = -(dx*dx + dy*dy) / (2 * 1.5 * 1.5)
		for j, z := range n.code {
			logits[i] += 0.5 * wk[i*nlCode+j] * z
		}
		top = max(top, logits[i])
	}
	sum := 0.0
	n.kernel = make([]float64, 25)
	for i, l := range logits {
		n.kernel[i] = math.Exp(l - top)
		sum += n.kernel[i]
	}
	for i := range n.kernel {
		n.kernel[i] /= sum
	}
	n.s, n.t = make([]float64, nlFeatures), make([]float64, nlFeatures)
	for f := range nlFeatures {
		for j, z := range n.code {
			n.s[f] += ws[f*nlCode+j] * z
			n.t[f] += wt[f*nlCode+j] * z
		}
	}
	return n
}

// Name is "nonlinear_blur".
func (n *NonlinearBlur) Name() string { return "nonlinear_blur" }

// Code returns a copy of the latent kernel code.
func (n *NonlinearBlur) Code() []float64 { return append([]float64(nil), n.code...) }

// MeasurementShape is x's shape.
func (n *NonlinearBlur) MeasurementShape(x shapes.Shape) (shapes.Shape, error) {
	if err := checkImage(n.Name(), x, 0, 0); err != nil {
		return shapes.Shape{}, err
	}
	for i, what := range []string{"height", "width"} {
		if x.Dimensions[2+i] < 3 {
			return shapes.Shape{}, fmt.Errorf("%s: input %s (dimension %d of NCHW) %d must be at least 3 for the reflect padding", n.Name(), what, 2+i, x.Dimensions[2+i])
		}
	}
	return x, nil
}

// Apply runs the network on every channel of x.
func (n *NonlinearBlur) Apply(x *graph.Node) *graph.Node {
	mustShape(n, x)
	g, dt, d := x.Graph(), x.DType(), x.Shape().Dimensions
	c := func(v []float64, dims ...int) *graph.Node { return constant(g, dt, v, dims...) }
	conv := func(x, k *graph.Node, pad int) *graph.Node {
		return graph.Convolve(x, k).ChannelsAxis(images.ChannelsFirst).PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
	}
	x1 := graph.Reshape(x, d[0]*d[1], 1, d[2], d[3])
	b := conv(xla.ReflectPad(x1, 2), c(n.kernel, 1, 1, 5, 5), 0)
	h := graph.Add(conv(b, c(n.w1, nlFeatures, 1, 3, 3), 1), c(n.c1, 1, nlFeatures, 1, 1))
	scale := make([]float64, nlFeatures)
	for i, s := range n.s {
		scale[i] = 1 + s
	}
	h = graph.Add(graph.Mul(h, c(scale, 1, nlFeatures, 1, 1)), c(n.t, 1, nlFeatures, 1, 1))
	h = graph.Mul(h, graph.Sigmoid(h)) // SiLU
	r := graph.AddScalar(conv(h, c(n.w2, 1, nlFeatures, 3, 3), 1), n.c2)
	y := graph.Add(b, graph.MulScalar(graph.Tanh(r), nlResidual))
	return graph.Reshape(y, d...)
}
