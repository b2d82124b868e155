package mnistnet

import (
	"bytes"
	stdcontext "context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

var testData = sync.OnceValues(func() (*mnist.Set, error) { return mnist.LoadSplit("", "test") })

func testSet(t *testing.T) *mnist.Set {
	t.Helper()
	s, err := testData()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func backend(t *testing.T) backends.Backend {
	t.Helper()
	b, release, err := xla.Shared("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return b
}

// TestShippedAccuracy scores the committed models/mnistnet/model.safetensors on the whole
// MNIST test split and checks that it matches what train.json recorded.
func TestShippedAccuracy(t *testing.T) {
	net, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	test := testSet(t)
	start := time.Now()
	acc, err := net.Accuracy(backend(t), test.Images, test.Labels)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shipped net: test accuracy %.4f on %d images (%s)", acc, test.N, time.Since(start).Round(time.Millisecond))
	if acc < 0.99 {
		t.Errorf("test accuracy %.4f < 0.99", acc)
	}
	raw, err := os.ReadFile("../../../models/mnistnet/train.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec TrainResult
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("train.json: %v", err)
	}
	// Same weights, backend and batching as at the end of training; a few images of slack for
	// another CPU's rounding.
	if rec.TestImages != test.N || math.Abs(rec.TestAccuracy-acc)*float64(test.N) > 3.5 {
		t.Errorf("train.json records accuracy %v on %d images, measured %v on %d", rec.TestAccuracy, rec.TestImages, acc, test.N)
	}
	if rec.Params != NumParams() || rec.Params > 250000 {
		t.Errorf("train.json records %d parameters, the network has %d (limit 250000)", rec.Params, NumParams())
	}
	if info, err := os.Stat("../../../models/mnistnet/model.safetensors"); err != nil || info.Size() > 1<<20 {
		t.Errorf("model.safetensors: %v, size over 1 MiB?", err)
	}
}

// referenceImages returns n test images, every other one shifted by a few pixels (as
// imperfect reconstructions are), plus one image of uniform noise in [-1, 1].
func referenceImages(t *testing.T, n int) []float32 {
	test := testSet(t)
	const size = Size * Size
	out := make([]float32, 0, (n+1)*size)
	buf := make([]float32, size)
	for i := range n {
		if i%2 == 1 {
			shifted(buf, test.Image(i), i%5-2, (i/2)%5-2)
			out = append(out, buf...)
		} else {
			out = append(out, test.Image(i)...)
		}
	}
	rng := newRNG("test noise", 0, 0)
	for range size {
		out = append(out, float32(2*rng.Float64()-1))
	}
	return out
}

// TestAgainstPyTorch compares Run's features and Logits with the independent float64
// PyTorch forward of testdata/mnistnet/reference.py, for the shipped weights and for freshly
// initialised ones.
func TestAgainstPyTorch(t *testing.T) {
	script, err := filepath.Abs("../../../testdata/mnistnet/reference.py")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const n = 99
	imgs := referenceImages(t, n)
	imagesPath := filepath.Join(dir, "images.npy")
	if err := npy.Write(imagesPath, tensors.FromFlatDataAndDimensions(imgs, n+1, 1, Size, Size)); err != nil {
		t.Fatal(err)
	}
	freshPath := filepath.Join(dir, "fresh.safetensors")
	if err := checkpoint.WriteSafetensors(freshPath, InitWeights(7), nil); err != nil {
		t.Fatal(err)
	}
	shippedPath, err := filepath.Abs("../../../models/mnistnet/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, path string }{{"shipped", shippedPath}, {"fresh", freshPath}} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			cmd := exec.Command("/usr/bin/python3", script, out, c.path, imagesPath)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("running %s with /usr/bin/python3 failed (%v): %s\nit needs Debian's python3 with PyTorch "+
					"and NumPy: run ./test.sh (or apt-get install python3 python3-torch python3-numpy) — this test does not skip",
					script, err, stderr.String())
			}
			net, err := LoadFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			be := backend(t)
			features, classes, err := net.Run(be, imgs, n+1)
			if err != nil {
				t.Fatal(err)
			}
			logits, err := net.Logits(be, imgs, n+1)
			if err != nil {
				t.Fatal(err)
			}
			compare := func(what string, got [][]float64, file string) {
				t.Helper()
				ref, err := npy.Read(filepath.Join(out, file))
				if err != nil {
					t.Fatal(err)
				}
				want, err := tensors.CopyFlatData[float64](ref)
				if err != nil {
					t.Fatal(err)
				}
				cols := len(want) / (n + 1)
				maxErr, maxRel, scale := 0.0, 0.0, 0.0
				for i, row := range got {
					for j, v := range row {
						w := want[i*cols+j]
						d := math.Abs(v - w)
						maxErr = max(maxErr, d)
						maxRel = max(maxRel, d/max(1, math.Abs(w)))
						scale = max(scale, math.Abs(w))
					}
				}
				t.Logf("%s: max |Go − torch| = %.3g, relative to max(1, |torch|) %.3g (largest |value| %.3g)", what, maxErr, maxRel, scale)
				if maxRel > 1e-5 {
					t.Errorf("%s: max relative error %.3g > 1e-5", what, maxRel)
				}
			}
			compare("features", features, "features.npy")
			compare("logits", logits, "logits.npy")
			for i, row := range logits {
				best := 0
				for j, v := range row {
					if v > row[best] {
						best = j
					}
				}
				if classes[i] != best {
					t.Errorf("image %d: Run's class %d is not the argmax %d of the logits", i, classes[i], best)
				}
			}
		})
	}
}

