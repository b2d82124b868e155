package fid

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Stats are the mean and covariance (unbiased, divides by n − 1, like numpy.cov and
// pytorch-fid) of n feature vectors of dimension d.
type Stats struct {
	N     int
	Mu    []float64
	Sigma *mat.SymDense
}

// checkFeatures returns the dimension of a non-empty rectangular set of finite features.
func checkFeatures(features [][]float64, name string) (int, error) {
	if len(features) == 0 {
		return 0, fmt.Errorf("fid: %s: no feature vectors", name)
	}
	d := len(features[0])
	if d == 0 {
		return 0, fmt.Errorf("fid: %s: row 0 has no features", name)
	}
	for i, row := range features {
		if len(row) != d {
			return 0, fmt.Errorf("fid: %s: row %d has %d features, row 0 has %d", name, i, len(row), d)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("fid: %s: row %d, feature %d is %v", name, i, j, v)
			}
		}
	}
	return d, nil
}

// NewStats returns the mean and unbiased covariance of features (n rows of d values). It
// needs n ≥ 2, rows of one length and finite values.
func NewStats(features [][]float64) (Stats, error) {
	d, err := checkFeatures(features, "features")
	if err != nil {
		return Stats{}, err
	}
	n := len(features)
	if n < 2 {
		return Stats{}, fmt.Errorf("fid: %d feature vector(s): a covariance needs at least 2", n)
	}
	mu := make([]float64, d)
	for _, row := range features {
		for j, v := range row {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	// Centre first, then Σ = Xcᵀ Xc / (n − 1): the two-pass form avoids the cancellation of
	// E[xxᵀ] − μμᵀ.
	xc := mat.NewDense(n, d, nil)
	for i, row := range features {
		r := xc.RawRowView(i)
		for j, v := range row {
			r[j] = v - mu[j]
		}
	}
	sigma := mat.NewSymDense(d, nil)
	sigma.SymOuterK(1/float64(n-1), xc.T())
	return Stats{N: n, Mu: mu, Sigma: sigma}, nil
}

// check says whether s is usable: a mean and a covariance of one dimension, finite, with
// no negative variance.
func (s Stats) check(name string) (int, error) {
	if s.Sigma == nil {
		return 0, fmt.Errorf("fid: %s: no covariance", name)
	}
	d := s.Sigma.SymmetricDim()
	if len(s.Mu) != d {
		return 0, fmt.Errorf("fid: %s: mean of dimension %d, covariance %d×%d", name, len(s.Mu), d, d)
	}
	for j, v := range s.Mu {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("fid: %s: mean[%d] is %v", name, j, v)
		}
	}
	for i := range d {
		for j := i; j < d; j++ {
			if v := s.Sigma.At(i, j); math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("fid: %s: covariance[%d,%d] is %v", name, i, j, v)
			}
		}
		if v := s.Sigma.At(i, i); v < 0 {
			return 0, fmt.Errorf("fid: %s: covariance[%d,%d] is %v, a variance must be ≥ 0", name, i, i, v)
		}
	}
	return d, nil
}

// pivotedCholesky returns a d×r factor L with Σ = L Lᵀ, by Cholesky factorisation with
// diagonal pivoting (LAPACK dpstrf's algorithm, unblocked) that stops when the largest
// remaining pivot is at most d·ε·max Σii, dpstrf's default tolerance. A positive
// semi-definite Σ of rank r (a covariance of r + 1 samples) thus gets an exact-rank factor:
// the dropped Schur complement is rounding noise, and keeping it would add its square root
// (≈ √ε) to the result below.
func pivotedCholesky(s mat.Symmetric) *mat.Dense {
	d := s.SymmetricDim()
	a := make([]float64, d*d)
	maxDiag := 0.0
	for i := range d {
		for j := range d {
			a[i*d+j] = s.At(i, j)
		}
		maxDiag = math.Max(maxDiag, a[i*d+i])
	}
	tol := float64(d) * 0x1p-52 * maxDiag
	perm := identity(d)
	col := make([]float64, d)
	r := 0
	for k := range d {
		p := k
		for i := k + 1; i < d; i++ {
			if a[i*d+i] > a[p*d+p] {
				p = i
			}
		}
		if !(a[p*d+p] > tol) {
			break
		}
		if p != k {
			// Symmetric swap of rows and columns k and p (the finished columns of L move
			// with their rows).
			rk, rp := a[k*d:(k+1)*d], a[p*d:(p+1)*d]
			for j := range d {
				rk[j], rp[j] = rp[j], rk[j]
			}
			for i := range d {
				a[i*d+k], a[i*d+p] = a[i*d+p], a[i*d+k]
			}
			perm[k], perm[p] = perm[p], perm[k]
		}
		lkk := math.Sqrt(a[k*d+k])
		a[k*d+k] = lkk
		n := d - k - 1
		for i := range n {
			a[(k+1+i)*d+k] /= lkk
			col[i] = a[(k+1+i)*d+k]
		}
		// Trailing update A[k+1:, k+1:] −= l lᵀ, whole rows so that later swaps stay simple.
		for i := range n {
			row := a[(k+1+i)*d+k+1 : (k+2+i)*d]
			floats.AddScaled(row, -col[i], col[:n])
		}
		r = k + 1
	}
	l := mat.NewDense(d, max(r, 1), nil)
	for i := range d {
		for j := 0; j < r && j <= i; j++ {
			l.Set(perm[i], j, a[i*d+j])
		}
	}
	return l
}

