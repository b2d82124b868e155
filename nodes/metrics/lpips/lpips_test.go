package lpips

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// refMeta is testdata/lpips/reference.py's meta.json.
type refMeta struct {
	Cases map[string]struct {
		Shape []int    `json:"shape"`
		Pred  string   `json:"pred"`
		Ref   string   `json:"ref"`
		Nets  []string `json:"nets"`
	} `json:"cases"`
	Nets map[string]struct {
		Backbone  string `json:"backbone"`
		Lin       string `json:"lin"`
		Chns      []int  `json:"chns"`
		MinSize   int    `json:"min_size"`
		Distances map[string]struct {
			F32 []float64 `json:"f32"`
			F64 []float64 `json:"f64"`
		} `json:"distances"`
	} `json:"nets"`
	LegacyV1 struct {
		File    string `json:"file"`
		Tensors map[string]struct {
			Shape  []int     `json:"shape"`
			Values []float64 `json:"values"`
		} `json:"tensors"`
	} `json:"legacy_v1"`
}

// relTol is the agreement with PyTorch, relative.
const relTol = 1e-5

var reference = struct {
	once sync.Once
	dir  string
	meta refMeta
	err  error
}{}

// pyReference runs testdata/lpips/reference.py once per test binary and returns its folder
// and meta.json. It fails (never skips) when Python or PyTorch is missing.
func pyReference(t *testing.T) (string, *refMeta) {
	t.Helper()
	reference.once.Do(func() {
		dir, err := os.MkdirTemp("", "lpips-ref-")
		if err != nil {
			reference.err = err
			return
		}
		reference.dir = dir
		script, err := filepath.Abs("../../../testdata/lpips/reference.py")
		if err != nil {
			reference.err = err
			return
		}
		cmd := exec.Command("/usr/bin/python3", script, dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			reference.err = &refError{err: err, stderr: stderr.String(), script: script}
			return
		}
		raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err == nil {
			err = json.Unmarshal(raw, &reference.meta)
		}
		reference.err = err
	})
	if reference.err != nil {
		t.Fatal(reference.err)
	}
	return reference.dir, &reference.meta
}

type refError struct {
	err            error
	stderr, script string
}

func (e *refError) Error() string {
	return "running " + e.script + " with /usr/bin/python3 failed (" + e.err.Error() + "): " + e.stderr +
		"\nit needs Debian's python3 with PyTorch and NumPy: run ./test.sh, which installs them " +
		"(apt-get install python3 python3-torch python3-numpy) — this test does not skip"
}

func TestMain(m *testing.M) {
	code := m.Run()
	if reference.dir != "" {
		os.RemoveAll(reference.dir)
	}
	os.Exit(code)
}

func backend(t *testing.T) backends.Backend {
	t.Helper()
	be, release, err := xla.Shared("embedded")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return be
}

func readImages(t *testing.T, dir, name string) []float32 {
	t.Helper()
	x, err := npy.Read(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](x)
}

var (
	models   = map[string]*Model{}
	modelsMu sync.Mutex
)

// model loads net's reference files once per test binary.
func model(t *testing.T, net string) *Model {
	t.Helper()
	dir, meta := pyReference(t)
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m, ok := models[net]; ok {
		return m
	}
	e := meta.Nets[net]
	m, err := Load(net, filepath.Join(dir, e.Backbone), filepath.Join(dir, e.Lin))
	if err != nil {
		t.Fatal(err)
	}
	if m.Net() != net {
		t.Fatalf("Net() = %q, want %q", m.Net(), net)
	}
	models[net] = m
	return m
}

