package adm

import (
	"context"
	"math"
	"testing"

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

// An ADM prior drives the DPS sampler: the weights come from the context as graph inputs,
// and with a learn_sigma model the default variance is the learned range.
func TestADMPriorRunsInTheSampler(t *testing.T) {
	m, err := New(tinyConfig(true, false, true))
	if err != nil {
		t.Fatal(err)
	}
	ctx := mlctx.New()
	nonZeroInit(m, ctx)
	op, err := operator.NewAvgPoolSR(2)
	if err != nil {
		t.Fatal(err)
	}
	nm, _ := noise.NewGaussian(0.05)
	y := tensors.FromShape(shapes.Make(dtypes.Float32, 1, 2, 4, 4))
	be := backend(t) // the context's weights stay on the first backend that uses them
	run := func(v sampler.VarianceType) []float32 {
		s, err := sampler.New(be, m.Prior(ctx), schedule.Default(), op, nm,
			sampler.Config{Steps: 5, Variance: v, Guidance: guidance.Config{Method: guidance.PS, Scale: 1}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(context.Background(), y, shapes.Make(dtypes.Float32, 1, 2, 8, 8), 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		x := tensors.MustCopyFlatData[float32](res.X)
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatal("non-finite sample")
			}
		}
		return x
	}
	def, learned, small := run(""), run(sampler.LearnedRange), run(sampler.FixedSmall)
	sameAsLearned, sameAsSmall := true, true
	for i := range def {
		sameAsLearned = sameAsLearned && def[i] == learned[i]
		sameAsSmall = sameAsSmall && def[i] == small[i]
	}
	if !sameAsLearned || sameAsSmall {
		t.Fatalf("default variance: same as learned_range %v, same as fixed_small %v; want learned_range", sameAsLearned, sameAsSmall)
	}
}