// traceSqrtProduct returns tr (Σ1 Σ2)^{1/2}. With Σ1 = L Lᵀ and Σ2 = M Mᵀ, the nonzero
// eigenvalues of Σ1Σ2 are those of (MᵀL)ᵀ(MᵀL), so the trace is the nuclear norm (sum of
// singular values) of MᵀL: real, and accurate to rounding without forming Σ1Σ2.
func traceSqrtProduct(s1, s2 mat.Symmetric) (float64, error) {
	l, m := pivotedCholesky(s1), pivotedCholesky(s2)
	var b mat.Dense
	b.Mul(m.T(), l)
	var svd mat.SVD
	if !svd.Factorize(&b, mat.SVDNone) {
		return 0, errors.New("fid: the singular value decomposition did not converge")
	}
	return floats.Sum(svd.Values(nil)), nil
}

// FrechetDistance returns ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}), the Fréchet distance
// between N(μ1, Σ1) and N(μ2, Σ2) (FID when the statistics are of Inception features). The
// trace of the square root is the nuclear norm of MᵀL for pivoted Cholesky factors
// Σ1 = LLᵀ, Σ2 = MMᵀ (see the package documentation), accurate also for singular
// covariances.
func FrechetDistance(a, b Stats) (float64, error) {
	da, err := a.check("first statistics")
	if err != nil {
		return 0, err
	}
	db, err := b.check("second statistics")
	if err != nil {
		return 0, err
	}
	if da != db {
		return 0, fmt.Errorf("fid: dimension mismatch: %d features against %d", da, db)
	}
	diff := 0.0
	for j := range a.Mu {
		t := a.Mu[j] - b.Mu[j]
		diff += t * t
	}
	trSqrt, err := traceSqrtProduct(a.Sigma, b.Sigma)
	if err != nil {
		return 0, err
	}
	fd := diff + mat.Trace(a.Sigma) + mat.Trace(b.Sigma) - 2*trSqrt
	return math.Max(fd, 0), nil
}

// KIDOptions set the subsets KID averages over; zero fields take the defaults of
// torch-fidelity (100 subsets of 1000).
type KIDOptions struct {
	Subsets, SubsetSize int
	Seed                uint64
}

