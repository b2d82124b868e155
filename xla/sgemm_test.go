package xla

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

func TestSgemmMatchesLoops(t *testing.T) {
	if !haveSgemmKernel {
		t.Log("no AVX2/FMA: Sgemm is gonum's here; checking that path")
	}
	rng := rand.New(rand.NewPCG(15, 16))
	sizes := [][3]int{{6, 16, 1}, {7, 17, 5}, {32, 4096, 288}, {64, 1000, 300}, {5, 3, 2}, {13, 40, 600}, {100, 33, 257}, {1, 64, 64}}
	for _, s := range sizes {
		m, n, k := s[0], s[1], s[2]
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				a, b := make([]float32, m*k), make([]float32, k*n)
				for i := range a {
					a[i] = float32(rng.NormFloat64())
				}
				for i := range b {
					b[i] = float32(rng.NormFloat64())
				}
				lda, ldb := k, n
				if tA == blas.Trans {
					lda = m
				}
				if tB == blas.Trans {
					ldb = k
				}
				ldc := n + 3 // a row stride wider than the matrix
				c := make([]float32, m*ldc)
				for i := range c {
					c[i] = 99 // overwritten inside the matrix, untouched outside
				}
				Sgemm(tA, tB, m, n, k, a, lda, b, ldb, c, ldc)
				name := fmt.Sprintf("m=%d n=%d k=%d tA=%c tB=%c", m, n, k, tA, tB)
				for i := range m {
					for j := range ldc {
						got := c[i*ldc+j]
						if j >= n {
							if got != 99 {
								t.Fatalf("%s: wrote outside the matrix at (%d,%d)", name, i, j)
							}
							continue
						}
						var want, norm float64
						for l := range k {
							av, bv := a[i*k+l], b[l*n+j]
							if tA == blas.Trans {
								av = a[l*m+i]
							}
							if tB == blas.Trans {
								bv = b[j*k+l]
							}
							want += float64(av) * float64(bv)
							norm += math.Abs(float64(av) * float64(bv))
						}
						if math.Abs(float64(got)-want) > 1e-5*(norm+1) {
							t.Fatalf("%s: C[%d,%d] = %g, want %g", name, i, j, got, want)
						}
					}
				}
			}
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range [][3]int{{32, 4096, 288}, {64, 1024, 576}, {32, 1024, 864}} {
		m, n, k := s[0], s[1], s[2]
		x, y, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
		for i := range x {
			x[i] = 1
		}
		for i := range y {
			y[i] = 1
		}
		flops := float64(2 * m * n * k)
		b.Run(fmt.Sprintf("dpsflow/%dx%dx%d", m, n, k), func(b *testing.B) {
			for range b.N {
				Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, x, k, y, n, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("gonum/%dx%dx%d", m, n, k), func(b *testing.B) {
			for range b.N {
				gemm.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, x, k, y, n, 0, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// Every assembly micro-kernel this CPU runs gives the same bits through the driver (each
// sums an element's products in the same order, so which one runs does not change
// results), and the pure-Go kernel agrees with float64 loops to float32 rounding.
func TestMicroKernelsAgree(t *testing.T) {
	asm := availableAsmKernels()
	if len(asm) < 2 {
		t.Logf("this CPU runs %d assembly kernel(s): nothing to compare bit for bit", len(asm))
	}
	rng := rand.New(rand.NewPCG(17, 18))
	for _, s := range [][3]int{{37, 530, 300}, {64, 1024, 576}, {8, 32, 1}, {13, 70, 513}} {
		m, n, k := s[0], s[1], s[2]
		a, b := make([]float32, m*k), make([]float32, k*n)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		product := func(kern microKernel) []float32 {
			c := make([]float32, m*n)
			g := packedGEMM{m: m, n: n, k: k, c: c, ldc: n,
				packA: func(dst []float32, mr, k0, kb int) { packMatrixA(blas.NoTrans, a, k, m, mr, k0, kb, dst) },
				packB: func(dst []float32, nr, k0, kb, j0, nb int) {
					packMatrixB(blas.NoTrans, b, n, nr, k0, kb, j0, nb, dst)
				},
			}
			g.run(kern, 2)
			return c
		}
		for _, kern := range asm[min(1, len(asm)):] {
			want, got := product(asm[0]), product(kern)
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%dx%dx%d: kernel %s gives C[%d] = %g, %s gives %g", m, n, k, kern.name, i, got[i], asm[0].name, want[i])
				}
			}
		}
		got := product(kernelGo)
		for i := range m {
			for j := range n {
				var want, norm float64
				for l := range k {
					p := float64(a[i*k+l]) * float64(b[l*n+j])
					want, norm = want+p, norm+math.Abs(p)
				}
				if d := math.Abs(float64(got[i*n+j]) - want); d > 1e-5*(norm+1) { // as TestSgemmMatchesLoops
					t.Fatalf("%dx%dx%d: pure-Go kernel C[%d,%d] = %g, want %g", m, n, k, i, j, got[i*n+j], want)
				}
			}
		}
	}
}
