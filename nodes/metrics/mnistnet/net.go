package mnistnet

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	mnistweights "github.com/dpsflow/dpsflow/models/mnistnet"
	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/core/tensors/images"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// FeatureDim is the length of the penultimate feature vector (fc1 after its ReLU).
const FeatureDim = 128

// NumClasses is the number of digits.
const NumClasses = 10

// Image geometry the network accepts: one channel, Size×Size.
const (
	Channels = 1
	Size     = 32
)

// convChannels are the output channels of conv1…conv3; each conv (3×3, padding 1) is
// followed by a ReLU and a 2×2 max-pool, so 32×32 becomes 4×4.
var convChannels = [...]int{16, 32, 64}

// flatDim is the length of the flattened last feature map: 64·4·4.
const flatDim = 64 * 4 * 4

// Shapes returns the checkpoint's tensors by name and shape (PyTorch layout: conv kernels
// [out, in, 3, 3], linear weights [out, in]).
func Shapes() map[string]shapes.Shape {
	out := map[string]shapes.Shape{}
	cin := Channels
	for i, c := range convChannels {
		out[fmt.Sprintf("conv%d.weight", i+1)] = shapes.Make(dtypes.Float32, c, cin, 3, 3)
		out[fmt.Sprintf("conv%d.bias", i+1)] = shapes.Make(dtypes.Float32, c)
		cin = c
	}
	out["fc1.weight"] = shapes.Make(dtypes.Float32, FeatureDim, flatDim)
	out["fc1.bias"] = shapes.Make(dtypes.Float32, FeatureDim)
	out["fc2.weight"] = shapes.Make(dtypes.Float32, NumClasses, FeatureDim)
	out["fc2.bias"] = shapes.Make(dtypes.Float32, NumClasses)
	return out
}

// NumParams is the number of weights (float32 values) of the network.
func NumParams() int {
	n := 0
	for _, s := range Shapes() {
		n += s.Size()
	}
	return n
}

// names returns the tensor names in a fixed order.
func names() []string {
	n := make([]string, 0, 10)
	for name := range Shapes() {
		n = append(n, name)
	}
	slices.Sort(n)
	return n
}

// Net is a loaded classifier: its weights by tensor name (see Shapes) and compiled
// executables, one per batch size.
type Net struct {
	Weights map[string]*tensors.Tensor
	source  string // where the weights came from, for error messages

	ctx   *context.Context
	mu    sync.Mutex // guards execs
	execs map[backends.Backend]*context.Exec
}

// Accepts reports whether the network takes images of c channels, h×w pixels (1×32×32).
func Accepts(c, h, w int) bool { return c == Channels && h == Size && w == Size }

// Load is the shipped network, models/mnistnet/model.safetensors embedded in the binary.
func Load() (*Net, error) {
	ts, _, err := checkpoint.ReadSafetensorsFrom(bytes.NewReader(mnistweights.Weights),
		int64(len(mnistweights.Weights)), "models/mnistnet/model.safetensors")
	if err != nil {
		return nil, fmt.Errorf("mnistnet: %w", err)
	}
	return fromWeights(ts, "models/mnistnet/model.safetensors (embedded)")
}

// LoadFile reads a checkpoint written by Train (or any safetensors / PyTorch file with the
// tensors of Shapes, float32).
func LoadFile(path string) (*Net, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("mnistnet: %w", err)
	}
	ts, err := checkpoint.Read(path)
	if err != nil {
		return nil, fmt.Errorf("mnistnet: %s: %w", path, err)
	}
	return fromWeights(ts, path)
}

// FromWeights builds a network from tensors named as in Shapes; source names them in errors.
func FromWeights(ts map[string]*tensors.Tensor, source string) (*Net, error) {
	return fromWeights(ts, source)
}