// TestAgainstPyTorch is the acceptance check: Load reads the random-weight files in
// torchvision's and lpips' layouts (zip and legacy torch.save, with extra classifier.*
// keys), and Distances agrees with the independent PyTorch LPIPS to 1e-5 relative, for
// every net on grey 32×32, RGB 64×64 and RGB 50×42 pairs.
func TestAgainstPyTorch(t *testing.T) {
	dir, meta := pyReference(t)
	be := backend(t)
	for _, net := range Nets {
		t.Run(net, func(t *testing.T) {
			m := model(t, net)
			var worst64, worst32 float64
			if got := tapChannels(m.layers); !slices.Equal(got, meta.Nets[net].Chns) {
				t.Errorf("compared channels %v, lpips' chns %v", got, meta.Nets[net].Chns)
			}
			for name, c := range meta.Cases {
				if !slices.Contains(c.Nets, net) {
					continue
				}
				pred, ref := readImages(t, dir, c.Pred), readImages(t, dir, c.Ref)
				s := c.Shape
				got, err := m.Distances(be, pred, ref, s[0], s[1], s[2], s[3])
				if err != nil {
					t.Fatal(err)
				}
				want := meta.Nets[net].Distances[name]
				if len(got) != len(want.F64) {
					t.Fatalf("%s: %d distances, want %d", name, len(got), len(want.F64))
				}
				for i := range got {
					e64 := math.Abs(got[i]-want.F64[i]) / math.Abs(want.F64[i])
					e32 := math.Abs(got[i]-want.F32[i]) / math.Abs(want.F32[i])
					worst64, worst32 = max(worst64, e64), max(worst32, e32)
					if !(e64 <= relTol) {
						t.Errorf("%s pair %d: LPIPS %.9g, PyTorch float64 %.9g (relative error %.2g > %g)",
							name, i, got[i], want.F64[i], e64, relTol)
					}
				}
			}
			t.Logf("%s: max relative error %.2g vs PyTorch float64, %.2g vs PyTorch float32", net, worst64, worst32)
		})
	}
}

// TestMinSize: Distances refuses exactly the image sizes PyTorch cannot run the net on.
func TestMinSize(t *testing.T) {
	_, meta := pyReference(t)
	for _, net := range Nets {
		ls, _ := netLayers(net)
		minSize := meta.Nets[net].MinSize
		if err := checkSize(net, ls, minSize, minSize); err != nil {
			t.Errorf("%s: %d×%d refused, PyTorch runs it: %v", net, minSize, minSize, err)
		}
		if err := checkSize(net, ls, minSize-1, minSize-1); err == nil {
			t.Errorf("%s: %d×%d accepted, PyTorch fails on it", net, minSize-1, minSize-1)
		}
		if err := checkSize(net, ls, minSize-1, 64); err == nil {
			t.Errorf("%s: %d×64 accepted, PyTorch fails on a %d-pixel side", net, minSize-1, minSize-1)
		}
	}
}