// KID returns the kernel inception distance between the feature sets a and b (rows are
// feature vectors of one dimension d): the mean and the population standard deviation over
// o.Subsets of the unbiased MMD² with the kernel (x·y/d + 1)³, each on subsets of size
// min(o.SubsetSize, len(a), len(b)) drawn without replacement from each set.
func KID(a, b [][]float64, o KIDOptions) (mean, std float64, err error) {
	da, err := checkFeatures(a, "first set")
	if err != nil {
		return 0, 0, err
	}
	db, err := checkFeatures(b, "second set")
	if err != nil {
		return 0, 0, err
	}
	if da != db {
		return 0, 0, fmt.Errorf("fid: KID: dimension mismatch: %d features against %d", da, db)
	}
	if o.Subsets < 0 || o.SubsetSize < 0 {
		return 0, 0, fmt.Errorf("fid: KID: %d subsets of size %d: both must be positive (0 takes the default)", o.Subsets, o.SubsetSize)
	}
	if o.Subsets == 0 {
		o.Subsets = 100
	}
	if o.SubsetSize == 0 {
		o.SubsetSize = 1000
	}
	m := min(o.SubsetSize, len(a), len(b))
	if m < 2 {
		return 0, 0, fmt.Errorf("fid: KID: subsets of %d vectors: the unbiased estimator needs at least 2 per set", m)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0))
	ia, ib := make([]int, m), make([]int, m)
	permA, permB := identity(len(a)), identity(len(b))
	mmds := make([]float64, o.Subsets)
	na, nb := len(a), len(b)
	if entries := na*na + nb*nb + na*nb; entries <= maxKernelEntries && entries <= 3*o.Subsets*m*m {
		// Small sets, or subsets that cover them several times over: the kernel matrices
		// of the whole sets once, then each subset only indexes them, O(m²) per subset
		// instead of O(m²d).
		fa, fb := rows(a, identity(na)), rows(b, identity(nb))
		kaa, kbb, kab := kernelMatrix(fa, fa), kernelMatrix(fb, fb), kernelMatrix(fa, fb)
		for s := range mmds {
			draw(ia, permA, rng)
			draw(ib, permB, rng)
			mmds[s] = mmd2(kaa, kbb, kab, ia, ib)
		}
	} else {
		id := identity(m)
		for s := range mmds {
			draw(ia, permA, rng)
			draw(ib, permB, rng)
			x, y := rows(a, ia), rows(b, ib)
			mmds[s] = mmd2(kernelMatrix(x, x), kernelMatrix(y, y), kernelMatrix(x, y), id, id)
		}
	}
	for _, v := range mmds {
		mean += v
	}
	mean /= float64(len(mmds))
	for _, v := range mmds {
		std += (v - mean) * (v - mean)
	}
	std = math.Sqrt(std / float64(len(mmds)))
	return mean, std, nil
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

// maxKernelEntries bounds the entries of the whole-set kernel matrices KID precomputes
// (2²⁵ float64, 256 MiB); larger sets compute the kernel per subset.
var maxKernelEntries = 1 << 25

// draw fills idx with len(idx) indices in [0, len(perm)) chosen uniformly without
// replacement, by a partial Fisher–Yates shuffle of perm (which stays a permutation between
// calls).
func draw(idx, perm []int, rng *rand.Rand) {
	n := len(perm)
	for i := range idx {
		j := i + rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
		idx[i] = perm[i]
	}
}

// rows returns the rows idx of src as a matrix.
func rows(src [][]float64, idx []int) *mat.Dense {
	d := len(src[0])
	out := mat.NewDense(len(idx), d, nil)
	for i, r := range idx {
		copy(out.RawRowView(i), src[r])
	}
	return out
}

// kernelMatrix returns torch-fidelity's polynomial kernel (p qᵀ/d + 1)³ between the rows
// of p and q.
func kernelMatrix(p, q *mat.Dense) *mat.Dense {
	_, d := p.Dims()
	var g mat.Dense
	g.Mul(p, q.T())
	r, _ := g.Dims()
	for i := range r {
		row := g.RawRowView(i)
		for j, v := range row {
			k := v/float64(d) + 1
			row[j] = k * k * k
		}
	}
	return &g
}

// mmd2 is the unbiased MMD² estimate between the subsets ix and iy of two sets, given the
// kernel matrices kxx, kyy, kxy of the sets, as torch-fidelity's mmd2(mmd_est="unbiased"):
// Σ_{i≠j} (Kxx + Kyy) / (m(m−1)) − 2 Σ_{i,j} Kxy / m².
func mmd2(kxx, kyy, kxy *mat.Dense, ix, iy []int) float64 {
	m := len(ix)
	offDiagonal := func(k *mat.Dense, idx []int) float64 {
		sum := 0.0
		for a, i := range idx {
			row := k.RawRowView(i)
			for b, j := range idx {
				if a != b {
					sum += row[j]
				}
			}
		}
		return sum
	}
	xy := 0.0
	for _, i := range ix {
		row := kxy.RawRowView(i)
		for _, j := range iy {
			xy += row[j]
		}
	}
	fm := float64(m)
	return (offDiagonal(kxx, ix)+offDiagonal(kyy, iy))/(fm*(fm-1)) - 2*xy/(fm*fm)
}