// TestTrainDeterministic trains twice on a tiny recipe: the two files must be identical,
// the loss must fall, and a cancelled run must write nothing.
func TestTrainDeterministic(t *testing.T) {
	cfg := TrainConfig{Steps: 30, Batch: 32, LR: 2e-3, Seed: 3, Shift: 2, TestImages: RunBatch}
	dir := t.TempDir()
	var runs [2][]byte
	var losses [2][]float64
	for i := range runs {
		path := filepath.Join(dir, "m"+string(rune('a'+i))+".safetensors")
		res, err := Train(stdcontext.Background(), cfg, "", path, func(step int, loss float64) {
			losses[i] = append(losses[i], loss)
		})
		if err != nil {
			t.Fatal(err)
		}
		if runs[i], err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			t.Logf("30 steps: first-10 mean loss %.4f, last-10 %.4f, accuracy %.3f on %d test images, %.1f s training",
				mean(losses[0][:10]), mean(losses[0][20:]), res.TestAccuracy, res.TestImages, res.TrainSeconds)
		}
	}
	if !bytes.Equal(runs[0], runs[1]) {
		t.Error("two runs of the same recipe wrote different files")
	}
	if first, last := mean(losses[0][:10]), mean(losses[0][20:]); !(last < 0.8*first) {
		t.Errorf("loss did not fall: first 10 steps %.4f, last 10 %.4f", first, last)
	}

	// Cancelled after step 2: an error wrapping context.Canceled and no file.
	ctx, cancel := stdcontext.WithCancel(stdcontext.Background())
	defer cancel()
	path := filepath.Join(dir, "cancelled.safetensors")
	_, err := Train(ctx, cfg, "", path, func(step int, _ float64) {
		if step == 2 {
			cancel()
		}
	})
	if !errors.Is(err, stdcontext.Canceled) {
		t.Errorf("cancelled run: error %v, want context.Canceled", err)
	}
	if _, serr := os.Stat(path); !os.IsNotExist(serr) {
		t.Errorf("cancelled run left %s (stat: %v)", path, serr)
	}
}

// TestLoadFileErrors checks that bad checkpoints are refused with the file and tensor named.
func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, edit func(map[string]*tensors.Tensor)) string {
		ts := InitWeights(1)
		edit(ts)
		path := filepath.Join(dir, name)
		if err := checkpoint.WriteSafetensors(path, ts, nil); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cases := []struct {
		path string
		want []string
	}{
		{write("missing.safetensors", func(ts map[string]*tensors.Tensor) { delete(ts, "fc1.bias") }), []string{"fc1.bias", "missing"}},
		{write("misshaped.safetensors", func(ts map[string]*tensors.Tensor) {
			ts["conv2.weight"] = tensors.FromFlatDataAndDimensions(make([]float32, 32*16*5*5), 32, 16, 5, 5)
		}), []string{"conv2.weight", "mis-shaped"}},
		{write("float64.safetensors", func(ts map[string]*tensors.Tensor) {
			ts["fc2.bias"] = tensors.FromFlatDataAndDimensions(make([]float64, 10), 10)
		}), []string{"fc2.bias"}},
		{write("nan.safetensors", func(ts map[string]*tensors.Tensor) {
			ts["fc2.bias"] = tensors.FromFlatDataAndDimensions([]float32{float32(math.NaN()), 0, 0, 0, 0, 0, 0, 0, 0, 0}, 10)
		}), []string{"fc2.bias", "NaN"}},
		{filepath.Join(dir, "absent.safetensors"), nil},
	}
	for _, c := range cases {
		_, err := LoadFile(c.path)
		if err == nil {
			t.Errorf("%s: loaded without error", c.path)
			continue
		}
		for _, w := range append(c.want, c.path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", filepath.Base(c.path), err, w)
			}
		}
	}
	// Extra tensors are ignored.
	path := write("extra.safetensors", func(ts map[string]*tensors.Tensor) {
		ts["optimizer.step"] = tensors.FromFlatDataAndDimensions([]float32{1}, 1)
	})
	if _, err := LoadFile(path); err != nil {
		t.Errorf("extra tensor: %v", err)
	}
}

func TestRunShape(t *testing.T) {
	if !Accepts(1, 32, 32) || Accepts(3, 32, 32) || Accepts(1, 64, 64) || Accepts(1, 28, 28) {
		t.Error("Accepts should take 1×32×32 only")
	}
	net, err := FromWeights(InitWeights(1), "init")
	if err != nil {
		t.Fatal(err)
	}
	be := backend(t)
	if _, _, err := net.Run(be, make([]float32, 3*64*64), 1); !errors.Is(err, ErrShape) {
		t.Error("Run took a 3×64×64 image")
	}
	if _, _, err := net.Run(be, make([]float32, 1024), 2); err == nil {
		t.Error("Run took 1024 values as 2 images")
	}
	f, c, err := net.Run(be, nil, 0)
	if err != nil || len(f) != 0 || len(c) != 0 {
		t.Errorf("Run on no images: %v %v %v", f, c, err)
	}
}