// TestIdentitySymmetryBatching: LPIPS(x, x) = 0, LPIPS(x, y) = LPIPS(y, x), and more pairs
// than one batch (maxBatch) give each pair's own distance.
func TestIdentitySymmetryBatching(t *testing.T) {
	dir, meta := pyReference(t)
	be := backend(t)
	c := meta.Cases["grey32"]
	pred, ref := readImages(t, dir, c.Pred), readImages(t, dir, c.Ref)
	n, img := c.Shape[0], c.Shape[1]*c.Shape[2]*c.Shape[3]
	for _, net := range []string{"alex", "squeeze"} {
		m := model(t, net)
		same, err := m.Distances(be, pred, pred, n, 1, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range same {
			if d != 0 {
				t.Errorf("%s: LPIPS(x, x) = %g for pair %d, want 0", net, d, i)
			}
		}
		fwd, err := m.Distances(be, pred, ref, n, 1, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		bwd, err := m.Distances(be, ref, pred, n, 1, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		for i := range fwd {
			if math.Abs(fwd[i]-bwd[i]) > 1e-6*fwd[i] {
				t.Errorf("%s: LPIPS(x, y) = %.9g but LPIPS(y, x) = %.9g", net, fwd[i], bwd[i])
			}
		}
		// maxBatch+3 pairs cycling through the reference pairs: a full batch and a padded one.
		k := maxBatch + 3
		var p, r []float32
		for i := range k {
			j := i % n
			p = append(p, pred[j*img:(j+1)*img]...)
			r = append(r, ref[j*img:(j+1)*img]...)
		}
		many, err := m.Distances(be, p, r, k, 1, 32, 32)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range many {
			if w := fwd[i%n]; math.Abs(d-w) > 1e-6*w {
				t.Errorf("%s: pair %d of %d: %.9g, alone %.9g", net, i, k, d, w)
			}
		}
	}
}

// TestLoadErrors: a missing or mis-shaped tensor (in either file) is an error naming the
// file and the tensor.
func TestLoadErrors(t *testing.T) {
	dir, meta := pyReference(t)
	e := meta.Nets["squeeze"]
	backbone, lin := filepath.Join(dir, e.Backbone), filepath.Join(dir, e.Lin)
	bb, err := checkpoint.Read(backbone)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := checkpoint.Read(lin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name string, ts map[string]*tensors.Tensor) string {
		p := filepath.Join(tmp, name)
		if err := checkpoint.WriteSafetensors(p, ts, nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	without := func(ts map[string]*tensors.Tensor, drop string) map[string]*tensors.Tensor {
		out := map[string]*tensors.Tensor{}
		for k, v := range ts {
			if k != drop {
				out[k] = v
			}
		}
		return out
	}
	missingBB := write("missing.safetensors", without(bb, "features.7.expand3x3.weight"))
	badBB := without(bb, "")
	badBB["features.0.bias"] = tensors.FromFlatDataAndDimensions(make([]float32, 63), 63)
	misshapedBB := write("misshaped.safetensors", badBB)
	missingLin := write("missing_lin.safetensors", without(ln, "lin6.model.1.weight"))
	badLin := without(ln, "")
	badLin["lin2.model.1.weight"] = tensors.FromFlatDataAndDimensions(make([]float32, 255), 1, 255, 1, 1)
	misshapedLin := write("misshaped_lin.safetensors", badLin)
	intLin := without(ln, "")
	intLin["lin0.model.1.weight"] = tensors.FromFlatDataAndDimensions(make([]int32, 64), 1, 64, 1, 1)
	intLinPath := write("int_lin.safetensors", intLin)

	for _, c := range []struct {
		net, backbone, lin string
		want               []string
	}{
		{"squeeze", missingBB, lin, []string{missingBB, "features.7.expand3x3.weight", "missing"}},
		{"squeeze", misshapedBB, lin, []string{misshapedBB, "features.0.bias", "mis-shaped"}},
		{"squeeze", backbone, missingLin, []string{missingLin, "lin6.model.1.weight", "missing"}},
		{"squeeze", backbone, misshapedLin, []string{misshapedLin, "lin2.model.1.weight", "mis-shaped"}},
		{"squeeze", backbone, intLinPath, []string{intLinPath, "lin0.model.1.weight", "mis-shaped", "Int32"}},
		// alex's files lack squeeze's tensors: the first missing one is named.
		{"squeeze", filepath.Join(dir, meta.Nets["alex"].Backbone), lin, []string{"features.3.squeeze.weight"}},
		{"alex", backbone, lin, []string{backbone, "features.0.weight", "mis-shaped"}},
		// legacy files: vgg's backbone and alex's linear layers for squeeze.
		{"squeeze", filepath.Join(dir, meta.Nets["vgg"].Backbone), lin, []string{"vgg_backbone.pth", "features.12.expand3x3.bias", "missing"}},
		{"squeeze", backbone, filepath.Join(dir, meta.Nets["alex"].Lin), []string{"alex_lin.pth", "lin5.model.1.weight", "lin1.model.1.weight", "mis-shaped"}},
		{"squeeze", filepath.Join(tmp, "nope.pth"), lin, []string{"nope.pth"}},
		{"resnet", backbone, lin, []string{"unknown net", "resnet"}},
	} {
		_, err := Load(c.net, c.backbone, c.lin)
		if err == nil {
			t.Errorf("Load(%s, %s, %s) succeeded", c.net, c.backbone, c.lin)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Load(%s, %s, %s): error %q does not mention %q", c.net, filepath.Base(c.backbone),
					filepath.Base(c.lin), err, w)
			}
		}
	}
}

func TestDistancesErrors(t *testing.T) {
	m := model(t, "alex")
	be := backend(t)
	img := make([]float32, 3*32*32)
	for _, c := range []struct {
		pred, ref     []float32
		n, c, h, w    int
		want          string
		backendIsNull bool
	}{
		{img, img[:10], 1, 3, 32, 32, "want 3072 each", false},
		{img, img, 2, 3, 32, 32, "want 6144 each", false},
		{img, img, 1, 2, 32, 48, "2 channels", false},
		{img[:3*16*16], img[:3*16*16], 1, 3, 16, 16, "too small", false},
		{img, img, -1, 3, 32, 32, "bad image batch", false},
		{img, img, 1, 3, 32, 32, "no backend", true},
	} {
		var b backends.Backend = be
		if c.backendIsNull {
			b = nil
		}
		_, err := m.Distances(b, c.pred, c.ref, c.n, c.c, c.h, c.w)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Distances(n=%d c=%d %d×%d): error %v, want one saying %q", c.n, c.c, c.h, c.w, err, c.want)
		}
	}
	if d, err := m.Distances(be, nil, nil, 0, 3, 32, 32); err != nil || len(d) != 0 {
		t.Errorf("no images: %v, %v", d, err)
	}
}

// TestLegacyV1 reads a state dict in PyTorch 0.3's legacy layout (_rebuild_tensor, a
// transposed view, float64 and float16 storages) and compares it with the values PyTorch
// itself read back.
func TestLegacyV1(t *testing.T) {
	dir, meta := pyReference(t)
	ts, err := checkpoint.Read(filepath.Join(dir, meta.LegacyV1.File))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != len(meta.LegacyV1.Tensors) {
		t.Errorf("%d tensors, want %d", len(ts), len(meta.LegacyV1.Tensors))
	}
	for name, want := range meta.LegacyV1.Tensors {
		got, ok := ts[name]
		if !ok {
			t.Errorf("tensor %s missing", name)
			continue
		}
		if !slices.Equal(got.Shape().Dimensions, want.Shape) {
			t.Errorf("%s: shape %v, want %v", name, got.Shape().Dimensions, want.Shape)
			continue
		}
		var vals []float64
		switch got.DType() {
		case dtypes.Float32:
			for _, v := range tensors.MustCopyFlatData[float32](got) {
				vals = append(vals, float64(v))
			}
		case dtypes.Float64:
			vals = tensors.MustCopyFlatData[float64](got)
		default:
			t.Errorf("%s: dtype %s", name, got.DType())
			continue
		}
		for i, v := range vals {
			if v != want.Values[i] {
				t.Errorf("%s[%d] = %v, want %v", name, i, v, want.Values[i])
			}
		}
	}
	if ts["b.bias"] != nil && ts["b.bias"].DType() != dtypes.Float64 {
		t.Errorf("b.bias (a DoubleStorage) read as %s", ts["b.bias"].DType())
	}
}

// TestFloat64Weights: float64 weights (here a safetensors copy of alex's linear layers)
// are used in float32 and give the same distances.
func TestFloat64Weights(t *testing.T) {
	dir, meta := pyReference(t)
	e := meta.Nets["alex"]
	ln, err := checkpoint.Read(filepath.Join(dir, e.Lin))
	if err != nil {
		t.Fatal(err)
	}
	f64 := map[string]*tensors.Tensor{}
	for name, v := range ln {
		var d []float64
		for _, x := range tensors.MustCopyFlatData[float32](v) {
			d = append(d, float64(x))
		}
		f64[name] = tensors.FromFlatDataAndDimensions(d, v.Shape().Dimensions...)
	}
	p := filepath.Join(t.TempDir(), "lin64.safetensors")
	if err := checkpoint.WriteSafetensors(p, f64, nil); err != nil {
		t.Fatal(err)
	}
	m, err := Load("alex", filepath.Join(dir, e.Backbone), p)
	if err != nil {
		t.Fatal(err)
	}
	c := meta.Cases["grey32"]
	got, err := m.Distances(backend(t), readImages(t, dir, c.Pred), readImages(t, dir, c.Ref), c.Shape[0], 1, 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range e.Distances["grey32"].F64 {
		if math.Abs(got[i]-w) > relTol*w {
			t.Errorf("pair %d: %.9g, PyTorch %.9g", i, got[i], w)
		}
	}
}
