package adm

import (
	"context"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// The shipped MNIST prior (models/mnist) solves box inpainting and ×4 super-resolution of
// held-out test digits better than unconditional (vanilla) sampling and than the plain
// measurement (A⁺y: the observed pixels with a grey hole, or the pseudo-inverse
// upsampling), in PSNR over 8 digits, σ = 0.05, 100 DDPM steps. The reference scale (0.3–1
// at 256² RGB) is too timid for 32×32 digits: at scale 0.5, 1, 2, 4 super-resolution gave
// 13.9, 16.8, 19.4, 22.0 dB on an early checkpoint of the model; 4 is used.
func TestShippedMNISTPriorSolvesInverseProblems(t *testing.T) {
	cfg, err := LoadConfig("../../../models/mnist/model_config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := SmallMNISTConfig(); cfg.ModelPath == "" || func() bool { cfg.ModelPath = ""; return cfg != want }() {
		t.Fatalf("models/mnist/model_config.yaml is not SmallMNISTConfig (what dpsflow train trains): %+v", cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	weights, err := checkpoint.Read("../../../models/mnist/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	if err := m.Load(ctx, weights); err != nil {
		t.Fatal(err)
	}
	test, err := mnist.LoadSplit("", "test")
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	first, _ := test.Split(n)
	truth := first.Tensor()
	be := backend(t)
	nm, _ := noise.NewGaussian(0.05)
	for _, c := range []struct {
		task  string
		scale float64
	}{{"inpainting", 4}, {"super_resolution", 4}} {
		op, err := operator.New(c.task, 32, 32, nil, 3)
		if err != nil {
			t.Fatal(err)
		}
		clean := graph.MustNewExec(be, op.Apply).MustExec1(truth)
		y, err := nm.Measure(clean, 5)
		if err != nil {
			t.Fatal(err)
		}
		baseline := graph.MustNewExec(be, func(y *graph.Node) *graph.Node {
			zero := graph.Zeros(y.Graph(), truth.Shape())
			return op.(operator.Projector).Project(zero, y)
		}).MustExec1(y)
		psnr := map[string]float64{"measurement": meanPSNR(t, baseline, truth)}
		for _, method := range []guidance.Method{guidance.Vanilla, guidance.PS} {
			s, err := sampler.New(be, m.Prior(ctx), schedule.Default(), op, nm,
				sampler.Config{Steps: 100, Guidance: guidance.Config{Method: method, Scale: c.scale}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Run(context.Background(), y, shapes.Make(dtypes.Float32, n, 1, 32, 32), 7, nil)
			if err != nil {
				t.Fatal(err)
			}
			psnr[string(method)] = meanPSNR(t, res.X, truth)
		}
		t.Logf("%-16s PSNR: DPS %.2f dB, vanilla %.2f dB, measurement %.2f dB", c.task, psnr["ps"], psnr["vanilla"], psnr["measurement"])
		if !(psnr["ps"] > psnr["vanilla"] && psnr["ps"] > psnr["measurement"]) {
			t.Errorf("%s: DPS %.2f dB does not beat vanilla %.2f dB and the measurement %.2f dB", c.task, psnr["ps"], psnr["vanilla"], psnr["measurement"])
		}
	}
}

// meanPSNR is the mean over the batch of metrics.PSNR (images in [-1, 1], range 2), the
// estimate clipped to that range first.
func meanPSNR(t *testing.T, est, truth *tensors.Tensor) float64 {
	t.Helper()
	e, g := tensors.MustCopyFlatData[float32](est), tensors.MustCopyFlatData[float32](truth)
	n := truth.Shape().Dimensions[0]
	per := len(g) / n
	for j, v := range e {
		e[j] = max(-1, min(1, v))
	}
	var sum float64
	for i := range n {
		sum += metrics.PSNR(e[i*per:(i+1)*per], g[i*per:(i+1)*per], 2)
	}
	return sum / float64(n)
}
