package inception

import (
	"bytes"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/xla"
)

const weightFile = "pt_inception-2015-12-05-6726825d.pth"

// legacyWeightFile is reference.py's state dict in torch.save's legacy format.
const legacyWeightFile = "pt_inception_legacy.pth"

// runReference runs testdata/inception/reference.py (PyTorch) into a temporary folder. It
// fails, never skips, when Python or PyTorch is missing.
func runReference(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script, err := filepath.Abs("../../../testdata/inception/reference.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("running %s with /usr/bin/python3 failed (%v): %s\nit needs Debian's python3 with PyTorch and NumPy: "+
			"run ./test.sh, which installs them — this test does not skip", script, err, stderr.String())
	}
	t.Logf("reference.py (%.1fs): %s", time.Since(start).Seconds(), strings.TrimSpace(stderr.String()))
	return dir
}

func readNpy[T float32 | float64](t *testing.T, path string) ([]T, []int) {
	t.Helper()
	x, err := npy.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tensors.CopyFlatData[T](x)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v, x.Shape().Dimensions
}

// TestAgainstPyTorch compares the pool3 features of a grey 32×32 and an RGB 40×48 image
// with the independent, hand-written PyTorch FID Inception of testdata/inception (random
// weights saved under pytorch-fid's key names, read here as the weight file itself), and
// checks that a batch of two gives each image the features it gets alone.
func TestAgainstPyTorch(t *testing.T) {
	dir := runReference(t)
	start := time.Now()
	net, err := Load(filepath.Join(dir, weightFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Load: %.1fs", time.Since(start).Seconds())
	checkLegacyWeightFile(t, dir, net)
	backend, release, err := xla.Shared("")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var first []float64
	var firstImg []float32
	var firstDims []int
	for i := range 2 {
		img, dims := readNpy[float32](t, filepath.Join(dir, fmt.Sprintf("img%d.npy", i)))
		want, _ := readNpy[float32](t, filepath.Join(dir, fmt.Sprintf("feat%d.npy", i)))
		start := time.Now()
		got, err := net.Features(backend, img, dims[0], dims[1], dims[2], dims[3])
		if err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(start)
		if len(got) != 1 || len(got[0]) != Dim {
			t.Fatalf("image %d: %d feature rows", i, len(got))
		}
		maxRef, maxErr := 0.0, 0.0
		for j, v := range got[0] {
			maxRef = math.Max(maxRef, math.Abs(float64(want[j])))
			maxErr = math.Max(maxErr, math.Abs(v-float64(want[j])))
		}
		t.Logf("image %d %v (%.1fs, compilation included): max |feature| %.4g, max error vs PyTorch %.3g (relative %.2g)",
			i, dims, elapsed.Seconds(), maxRef, maxErr, maxErr/maxRef)
		if maxErr/maxRef > 1e-4 {
			t.Errorf("image %d: max feature error %.3g relative to the largest feature %.4g, want ≤ 1e-4", i, maxErr, maxRef)
		}
		if i == 0 {
			first, firstImg, firstDims = got[0], img, dims
		}
	}
	// The same grey image twice in one batch: the batch axis must not mix images.
	two := append(append([]float32(nil), firstImg...), firstImg...)
	start = time.Now()
	got, err := net.Features(backend, two, 2, firstDims[1], firstDims[2], firstDims[3])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a batch of 2: %.1fs, compilation included", time.Since(start).Seconds())
	if len(got) != 2 {
		t.Fatalf("a batch of 2: %d feature rows", len(got))
	}
	for r := range 2 {
		d := 0.0
		for j, v := range got[r] {
			d = math.Max(d, math.Abs(v-first[j]))
		}
		if d > 1e-5 {
			t.Errorf("batch row %d differs from the image run alone by %.3g", r, d)
		}
	}
}

// checkLegacyWeightFile: pytorch-fid's published weight file is in torch.save's legacy
// (pre-1.6, non-zip) format. reference.py saves its state dict that way too; both files
// must hold the same tensors (fc.* and num_batches_tracked included), and Load must give
// the legacy one the parameters it gave the zip one, hence the same features.
func checkLegacyWeightFile(t *testing.T, dir string, net *Net) {
	t.Helper()
	start := time.Now()
	zipped, err := checkpoint.Read(filepath.Join(dir, weightFile))
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := checkpoint.Read(filepath.Join(dir, legacyWeightFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(legacy) != len(zipped) {
		t.Errorf("legacy file: %d tensors, zip file %d", len(legacy), len(zipped))
	}
	for name, want := range zipped {
		if got, ok := legacy[name]; !ok {
			t.Errorf("legacy file lacks %s", name)
		} else if !got.Equal(want) {
			t.Errorf("legacy file: %s differs from the zip file's", name)
		}
	}
	lnet, err := Load(filepath.Join(dir, legacyWeightFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(lnet.params) != len(net.params) {
		t.Fatalf("legacy file: %d parameters loaded, zip file %d", len(lnet.params), len(net.params))
	}
	for i, p := range net.params {
		if !lnet.params[i].Equal(p) {
			t.Errorf("legacy file: loaded parameter %d differs", i)
		}
	}
	t.Logf("legacy weight file: %d tensors equal to the zip file's, Load gives the same parameters (%.1fs)",
		len(zipped), time.Since(start).Seconds())
}

// TestResizeWeights checks the bilinear taps against hand values: identity at the same size,
// and PyTorch's half-pixel centres for ×2 up and down.
func TestResizeWeights(t *testing.T) {
	for i, tp := range resizeWeights(5, 5) {
		if tp.i0 != i || tp.l0 != 1 || tp.l1 != 0 {
			t.Errorf("5→5 tap %d = %+v, want identity", i, tp)
		}
	}
	// 2→4: x = (i + 0.5)/2 − 0.5 = −0.25 (→ 0), 0.25, 0.75, 1.25 (→ index 1, edge).
	want := []tap{{0, 1, 1, 0}, {0, 1, 0.75, 0.25}, {0, 1, 0.25, 0.75}, {1, 1, 0.75, 0.25}}
	for i, tp := range resizeWeights(2, 4) {
		if tp != want[i] {
			t.Errorf("2→4 tap %d = %+v, want %+v", i, tp, want[i])
		}
	}
	// 4→2: x = (i + 0.5)·2 − 0.5 = 0.5, 2.5: the mean of pixel pairs (no antialiasing).
	want = []tap{{0, 1, 0.5, 0.5}, {2, 3, 0.5, 0.5}}
	for i, tp := range resizeWeights(4, 2) {
		if tp != want[i] {
			t.Errorf("4→2 tap %d = %+v, want %+v", i, tp, want[i])
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.safetensors")
	ts := map[string]*tensors.Tensor{
		"Conv2d_1a_3x3.conv.weight":            tensors.FromFlatDataAndDimensions(make([]float32, 32*3*3*2), 32, 3, 3, 2),
		"Mixed_5b.branch1x1.bn.weight":         tensors.FromFlatDataAndDimensions(make([]float32, 64), 64),
		"fc.weight":                            tensors.FromFlatDataAndDimensions(make([]float32, 4), 2, 2), // ignored
		"Conv2d_1a_3x3.bn.num_batches_tracked": tensors.FromFlatDataAndDimensions([]int64{3}),               // ignored
		"head.weight":                          tensors.FromFlatDataAndDimensions(make([]float32, 4), 4),
	}
	if err := checkpoint.WriteSafetensors(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted a file with missing, mis-shaped and extra tensors")
	}
	msg := err.Error()
	for _, want := range []string{path, "missing:    Conv2d_1a_3x3.bn.running_var", "missing:    Mixed_7c.branch_pool.conv.weight",
		"mis-shaped: Conv2d_1a_3x3.conv.weight", "extra:      head.weight"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not mention %q:\n%s", want, msg)
		}
	}
	for _, unwanted := range []string{"fc.weight", "num_batches_tracked", "Mixed_5b.branch1x1.bn.weight"} {
		if strings.Contains(msg, unwanted) {
			t.Errorf("the error mentions %q, which is ignored or fine:\n%s", unwanted, msg)
		}
	}
	if _, err := Load(filepath.Join(dir, "absent.pth")); err == nil || !strings.Contains(err.Error(), "absent.pth") {
		t.Errorf("a missing file: error %v, want one naming it", err)
	}
}

func TestFeaturesArgumentErrors(t *testing.T) {
	net := &Net{}
	cases := []struct {
		img        []float32
		n, c, h, w int
		want       string
	}{
		{make([]float32, 2*4*4), 1, 2, 4, 4, "1 or 3 channels"},
		{make([]float32, 10), 1, 1, 4, 4, "10 values for 1 images"},
		{nil, 0, 3, 4, 4, "n ≥ 1"},
		{nanAt(16, 8), 2, 1, 2, 4, "image 1, value 0 is NaN"},
	}
	for _, c := range cases {
		_, err := net.Features(nil, c.img, c.n, c.c, c.h, c.w)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Features(n=%d, c=%d, %d×%d): error %v, want one containing %q", c.n, c.c, c.h, c.w, err, c.want)
		}
	}
}

func nanAt(n, i int) []float32 {
	v := make([]float32, n)
	v[i] = float32(math.NaN())
	return v
}
