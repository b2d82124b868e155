package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

func randomFloats(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// float32Tolerance bounds the error of c0 + Σ a·b summed in float32, one FMA per term and
// a final add: γ(k+1)·(Σ|a·b| + |c0|) with unit roundoff u = 2⁻²⁴, γ(n) = n·u/(1-n·u) ≤ 1.01·n·u.
func float32Tolerance(k int, absSum, c0 float64) float64 {
	return 1.01 * float64(max(k, 0)+1) * 0x1p-24 * (absSum + math.Abs(c0))
}

// TestSgemmKernelsAddIntoOneTile calls each kernel on one full tile in the middle of a larger
// buffer: it must add A·B into the tile's values and leave every guard cell around it alone.
func TestSgemmKernelsAddIntoOneTile(t *testing.T) {
	rng := rand.New(rand.NewPCG(512, 1))
	for _, kn := range append([]microKernel{kernelGo}, availableAsmKernels()...) {
		for _, k := range []int{-1, 0, 1, 2, 3, 4, 5, 7, 8, 63, 256, 257, 600} {
			if k < 0 && kn.name == kernelAVX2.name {
				continue // sgemmKernel6x16 faults on k < 0 (its loop counts down past zero); Sgemm never passes one
			}
			checkOneTile(t, kn, k, rng)
		}
	}
}

// tileGuard fills the buffer around the tile; any other value there means a stray write.
const tileGuard = float32(-12345.5)

// checkOneTile runs kn with k steps on a tile at row 1, column 3 of an (mr+2)×(nr+7) buffer.
func checkOneTile(t *testing.T, kn microKernel, k int, rng *rand.Rand) {
	t.Helper()
	name := fmt.Sprintf("%s k=%d", kn.name, k)
	kk := max(k, 0)
	a, b := randomFloats(rng, kk*kn.mr+1), randomFloats(rng, kk*kn.nr+1)
	rows, ldc, top, left := kn.mr+2, kn.nr+7, 1, 3
	c := make([]float32, rows*ldc)
	for i := range c {
		c[i] = tileGuard
	}
	for r := range kn.mr {
		for j := range kn.nr {
			c[(top+r)*ldc+left+j] = float32(rng.NormFloat64())
		}
	}
	before := append([]float32(nil), c...)
	kn.run(k, &a[0], &b[0], &c[top*ldc+left], ldc)
	for i := range rows {
		for j := range ldc {
			r, col := i-top, j-left
			got := c[i*ldc+j]
			if r < 0 || r >= kn.mr || col < 0 || col >= kn.nr {
				if got != tileGuard {
					t.Fatalf("%s: wrote outside the tile at buffer (%d,%d): %g", name, i, j, got)
				}
				continue
			}
			c0 := float64(before[i*ldc+j])
			want, absSum := c0, 0.0
			for l := range kk {
				prod := float64(a[l*kn.mr+r]) * float64(b[l*kn.nr+col])
				want += prod
				absSum += math.Abs(prod)
			}
			if diff := math.Abs(float64(got) - want); diff > float32Tolerance(kk, absSum, c0) {
				t.Fatalf("%s: tile (%d,%d) = %g, want %g (off by %g)", name, r, col, got, want, diff)
			}
		}
	}
}

// BenchmarkSgemmKernels compares the micro-kernels single-threaded through the driver: an
// L1/L2-resident product and two UNet-shaped ones (packing included).
func BenchmarkSgemmKernels(b *testing.B) {
	rng := rand.New(rand.NewPCG(512, 3))
	for _, s := range []struct {
		name    string
		m, k, n int
	}{{"cached_96x256x256", 96, 256, 256}, {"unet_64x576x8192", 64, 576, 8192}, {"unet_256x2304x4096", 256, 2304, 4096}} {
		a, bm := randomFloats(rng, s.m*s.k), randomFloats(rng, s.k*s.n)
		c := make([]float32, s.m*s.n)
		for _, kern := range availableAsmKernels() {
			b.Run(s.name+"/"+kern.name, func(b *testing.B) {
				g := packedGEMM{m: s.m, n: s.n, k: s.k, c: c, ldc: s.n,
					packA: func(dst []float32, mr, k0, kb int) { packMatrixA(blas.NoTrans, a, s.k, s.m, mr, k0, kb, dst) },
					packB: func(dst []float32, nr, k0, kb, j0, nb int) {
						packMatrixB(blas.NoTrans, bm, s.n, nr, k0, kb, j0, nb, dst)
					},
				}
				for b.Loop() {
					g.run(kern, 1)
				}
				b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
