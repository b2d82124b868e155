package adm

import (
	"context"
	"testing"

	"github.com/dpsflow/dpsflow/internal/procstat"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// BenchmarkDPSStep times one DPS step (UNet forward, Tweedie, ×4 super-resolution, the
// gradient back through the UNet, the update) with random weights, batch 1, float32:
// the reference FFHQ config at 256² and the small MNIST config at 32². Run one at a time
// for a meaningful peak RSS: go test ./nodes/prior/adm -run XXX -bench 'DPSStep/mnist'.
func BenchmarkDPSStep(b *testing.B) {
	for _, c := range []struct {
		name  string
		cfg   Config
		batch int
	}{{"mnist-32/batch1", SmallMNISTConfig(), 1}, {"mnist-32/batch8", SmallMNISTConfig(), 8}, {"ffhq-256/batch1", FFHQConfig(), 1}} {
		b.Run(c.name, func(b *testing.B) {
			m, err := New(c.cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := mlctx.New()
			m.Init(ctx, 1)
			op, err := operator.New("super_resolution", c.cfg.ImageSize, c.cfg.ImageSize, nil, 1)
			if err != nil {
				b.Fatal(err)
			}
			nm, _ := noise.NewGaussian(0.05)
			const steps = 2
			s, err := sampler.New(backend(b), m.Prior(ctx), schedule.Default(), op, nm,
				sampler.Config{Steps: steps, Guidance: guidance.Config{Method: guidance.PS, Scale: 1}})
			if err != nil {
				b.Fatal(err)
			}
			xShape := shapes.Make(dtypes.Float32, c.batch, c.cfg.InChannels, c.cfg.ImageSize, c.cfg.ImageSize)
			yShape, _ := op.MeasurementShape(xShape)
			y := tensors.FromShape(yShape)
			if _, err := s.Run(context.Background(), y, xShape, 1, nil); err != nil { // compile
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := s.Run(context.Background(), y, xShape, 1, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N*steps), "ms/step")
			b.ReportMetric(procstat.PeakRSSMiB(), "MiB-peak-rss")
			b.ReportMetric(float64(m.NumParameters())/1e6, "Mparams")
		})
	}
}
