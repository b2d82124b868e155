package xla

import (
	"runtime"
	"sync"
)

// The packed GEMM driver behind Sgemm and the convolution executor. Operands are not
// matrices but packers: packA and packB copy a block of op(A) or op(B) into the
// micro-kernel's panel layout from whatever the data really is — a row-major matrix, its
// transpose, or a convolution's input seen as its patch matrix (convexec.go), which is
// how a convolution runs without ever materialising im2col.
//
// Per element of C the arithmetic is fixed: for each block of kc values of k in order, the
// micro-kernel sums the products in order into a zeroed register, then adds that sum to C.
// Tile sizes, panel order and the number of workers do not change it, so results do not
// depend on the core count or on which kernel (AVX2 or AVX-512) runs.

// microKernel computes C[0:mr, 0:nr] += Apanel·Bpanel for A packed [k][mr] and B packed
// [k][nr]; c points at the tile's top-left, rows ldc floats apart.
type microKernel struct {
	name   string
	mr, nr int
	run    func(k int, a, b, c *float32, ldc int)
}

const (
	gemmKC = 256  // k per packed block: a B panel (kc×nr floats) stays in L1
	gemmNC = 1024 // columns per packed B chunk (≈1 MiB at kc×nr·4 bytes): stays in L2
)

// packedGEMM is one product C (m×n) += A (m×k) · B (k×n) for the driver.
type packedGEMM struct {
	m, n, k int
	// packA writes rows [0, m) × k [k0, k0+kb) of A as ⌈m/mr⌉ panels of kb×mr, k-major,
	// rows past m zero.
	packA func(dst []float32, mr, k0, kb int)
	// packB writes k [k0, k0+kb) × columns [j0, j0+nb) of B as ⌈nb/nr⌉ panels of kb×nr,
	// k-major, columns past j0+nb zero.
	packB func(dst []float32, nr, k0, kb, j0, nb int)
	// C element (i, j) is c[i*ldc + colOff[j]]; colOff nil means colOff[j] = j.
	c      []float32
	ldc    int
	colOff []int
	// overwrite clears C's columns chunk by chunk just before their first use (C = A·B);
	// otherwise the product is added to C.
	overwrite bool
}

// run computes the product with kern on up to workers goroutines.
func (g *packedGEMM) run(kern microKernel, workers int) {
	if g.m == 0 || g.n == 0 || g.k == 0 {
		if g.overwrite && g.k == 0 {
			g.clearColumns(0, g.n)
		}
		return
	}
	mr, nr := kern.mr, kern.nr
	mPanels := (g.m + mr - 1) / mr
	// Chunks of columns are the parallel work: at least one per worker when n allows.
	nc := min(gemmNC, roundUp((g.n+workers-1)/workers, nr))
	chunks := (g.n + nc - 1) / nc
	workers = max(1, min(workers, chunks))
	aPack := getPack(mPanels * mr * gemmKC)
	defer putPack(aPack)
	bPacks := make([][]float32, workers)
	for w := range bPacks {
		bPacks[w] = getPack(gemmKC * roundUp(nc, nr))
		defer putPack(bPacks[w])
	}
	for k0 := 0; k0 < g.k; k0 += gemmKC {
		kb := min(gemmKC, g.k-k0)
		g.packA(aPack, mr, k0, kb)
		work := func(w int) {
			var edge [16 * 64]float32 // room for any tile up to 16×64
			for chunk := w; chunk < chunks; chunk += workers {
				j0 := chunk * nc
				nb := min(nc, g.n-j0)
				g.packB(bPacks[w], nr, k0, kb, j0, nb)
				if k0 == 0 && g.overwrite {
					g.clearColumns(j0, nb)
				}
				g.macro(kern, aPack, bPacks[w], kb, j0, nb, edge[:mr*nr])
			}
		}
		if workers == 1 {
			work(0)
			continue
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() { defer wg.Done(); work(w) }()
		}
		wg.Wait()
	}
}

// macro runs the micro-kernel over every (A panel, B panel) pair of one packed block.
func (g *packedGEMM) macro(kern microKernel, aPack, bPack []float32, kb, j0, nb int, edge []float32) {
	mr, nr := kern.mr, kern.nr
	for p := 0; p*nr < nb; p++ {
		bp := bPack[p*kb*nr:]
		jp := j0 + p*nr
		cols := min(nr, nb-p*nr)
		contiguous := cols == nr && g.columnsContiguous(jp, nr)
		for i := 0; i < g.m; i += mr {
			rows := min(mr, g.m-i)
			ap := aPack[i*kb:]
			if rows == mr && contiguous {
				kern.run(kb, &ap[0], &bp[0], &g.c[i*g.ldc+g.col(jp)], g.ldc)
				continue
			}
			// Edge or scattered tile: compute into a zeroed scratch tile, add the valid part.
			clear(edge)
			kern.run(kb, &ap[0], &bp[0], &edge[0], nr)
			for r := range rows {
				row := g.c[(i+r)*g.ldc:]
				for j := range cols {
					row[g.col(jp+j)] += edge[r*nr+j]
				}
			}
		}
	}
}

// clearColumns zeroes columns [j0, j0+nb) of C in every row (while they are about to be
// in cache anyway, instead of a pass over all of C beforehand).
func (g *packedGEMM) clearColumns(j0, nb int) {
	contiguous := g.columnsContiguous(j0, nb)
	for i := range g.m {
		row := g.c[i*g.ldc:]
		if contiguous {
			clear(row[g.col(j0) : g.col(j0)+nb])
			continue
		}
		for j := j0; j < j0+nb; j++ {
			row[g.col(j)] = 0
		}
	}
}

func (g *packedGEMM) col(j int) int {
	if g.colOff == nil {
		return j
	}
	return g.colOff[j]
}

// columnsContiguous says whether columns [j, j+n) are consecutive floats of C.
func (g *packedGEMM) columnsContiguous(j, n int) bool {
	if g.colOff == nil {
		return true
	}
	for i := 1; i < n; i++ {
		if g.colOff[j+i] != g.colOff[j]+i {
			return false
		}
	}
	return true
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

// gemmWorkers is how many goroutines a product of m·n·k multiply-adds gets: small ones
// are not worth a goroutine.
func gemmWorkers(m, n, k int) int {
	if m*n*k < 64*64*64 {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// packPool recycles packing buffers: a UNet step runs hundreds of products.
var packPool sync.Pool // *[]float32

func getPack(n int) []float32 {
	if p, ok := packPool.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]float32, n)
}

func putPack(buf []float32) { packPool.Put(&buf) }
