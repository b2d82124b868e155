package inception

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
)

// Size is the side of the square images the network sees; inputs are resized to it.
const Size = 299

// Dim is the length of a feature vector (pool3).
const Dim = 2048

// bnEps is BatchNorm2d's eps in torchvision's BasicConv2d.
const bnEps = 0.001

// maxBatch bounds the images run through the network at once: the im2col patches of the
// first convolutions take about 25 MB per image.
const maxBatch = 8

// convSpec is one BasicConv2d: conv (no bias) + BatchNorm + ReLU.
type convSpec struct {
	name             string
	cin, cout        int
	kh, kw           int
	stride, padH, pw int
}

// architecture lists every BasicConv2d of torchvision's Inception3 as pytorch-fid's
// fid_inception_v3 builds it (the FID blocks have the same layers as InceptionA/C/E, only
// their pooling differs), in the order the forward pass uses them.
func architecture() []convSpec {
	var s []convSpec
	add := func(name string, cin, cout, kh, kw, stride, ph, pw int) {
		s = append(s, convSpec{name, cin, cout, kh, kw, stride, ph, pw})
	}
	add("Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0)
	add("Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0)
	add("Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1)
	add("Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0)
	add("Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0)
	blockA := func(m string, cin, pool int) {
		add(m+".branch1x1", cin, 64, 1, 1, 1, 0, 0)
		add(m+".branch5x5_1", cin, 48, 1, 1, 1, 0, 0)
		add(m+".branch5x5_2", 48, 64, 5, 5, 1, 2, 2)
		add(m+".branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0)
		add(m+".branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1)
		add(m+".branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1)
		add(m+".branch_pool", cin, pool, 1, 1, 1, 0, 0)
	}
	blockA("Mixed_5b", 192, 32)
	blockA("Mixed_5c", 256, 64)
	blockA("Mixed_5d", 288, 64)
	add("Mixed_6a.branch3x3", 288, 384, 3, 3, 2, 0, 0)
	add("Mixed_6a.branch3x3dbl_1", 288, 64, 1, 1, 1, 0, 0)
	add("Mixed_6a.branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1)
	add("Mixed_6a.branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0)
	blockC := func(m string, c7 int) {
		add(m+".branch1x1", 768, 192, 1, 1, 1, 0, 0)
		add(m+".branch7x7_1", 768, c7, 1, 1, 1, 0, 0)
		add(m+".branch7x7_2", c7, c7, 1, 7, 1, 0, 3)
		add(m+".branch7x7_3", c7, 192, 7, 1, 1, 3, 0)
		add(m+".branch7x7dbl_1", 768, c7, 1, 1, 1, 0, 0)
		add(m+".branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0)
		add(m+".branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3)
		add(m+".branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0)
		add(m+".branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3)
		add(m+".branch_pool", 768, 192, 1, 1, 1, 0, 0)
	}
	blockC("Mixed_6b", 128)
	blockC("Mixed_6c", 160)
	blockC("Mixed_6d", 160)
	blockC("Mixed_6e", 192)
	add("Mixed_7a.branch3x3_1", 768, 192, 1, 1, 1, 0, 0)
	add("Mixed_7a.branch3x3_2", 192, 320, 3, 3, 2, 0, 0)
	add("Mixed_7a.branch7x7x3_1", 768, 192, 1, 1, 1, 0, 0)
	add("Mixed_7a.branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3)
	add("Mixed_7a.branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0)
	add("Mixed_7a.branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0)
	blockE := func(m string, cin int) {
		add(m+".branch1x1", cin, 320, 1, 1, 1, 0, 0)
		add(m+".branch3x3_1", cin, 384, 1, 1, 1, 0, 0)
		add(m+".branch3x3_2a", 384, 384, 1, 3, 1, 0, 1)
		add(m+".branch3x3_2b", 384, 384, 3, 1, 1, 1, 0)
		add(m+".branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0)
		add(m+".branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1)
		add(m+".branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1)
		add(m+".branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0)
		add(m+".branch_pool", cin, 192, 1, 1, 1, 0, 0)
	}
	blockE("Mixed_7b", 1280)
	blockE("Mixed_7c", 2048)
	return s
}

// ignored says whether a key of the weight file is not needed for the pool3 features: the
// classifier, the auxiliary classifier, and BatchNorm's step counters.
func ignored(key string) bool {
	return strings.HasPrefix(key, "fc.") || strings.HasPrefix(key, "AuxLogits.") ||
		strings.HasSuffix(key, ".num_batches_tracked")
}

// Net is pytorch-fid's FID Inception-v3 up to the pool3 features, with each BatchNorm folded
// into its convolution.
type Net struct {
	path   string
	specs  []convSpec
	index  map[string]int
	params []*tensors.Tensor // weight, bias per conv, in specs order

	mu    sync.Mutex
	execs map[backends.Backend]*graph.Exec
}

// Load reads pytorch-fid's weight file (pt_inception-2015-12-05-6726825d.pth, or any
// PyTorch or safetensors file with the same keys). Every convolution and batch-norm tensor
// must be present with its shape; fc.*, AuxLogits.* and num_batches_tracked are ignored and
// any other key is an error. Errors name the file and the tensors.
func Load(path string) (*Net, error) {
	raw, err := checkpoint.Read(path)
	if err != nil {
		return nil, fmt.Errorf("inception: %w", err)
	}
	specs := architecture()
	want := map[string]shapes.Shape{}
	for _, s := range specs {
		want[s.name+".conv.weight"] = shapes.Shape{Dimensions: []int{s.cout, s.cin, s.kh, s.kw}}
		for _, p := range []string{"weight", "bias", "running_mean", "running_var"} {
			want[s.name+".bn."+p] = shapes.Shape{Dimensions: []int{s.cout}}
		}
	}
	kept := map[string]*tensors.Tensor{}
	for k, t := range raw {
		if !ignored(k) {
			kept[k] = t
		}
	}
	if err := checkpoint.CheckAgainst(kept, want); err != nil {
		return nil, fmt.Errorf("inception: %s is not pytorch-fid's FID Inception weight file: %w", path, err)
	}
	values := func(name string) ([]float64, error) {
		t := kept[name]
		var out []float64
		switch t.DType() {
		case dtypes.Float32:
			f, err := tensors.CopyFlatData[float32](t)
			if err != nil {
				return nil, err
			}
			out = make([]float64, len(f))
			for i, v := range f {
				out[i] = float64(v)
			}
		case dtypes.Float64:
			f, err := tensors.CopyFlatData[float64](t)
			if err != nil {
				return nil, err
			}
			out = f
		default:
			return nil, fmt.Errorf("inception: %s: tensor %s is %s, want float32 or float64", path, name, t.DType())
		}
		for i, v := range out {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("inception: %s: tensor %s: element %d is %v", path, name, i, v)
			}
		}
		return out, nil
	}
	net := &Net{path: path, specs: specs, index: map[string]int{}, execs: map[backends.Backend]*graph.Exec{}}
	for i, s := range specs {
		net.index[s.name] = i
		w, err := values(s.name + ".conv.weight")
		if err != nil {
			return nil, err
		}
		var bn [4][]float64
		for j, p := range []string{"weight", "bias", "running_mean", "running_var"} {
			if bn[j], err = values(s.name + ".bn." + p); err != nil {
				return nil, err
			}
		}
		// Fold BatchNorm (eval mode) into the convolution, in float64:
		// γ (conv(x) − m)/√(v + ε) + β = conv_{w·s}(x) + (β − m·s), s = γ/√(v + ε).
		per := s.cin * s.kh * s.kw
		wf, bf := make([]float32, len(w)), make([]float32, s.cout)
		for o := range s.cout {
			v := bn[3][o] + bnEps
			if !(v > 0) {
				return nil, fmt.Errorf("inception: %s: tensor %s.bn.running_var: element %d is %v, a variance must be ≥ 0",
					path, s.name, o, bn[3][o])
			}
			scale := bn[0][o] / math.Sqrt(v)
			for k := range per {
				wf[o*per+k] = float32(w[o*per+k] * scale)
			}
			bf[o] = float32(bn[1][o] - bn[2][o]*scale)
		}
		net.params = append(net.params,
			tensors.FromFlatDataAndDimensions(wf, s.cout, s.cin, s.kh, s.kw),
			tensors.FromFlatDataAndDimensions(bf, s.cout))
	}
	return net, nil
}

// forward builds the graph: inputs[0] is the batch [B, 3, 299, 299], then each conv's
// folded weight and bias in specs order.
func (net *Net) forward(inputs []*graph.Node) *graph.Node {
	x := inputs[0]
	conv := func(name string, x *graph.Node) *graph.Node {
		i := net.index[name]
		s := net.specs[i]
		w, b := inputs[1+2*i], inputs[2+2*i]
		y := graph.Convolve(x, w).ChannelsAxis(images.ChannelsFirst).StridePerDim(s.stride, s.stride).
			PaddingPerDim([][2]int{{s.padH, s.padH}, {s.pw, s.pw}}).Done()
		return activations.Relu(graph.Add(y, graph.Reshape(b, 1, -1, 1, 1)))
	}
	chain := func(x *graph.Node, names ...string) *graph.Node {
		for _, n := range names {
			x = conv(n, x)
		}
		return x
	}
	maxPool := func(x *graph.Node, stride, pad int) *graph.Node {
		return graph.MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(stride).
			PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
	}
	// 3×3 average pool, stride 1, padding 1, count_include_pad=False: GoMLX's MeanPool
	// divides by the number of in-image elements when there is padding.
	avgPool := func(x *graph.Node) *graph.Node {
		return graph.MeanPool(x).ChannelsAxis(images.ChannelsFirst).Window(3).Strides(1).
			PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
	}
	cat := func(xs ...*graph.Node) *graph.Node { return graph.Concatenate(xs, 1) }

	x = chain(x, "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3")
	x = maxPool(x, 2, 0)
	x = chain(x, "Conv2d_3b_1x1", "Conv2d_4a_3x3")
	x = maxPool(x, 2, 0)
	for _, m := range []string{"Mixed_5b", "Mixed_5c", "Mixed_5d"} { // FIDInceptionA
		x = cat(conv(m+".branch1x1", x),
			chain(x, m+".branch5x5_1", m+".branch5x5_2"),
			chain(x, m+".branch3x3dbl_1", m+".branch3x3dbl_2", m+".branch3x3dbl_3"),
			conv(m+".branch_pool", avgPool(x)))
	}
	x = cat(conv("Mixed_6a.branch3x3", x), // InceptionB
		chain(x, "Mixed_6a.branch3x3dbl_1", "Mixed_6a.branch3x3dbl_2", "Mixed_6a.branch3x3dbl_3"),
		maxPool(x, 2, 0))
	for _, m := range []string{"Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"} { // FIDInceptionC
		x = cat(conv(m+".branch1x1", x),
			chain(x, m+".branch7x7_1", m+".branch7x7_2", m+".branch7x7_3"),
			chain(x, m+".branch7x7dbl_1", m+".branch7x7dbl_2", m+".branch7x7dbl_3", m+".branch7x7dbl_4", m+".branch7x7dbl_5"),
			conv(m+".branch_pool", avgPool(x)))
	}
	x = cat(chain(x, "Mixed_7a.branch3x3_1", "Mixed_7a.branch3x3_2"), // InceptionD
		chain(x, "Mixed_7a.branch7x7x3_1", "Mixed_7a.branch7x7x3_2", "Mixed_7a.branch7x7x3_3", "Mixed_7a.branch7x7x3_4"),
		maxPool(x, 2, 0))
	for _, m := range []string{"Mixed_7b", "Mixed_7c"} { // FIDInceptionE_1, FIDInceptionE_2
		b3 := conv(m+".branch3x3_1", x)
		bd := chain(x, m+".branch3x3dbl_1", m+".branch3x3dbl_2")
		var pool *graph.Node
		if m == "Mixed_7b" {
			pool = avgPool(x)
		} else {
			// pytorch-fid: the FID network max-pools here (as TensorFlow's graph did).
			pool = maxPool(x, 1, 1)
		}
		x = cat(conv(m+".branch1x1", x),
			conv(m+".branch3x3_2a", b3), conv(m+".branch3x3_2b", b3),
			conv(m+".branch3x3dbl_3a", bd), conv(m+".branch3x3dbl_3b", bd),
			conv(m+".branch_pool", pool))
	}
	return graph.ReduceMean(x, 2, 3) // adaptive average pooling to 1×1, flattened
}

// exec returns the network's executable on backend, built once per backend; GoMLX compiles
// it once per batch shape.
func (net *Net) exec(backend backends.Backend) (*graph.Exec, error) {
	net.mu.Lock()
	defer net.mu.Unlock()
	if e := net.execs[backend]; e != nil {
		return e, nil
	}
	e, err := graph.NewExec(backend, net.forward)
	if err != nil {
		return nil, fmt.Errorf("inception: %w", err)
	}
	net.execs[backend] = e
	return e, nil
}

// Features returns the 2048-d pool3 features of n images (NCHW float32 in [-1, 1], c = 1
// or 3, any h × w), one row per image: each image is resized to 299 × 299 (bilinear,
// align_corners=False, as pytorch-fid's F.interpolate), a grey image repeated to three
// channels, and the batch run through the network maxBatch images at a time.
func (net *Net) Features(backend backends.Backend, images []float32, n, c, h, w int) (feats [][]float64, err error) {
	if n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 {
		return nil, fmt.Errorf("inception: %d images of %d×%d×%d: want n ≥ 1 images with 1 or 3 channels", n, c, h, w)
	}
	if len(images) != n*c*h*w {
		return nil, fmt.Errorf("inception: %d values for %d images of %d×%d×%d (%d)", len(images), n, c, h, w, n*c*h*w)
	}
	for i, v := range images {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("inception: image %d, value %d is %v", i/(c*h*w), i%(c*h*w), v)
		}
	}
	e, err := net.exec(backend)
	if err != nil {
		return nil, err
	}
	defer func() { // GoMLX reports graph errors by panicking; never let one escape.
		if r := recover(); r != nil {
			feats, err = nil, fmt.Errorf("inception: running the network: %v", r)
		}
	}()
	ry, rx := resizeWeights(h, Size), resizeWeights(w, Size)
	per := c * h * w
	for start := 0; start < n; start += maxBatch {
		bs := min(maxBatch, n-start)
		batch := make([]float32, bs*3*Size*Size)
		for i := range bs {
			img := images[(start+i)*per : (start+i+1)*per]
			for ch := range 3 {
				src := img[min(ch, c-1)*h*w : (min(ch, c-1)+1)*h*w]
				resize(batch[(i*3+ch)*Size*Size:(i*3+ch+1)*Size*Size], src, h, w, ry, rx)
			}
		}
		args := make([]any, 0, 1+len(net.params))
		args = append(args, tensors.FromFlatDataAndDimensions(batch, bs, 3, Size, Size))
		for _, p := range net.params {
			args = append(args, p)
		}
		out, err := e.Exec(args...)
		if err != nil {
			return nil, fmt.Errorf("inception: running the network: %w", err)
		}
		f, err := tensors.CopyFlatData[float32](out[0])
		if err != nil {
			return nil, fmt.Errorf("inception: %w", err)
		}
		for i := range bs {
			row := make([]float64, Dim)
			for j, v := range f[i*Dim : (i+1)*Dim] {
				row[j] = float64(v)
			}
			feats = append(feats, row)
		}
	}
	return feats, nil
}

// Path is the weight file the network was loaded from.
func (net *Net) Path() string { return net.path }