func fromWeights(ts map[string]*tensors.Tensor, source string) (*Net, error) {
	want := Shapes()
	// Only the tensors the network uses are checked: extra ones (e.g. optimizer state a
	// user kept) are ignored, missing or mis-shaped ones are errors naming them.
	used := map[string]*tensors.Tensor{}
	for name := range want {
		if t, ok := ts[name]; ok {
			used[name] = t
		}
	}
	if err := checkpoint.CheckAgainst(used, want); err != nil {
		return nil, fmt.Errorf("mnistnet: %s: %w", source, err)
	}
	for _, name := range names() {
		v, err := tensors.CopyFlatData[float32](used[name])
		if err != nil {
			return nil, fmt.Errorf("mnistnet: %s: tensor %s: %w", source, name, err)
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("mnistnet: %s: tensor %s holds %g", source, name, x)
			}
		}
	}
	net := &Net{Weights: used, source: source, ctx: context.New(), execs: map[backends.Backend]*context.Exec{}}
	for _, name := range names() {
		scope, vname, _ := strings.Cut(name, ".")
		net.ctx.In(scope).VariableWithValue(vname, used[name]).SetTrainable(false)
	}
	net.ctx = net.ctx.Reuse()
	return net, nil
}

// forward builds the network on x [B, 1, 32, 32] and returns the features [B, 128] and the
// logits [B, 10]. ctx holds the weights under scopes conv1…conv3, fc1, fc2 (names
// "weight", "bias"); it is shared by training and inference.
func forward(ctx *context.Context, x *graph.Node) (features, logits *graph.Node) {
	g := x.Graph()
	param := func(scope, name string) *graph.Node {
		v := ctx.GetVariableByScopeAndName(context.RootScope+scope, name)
		if v == nil {
			panic(fmt.Errorf("mnistnet: no variable %s.%s", scope, name))
		}
		return v.ValueGraph(g)
	}
	for i, c := range convChannels {
		scope := fmt.Sprintf("conv%d", i+1)
		// Channels-first kernels are [out, in, 3, 3], PyTorch's layout; like PyTorch's
		// conv2d, Convolve is a cross-correlation.
		x = graph.Convolve(x, param(scope, "weight")).
			ChannelsAxis(images.ChannelsFirst).PaddingPerDim([][2]int{{1, 1}, {1, 1}}).Done()
		x = graph.Add(x, graph.Reshape(param(scope, "bias"), 1, c, 1, 1))
		x = graph.Max(x, graph.ZerosLike(x))
		x = maxPool2(x)
	}
	b := x.Shape().Dimensions[0]
	x = graph.Reshape(x, b, flatDim) // PyTorch's flatten of NCHW: index c·16 + h·4 + w
	h := dense(x, param("fc1", "weight"), param("fc1", "bias"))
	features = graph.Max(h, graph.ZerosLike(h))
	logits = dense(features, param("fc2", "weight"), param("fc2", "bias"))
	return features, logits
}

// dense is x·Wᵀ + b with W [out, in] as PyTorch's Linear stores it.
func dense(x, w, b *graph.Node) *graph.Node {
	return graph.Add(graph.Einsum("bi,oi->bo", x, w), graph.Reshape(b, 1, b.Shape().Dimensions[0]))
}

// maxPool2 is a 2×2 max-pool with stride 2 of NCHW x, written as a reshape and a reduce so
// that its gradient is ReduceMax's on every backend.
func maxPool2(x *graph.Node) *graph.Node {
	d := x.Shape().Dimensions
	x = graph.Reshape(x, d[0], d[1], d[2]/2, 2, d[3]/2, 2)
	return graph.ReduceMax(x, 3, 5)
}

// ErrShape is wrapped by the errors of Run and Logits for images of the wrong size.
var ErrShape = errors.New("mnistnet: wrong input shape")

// RunBatch is how many images Run sends through the network at once.
const RunBatch = 250

