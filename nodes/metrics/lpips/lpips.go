package lpips

import (
	"fmt"
	"sort"
	"sync"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph building reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
)

// Nets are the backbones LPIPS v0.1 has linear layers for, by the lpips package's names.
var Nets = []string{"alex", "vgg", "squeeze"}

// maxBatch bounds how many image pairs go through the network at once, so that memory stays
// bounded for large sets (VGG16 on 256×256 images holds about 50 MB of activations per
// image); a last partial batch is padded so one compiled graph serves every batch.
const maxBatch = 8

// ScalingLayer's constants (lpips.ScalingLayer): x ↦ (x − shift) / scale maps [-1, 1]
// images to ImageNet-normalised ones.
var (
	scalingShift = []float32{-.030, -.088, -.188}
	scalingScale = []float32{.458, .448, .450}
)

// normEps is lpips.normalize_tensor's eps.
const normEps = 1e-10

// Model is an LPIPS v0.1 network with its weights. It is safe for concurrent use (calls on
// the same backend run one after the other).
type Model struct {
	net    string
	layers []layer
	names  []string    // weight names, in the order they are graph inputs
	data   [][]float32 // weights by names' order
	dims   [][]int

	mu    sync.Mutex
	execs map[backends.Backend]*compiled
}

// compiled is the model on one backend: the executable (compiled once per input shape by
// GoMLX's cache) and the weights as tensors.
type compiled struct {
	mu      sync.Mutex // one Distances at a time per backend: bounds memory, keeps it simple
	exec    *Exec
	weights []any
}

// linName is the lpips package's name of linear layer k's 1×1 convolution weight.
func linName(k int) string { return fmt.Sprintf("lin%d.model.1.weight", k) }

// Load reads a backbone file and a linear-layers file for net ("alex", "vgg" or
// "squeeze"). backbonePath is torchvision's state dict (alexnet-owt-7be5be79.pth,
// vgg16-397923af.pth or squeezenet1_1-b8a52dc0.pth: features.N.weight/bias, Fire modules
// as features.N.{squeeze,expand1x1,expand3x3}.weight/bias; other keys, such as
// classifier.*, are ignored). linPath is the lpips package's weights/v0.1/<net>.pth with
// linK.model.1.weight of shape [1, C_K, 1, 1]. Both are read with checkpoint.Read: PyTorch
// files in the zip or the legacy (pre-1.6) format, or safetensors with the same names. A missing or mis-shaped
// tensor is an error naming the file and the tensor.
func Load(net, backbonePath, linPath string) (*Model, error) {
	ls, err := netLayers(net)
	if err != nil {
		return nil, err
	}
	m := &Model{net: net, layers: ls, execs: map[backends.Backend]*compiled{}}

	want := backboneShapes(ls)
	if err := m.take(backbonePath, want); err != nil {
		return nil, err
	}
	lin := map[string][]int{}
	for k, c := range tapChannels(ls) {
		lin[linName(k)] = []int{1, c, 1, 1}
	}
	if err := m.take(linPath, lin); err != nil {
		return nil, err
	}
	return m, nil
}

// take reads path and appends the wanted tensors (as float32) to m's weights, failing
// with the file and tensor names when one is missing, mis-shaped or neither float32 nor
// float64 (float16 files are read as float32 by checkpoint.Read).
func (m *Model) take(path string, want map[string][]int) error {
	ts, err := checkpoint.Read(path)
	if err != nil {
		return fmt.Errorf("lpips: %s: %w", m.net, err)
	}
	got := map[string]*tensors.Tensor{}
	wantShapes := map[string]shapes.Shape{}
	for name, d := range want {
		wantShapes[name] = shapes.Make(dtypes.Float32, d...)
		t, ok := ts[name]
		if !ok {
			continue
		}
		if t.DType() == dtypes.Float64 { // float64 weights are used in float32, as the network runs
			f64 := tensors.MustCopyFlatData[float64](t)
			f32 := make([]float32, len(f64))
			for i, v := range f64 {
				f32[i] = float32(v)
			}
			t = tensors.FromFlatDataAndDimensions(f32, t.Shape().Dimensions...)
		}
		got[name] = t // any other dtype is reported as mis-shaped
	}
	if err := checkpoint.CheckAgainst(got, wantShapes); err != nil {
		return fmt.Errorf("lpips: %s: %s: %w", m.net, path, err)
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		m.names = append(m.names, name)
		m.data = append(m.data, tensors.MustCopyFlatData[float32](got[name]))
		m.dims = append(m.dims, want[name])
	}
	return nil
}

// Net returns the backbone's name ("alex", "vgg" or "squeeze").
func (m *Model) Net() string { return m.net }

