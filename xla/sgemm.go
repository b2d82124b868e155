package xla

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
)

// Sgemm computes C = op(A)·op(B) for row-major float32 matrices (C is m×n with row stride
// ldc; op transposes when the flag says so), overwriting C. On amd64 with AVX2/FMA it packs
// A into 6-row panels and B into 16-column panels and runs a 6×16 register-tiled assembly
// kernel, 3–4× faster than gonum's Sgemm on the im2col products of a UNet; elsewhere it
// calls gonum.
func Sgemm(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if !haveSgemmKernel || m*n*k < 16*16*16 {
		gemm.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		return
	}
	for i := range m {
		clear(c[i*ldc : i*ldc+n])
	}
	if k == 0 {
		return
	}
	const (
		mr, nr = 6, 16
		kc     = 256 // k per packed block: a B panel (kc×16 floats) stays in L1
		mc     = 96  // rows per packed A block (a multiple of mr)
	)
	nPanels := (n + nr - 1) / nr
	bPack := getPack(kc * nPanels * nr)
	aPack := getPack(kc * mc)
	defer putPack(bPack)
	defer putPack(aPack)
	workers := min(runtime.GOMAXPROCS(0), nPanels)
	if m*n*k < 64*64*64 {
		workers = 1
	}
	for k0 := 0; k0 < k; k0 += kc {
		kb := min(kc, k-k0)
		packB(tB, b, ldb, k0, kb, n, bPack)
		for i0 := 0; i0 < m; i0 += mc {
			mb := min(mc, m-i0)
			packA(tA, a, lda, i0, mb, k0, kb, aPack)
			// Column panels are independent: split them across cores.
			run := func(w int) {
				var edge [mr * nr]float32
				for p := w; p < nPanels; p += workers {
					bp := bPack[p*kb*nr:]
					cols := min(nr, n-p*nr)
					for i := 0; i < mb; i += mr {
						rows := min(mr, mb-i)
						ap := aPack[i*kb:]
						ci := (i0+i)*ldc + p*nr
						if rows == mr && cols == nr {
							sgemmKernel6x16(kb, &ap[0], &bp[0], &c[ci], ldc)
							continue
						}
						// Edge tile: compute into a full scratch tile, add the valid part.
						clear(edge[:])
						sgemmKernel6x16(kb, &ap[0], &bp[0], &edge[0], nr)
						for r := range rows {
							row := c[ci+r*ldc : ci+r*ldc+cols]
							for j := range row {
								row[j] += edge[r*nr+j]
							}
						}
					}
				}
			}
			if workers == 1 {
				run(0)
				continue
			}
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() { defer wg.Done(); run(w) }()
			}
			wg.Wait()
		}
	}
}

// packPool recycles packing buffers: a UNet step runs dozens of products.
var packPool sync.Pool // *[]float32

func getPack(n int) []float32 {
	if p, ok := packPool.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]float32, n)
}

func putPack(buf []float32) { packPool.Put(&buf) }

// packA copies rows [i0, i0+mb) × k [k0, k0+kb) of op(A) into panels of 6 rows,
// k-major: panel p holds, for each k, rows 6p…6p+5 (zero past the last row).
func packA(t blas.Transpose, a []float32, lda, i0, mb, k0, kb int, out []float32) {
	const mr = 6
	for p := 0; p < mb; p += mr {
		panel := out[p*kb : p*kb+kb*mr]
		for r := range mr {
			i := i0 + p + r
			if p+r >= mb {
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

// packB copies k [k0, k0+kb) × all n columns of op(B) into panels of 16 columns,
// k-major: panel p holds, for each k, columns 16p…16p+15 (zero past the last column).
func packB(t blas.Transpose, b []float32, ldb, k0, kb, n int, out []float32) {
	const nr = 16
	for p := 0; p*nr < n; p++ {
		panel := out[p*kb*nr : (p+1)*kb*nr]
		cols := min(nr, n-p*nr)
		for l := range kb {
			dst := panel[l*nr : l*nr+nr]
			if t == blas.NoTrans {
				copy(dst, b[(k0+l)*ldb+p*nr:(k0+l)*ldb+p*nr+cols])
			} else {
				for j := range cols {
					dst[j] = b[(p*nr+j)*ldb+k0+l]
				}
			}
			clear(dst[cols:])
		}
	}
}
