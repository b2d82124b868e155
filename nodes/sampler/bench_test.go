package sampler_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/tweedie"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:staticcheck
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// imageMixture is a two-component Gaussian mixture over [3, size, size] images.
func imageMixture(b testing.TB, sched *schedule.Schedule, size int) *prior.GaussianMixture {
	n := 3 * size * size
	rng := rand.New(rand.NewPCG(1, 2))
	means, vars := make([][]float64, 2), make([][]float64, 2)
	for k := range 2 {
		means[k], vars[k] = make([]float64, n), make([]float64, n)
		for i := range n {
			means[k][i] = 0.5 * rng.Float64()
			vars[k][i] = 0.05
		}
	}
	m, err := prior.NewGaussianMixture(sched, []float64{0.5, 0.5}, means, vars, []int{3, size, size})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

const benchSteps = 20

// BenchmarkStep compares the fused step (one compiled graph per step, the sampler) with
// the same computation done node by node — prior, Tweedie, likelihood gradient (which must
// run the prior again), ancestral update, guidance update — as separate graphs with the
// state copied to the host between them. ×4 average-pool super-resolution, Gaussian
// mixture prior, DPS; per step.
func BenchmarkStep(b *testing.B) {
	for _, size := range []int{32, 64} {
		sched := schedule.Default()
		mix := imageMixture(b, sched, size)
		op, err := operator.NewAvgPoolSR(4)
		if err != nil {
			b.Fatal(err)
		}
		nm := gaussianNoise(b, 0.05)
		xShape := shapes.Make(dtypes.Float32, 1, 3, size, size)
		yShape, err := op.MeasurementShape(xShape)
		if err != nil {
			b.Fatal(err)
		}
		cfg := guidance.Config{Method: guidance.PS, Scale: 1}

		b.Run(fmt.Sprintf("fused/%dpx", size), func(b *testing.B) {
			y := tensors.FromShape(yShape)
			s, err := sampler.New(backend(b), mix, sched, op, nm, sampler.Config{Steps: benchSteps, Guidance: cfg})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Run(context.Background(), y, xShape, 1, nil); err != nil { // compile
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := s.Run(context.Background(), y, xShape, 1, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*benchSteps)/1000, "ms/step")
		})

		b.Run(fmt.Sprintf("node-by-node/%dpx", size), func(b *testing.B) {
			y := tensors.FromShape(yShape) // a tensor stays tied to the first backend that used it
			be := backend(b)
			sc, err := sched.Respace(benchSteps)
			if err != nil {
				b.Fatal(err)
			}
			sqrtRecip, sqrtRecipM1 := tweedie.Coefs(sc.AlphaBars)
			eps := MustNewExec(be, func(xt, t *Node) *Node { e, _ := mix.Predict(xt, t); return e })
			x0 := MustNewExec(be, func(xt, e, r, rm1 *Node) *Node { return tweedie.Estimate(xt, e, r, rm1, true) })
			grad := MustNewExec(be, func(xt, t, r, rm1, y *Node) *Node {
				e, _ := mix.Predict(xt, t)
				d := nm.Distance(y, op.Apply(tweedie.Estimate(xt, e, r, rm1, true)))
				return Gradient(ReduceAllSum(d), xt)[0]
			})
			mean := MustNewExec(be, func(x0, xt, z, c0, c1, sd *Node) *Node {
				return Add(Add(Mul(c0, x0), Mul(c1, xt)), Mul(sd, z))
			})
			update := MustNewExec(be, func(xp, g *Node) *Node { return Sub(xp, MulScalar(g, cfg.Scale)) })
			toHost := func(t *tensors.Tensor) *tensors.Tensor {
				defer t.FinalizeAll()
				return tensors.FromFlatDataAndDimensions(tensors.MustCopyFlatData[float32](t), t.Shape().Dimensions...)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			normal := func() *tensors.Tensor {
				v := make([]float32, xShape.Size())
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return tensors.FromFlatDataAndDimensions(v, xShape.Dimensions...)
			}
			loop := func() {
				x := normal()
				for i := sc.Len() - 1; i >= 0; i-- {
					t := tensors.FromValue([]int32{int32(sc.Timesteps[i])})
					r, rm1 := float32(sqrtRecip[i]), float32(sqrtRecipM1[i])
					e := toHost(eps.MustExec1(x, t))
					xh := toHost(x0.MustExec1(x, e, r, rm1))
					g := toHost(grad.MustExec1(x, t, r, rm1, y))
					sd := float32(0)
					if i > 0 {
						sd = float32(math.Sqrt(sc.PosteriorVariance[i]))
					}
					xp := toHost(mean.MustExec1(xh, x, normal(), float32(sc.PosteriorMeanCoefX0[i]), float32(sc.PosteriorMeanCoefXt[i]), sd))
					x = toHost(update.MustExec1(xp, g))
				}
			}
			loop() // compile
			b.ResetTimer()
			for range b.N {
				loop()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*benchSteps)/1000, "ms/step")
		})
	}
}