// Run gives the penultimate features [n][FeatureDim] and the predicted digit of n images,
// NCHW [n, 1, 32, 32] float32 in [-1, 1] (the layout of nodes/mnist). The images go through
// in batches of min(n, RunBatch), the last one padded, so one executable is compiled per
// backend and batch size. Safe for concurrent use.
func (net *Net) Run(backend backends.Backend, imgs []float32, n int) (features [][]float64, classes []int, err error) {
	f, l, err := net.run(backend, imgs, n)
	if err != nil {
		return nil, nil, err
	}
	features = make([][]float64, n)
	classes = make([]int, n)
	for i := range n {
		features[i] = make([]float64, FeatureDim)
		for j, v := range f[i*FeatureDim : (i+1)*FeatureDim] {
			features[i][j] = float64(v)
		}
		classes[i] = argmax(l[i*NumClasses : (i+1)*NumClasses])
	}
	return features, classes, nil
}

// Logits returns the class scores [n][10] (before the softmax) of n images as Run takes them.
func (net *Net) Logits(backend backends.Backend, imgs []float32, n int) ([][]float64, error) {
	_, logits, err := net.FeaturesAndLogits(backend, imgs, n)
	return logits, err
}

// FeaturesAndLogits returns Run's features and Logits' class scores from one pass.
func (net *Net) FeaturesAndLogits(backend backends.Backend, imgs []float32, n int) (features, logits [][]float64, err error) {
	f, l, err := net.run(backend, imgs, n)
	if err != nil {
		return nil, nil, err
	}
	rows := func(flat []float32, d int) [][]float64 {
		out := make([][]float64, n)
		for i := range n {
			out[i] = make([]float64, d)
			for j, v := range flat[i*d : (i+1)*d] {
				out[i][j] = float64(v)
			}
		}
		return out
	}
	return rows(f, FeatureDim), rows(l, NumClasses), nil
}

// run returns the features [n·FeatureDim] and logits [n·NumClasses], flattened.
func (net *Net) run(backend backends.Backend, imgs []float32, n int) (features, logits []float32, err error) {
	const size = Channels * Size * Size
	if n < 0 || len(imgs) != n*size {
		return nil, nil, fmt.Errorf("%w: %d values for %d images (want %d: n×1×32×32)", ErrShape, len(imgs), n, n*size)
	}
	if n == 0 {
		return nil, nil, nil
	}
	exec, err := net.exec(backend)
	if err != nil {
		return nil, nil, err
	}
	batch := min(n, RunBatch)
	features = make([]float32, 0, n*FeatureDim)
	logits = make([]float32, 0, n*NumClasses)
	buf := make([]float32, batch*size)
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		clear(buf) // the padding of the last batch; its outputs are dropped
		copy(buf, imgs[lo*size:hi*size])
		out, err := exec.Exec(tensors.FromFlatDataAndDimensions(buf, batch, Channels, Size, Size))
		if err != nil {
			return nil, nil, fmt.Errorf("mnistnet: %s: %w", net.source, err)
		}
		f, err1 := tensors.CopyFlatData[float32](out[0])
		l, err2 := tensors.CopyFlatData[float32](out[1])
		for _, t := range out {
			t.FinalizeAll()
		}
		if err := errors.Join(err1, err2); err != nil {
			return nil, nil, fmt.Errorf("mnistnet: %w", err)
		}
		features = append(features, f[:(hi-lo)*FeatureDim]...)
		logits = append(logits, l[:(hi-lo)*NumClasses]...)
	}
	return features, logits, nil
}

// exec returns the inference executable on backend (GoMLX compiles it once per input shape).
func (net *Net) exec(backend backends.Backend) (*context.Exec, error) {
	net.mu.Lock()
	defer net.mu.Unlock()
	if e := net.execs[backend]; e != nil {
		return e, nil
	}
	e, err := context.NewExec(backend, net.ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
		f, l := forward(ctx, x)
		return []*graph.Node{f, l}
	})
	if err != nil {
		return nil, fmt.Errorf("mnistnet: %s: %w", net.source, err)
	}
	net.execs[backend] = e
	return e, nil
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
