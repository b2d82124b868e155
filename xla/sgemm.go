package xla

import (
	"gonum.org/v1/gonum/blas"
)

// Sgemm computes C = op(A)·op(B) for row-major float32 matrices (C is m×n with row stride
// ldc; op transposes when the flag says so), overwriting C. With a SIMD micro-kernel
// (sgemmKernel, chosen at start-up) it runs the packed driver of gemm.go, 3–4× faster than
// gonum's Sgemm on the im2col products of a UNet; without one, or for tiny products, it
// calls gonum.
func Sgemm(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	kern, ok := sgemmKernel()
	if !ok || m*n*k < 16*16*16 {
		gemm.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		return
	}
	g := packedGEMM{
		m: m, n: n, k: k, c: c, ldc: ldc, overwrite: true,
		packA: func(dst []float32, mr, k0, kb int) { packMatrixA(tA, a, lda, m, mr, k0, kb, dst) },
		packB: func(dst []float32, nr, k0, kb, j0, nb int) { packMatrixB(tB, b, ldb, nr, k0, kb, j0, nb, dst) },
	}
	g.run(kern, gemmWorkers(m, n, k))
}

// packMatrixA copies rows [0, m) × k [k0, k0+kb) of op(A) into panels of mr rows,
// k-major: panel p holds, for each k, rows mr·p … mr·p+mr−1 (zero past the last row).
func packMatrixA(t blas.Transpose, a []float32, lda, m, mr, k0, kb int, out []float32) {
	for p := 0; p < m; p += mr {
		panel := out[p*kb : p*kb+kb*mr]
		for r := range mr {
			i := p + r
			if i >= m {
				for l := range kb {
					panel[l*mr+r] = 0
				}
				continue
			}
			if t == blas.NoTrans {
				row := a[i*lda+k0 : i*lda+k0+kb]
				for l, v := range row {
					panel[l*mr+r] = v
				}
			} else {
				for l := range kb {
					panel[l*mr+r] = a[(k0+l)*lda+i]
				}
			}
		}
	}
}

// packMatrixB copies k [k0, k0+kb) × columns [j0, j0+nb) of op(B) into panels of nr
// columns, k-major: panel p holds, for each k, columns j0+nr·p … (zero past the last).
func packMatrixB(t blas.Transpose, b []float32, ldb, nr, k0, kb, j0, nb int, out []float32) {
	for p := 0; p*nr < nb; p++ {
		panel := out[p*kb*nr : (p+1)*kb*nr]
		first := j0 + p*nr
		cols := min(nr, nb-p*nr)
		for l := range kb {
			dst := panel[l*nr : l*nr+nr]
			if t == blas.NoTrans {
				copy(dst, b[(k0+l)*ldb+first:(k0+l)*ldb+first+cols])
			} else {
				for j := range cols {
					dst[j] = b[(first+j)*ldb+k0+l]
				}
			}
			clear(dst[cols:])
		}
	}
}