// Distances returns LPIPS(pred[i], ref[i]) for i < n. pred and ref are n images each, NCHW
// float32 in [-1, 1] with c = 1 or 3 channels (grey images are repeated to 3 channels).
// The network runs on backend in float32, in batches of at most 8 pairs; the graph is
// compiled once per image shape and batch size.
func (m *Model) Distances(backend backends.Backend, pred, ref []float32, n, c, h, w int) (out []float64, err error) {
	switch {
	case backend == nil:
		return nil, fmt.Errorf("lpips: no backend")
	case n < 0 || h <= 0 || w <= 0:
		return nil, fmt.Errorf("lpips: bad image batch n=%d h=%d w=%d", n, h, w)
	case c != 1 && c != 3:
		return nil, fmt.Errorf("lpips: images have %d channels; want 1 (grey) or 3 (RGB)", c)
	case len(pred) != n*c*h*w || len(ref) != n*c*h*w:
		return nil, fmt.Errorf("lpips: %d pred and %d ref values for %d images of %d×%d×%d (want %d each)",
			len(pred), len(ref), n, c, h, w, n*c*h*w)
	}
	if err := checkSize(m.net, m.layers, h, w); err != nil {
		return nil, err
	}
	if n == 0 {
		return []float64{}, nil
	}
	cm, err := m.compiledFor(backend)
	if err != nil {
		return nil, err
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	defer func() { // GoMLX reports backend failures by panicking
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("lpips: %s: %v", m.net, r)
		}
	}()
	b := min(n, maxBatch)
	img := c * h * w
	out = make([]float64, 0, n)
	for start := 0; start < n; start += b {
		k := min(b, n-start)
		p := make([]float32, b*img) // zero padding beyond k: those distances are dropped
		r := make([]float32, b*img)
		copy(p, pred[start*img:(start+k)*img])
		copy(r, ref[start*img:(start+k)*img])
		args := append([]any{
			tensors.FromFlatDataAndDimensions(p, b, c, h, w),
			tensors.FromFlatDataAndDimensions(r, b, c, h, w),
		}, cm.weights...)
		res, err := cm.exec.Exec(args...)
		if err != nil {
			return nil, fmt.Errorf("lpips: %s: %w", m.net, err)
		}
		d := tensors.MustCopyFlatData[float32](res[0])
		for _, t := range res {
			t.FinalizeAll()
		}
		for i := range k {
			out = append(out, float64(d[i]))
		}
		for _, a := range args[:2] {
			a.(*tensors.Tensor).FinalizeAll()
		}
	}
	return out, nil
}

// compiledFor returns (building on first use) the executable and weight tensors for backend.
func (m *Model) compiledFor(backend backends.Backend) (*compiled, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cm, ok := m.execs[backend]; ok {
		return cm, nil
	}
	exec, err := NewExec(backend, m.graph)
	if err != nil {
		return nil, fmt.Errorf("lpips: %s: %w", m.net, err)
	}
	cm := &compiled{exec: exec}
	for i, d := range m.data {
		cm.weights = append(cm.weights, tensors.FromFlatDataAndDimensions(d, m.dims[i]...))
	}
	m.execs[backend] = cm
	return cm, nil
}

// graph builds LPIPS for inputs pred [B,C,H,W], ref [B,C,H,W], then the weights in m.names'
// order; it returns the B distances.
func (m *Model) graph(inputs []*Node) *Node {
	pred, ref := inputs[0], inputs[1]
	wts := map[string]*Node{}
	for i, name := range m.names {
		wts[name] = inputs[2+i]
	}
	g := pred.Graph()
	b := pred.Shape().Dimensions[0]
	x := Concatenate([]*Node{pred, ref}, 0) // one pass through the backbone for both
	if x.Shape().Dimensions[1] == 1 {
		x = Concatenate([]*Node{x, x, x}, 1) // grey → RGB, as lpips users .repeat(1,3,1,1)
	}
	shift := Reshape(Const(g, scalingShift), 1, 3, 1, 1)
	scale := Reshape(Const(g, scalingScale), 1, 3, 1, 1)
	x = Div(Sub(x, shift), scale)

	convRelu := func(name string, x *Node, stride, pad int) *Node {
		y := Convolve(x, wts[name+".weight"]).ChannelsAxis(images.ChannelsFirst).Strides(stride).
			PaddingPerDim([][2]int{{pad, pad}, {pad, pad}}).Done()
		y = Add(y, Reshape(wts[name+".bias"], 1, -1, 1, 1))
		return Max(y, ZerosLike(y))
	}
	var total *Node
	kk := 0
	for _, l := range m.layers {
		switch l.kind {
		case convLayer:
			x = convRelu(l.name, x, l.stride, l.pad)
		case fireLayer:
			s := convRelu(l.name+".squeeze", x, 1, 0)
			x = Concatenate([]*Node{convRelu(l.name+".expand1x1", s, 1, 0), convRelu(l.name+".expand3x3", s, 1, 1)}, 1)
		case poolLayer:
			d := x.Shape().Dimensions
			// ceil_mode: pad the end so the last, partial window is kept; max-pool padding
			// never wins (and the inputs are ReLU outputs anyway).
			pads := [][2]int{{0, 0}, {0, 0}}
			for i, in := range d[2:] {
				out := poolOut(in, l.k, l.stride, l.ceil)
				pads[i][1] = max(0, (out-1)*l.stride+l.k-in)
			}
			x = MaxPool(x).ChannelsAxis(images.ChannelsFirst).Window(l.k).Strides(l.stride).PaddingPerDim(pads).Done()
		case tapLayer:
			// lpips.normalize_tensor, squared difference, NetLinLayer (1×1 conv, no bias),
			// spatial_average, summed over layers.
			f := Div(x, AddScalar(Sqrt(ReduceAndKeep(Square(x), ReduceSum, 1)), normEps))
			f0 := Slice(f, AxisRange(0, b))
			f1 := Slice(f, AxisRange(b, 2*b))
			diff := Square(Sub(f0, f1))
			lin := Reshape(wts[linName(kk)], 1, -1, 1, 1)
			res := ReduceMean(ReduceSum(Mul(diff, lin), 1), 1, 2)
			if total == nil {
				total = res
			} else {
				total = Add(total, res)
			}
			kk++
		}
	}
	return total
}
