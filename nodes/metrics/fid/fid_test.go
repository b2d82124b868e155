package fid

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// runReference runs testdata/fid/reference.py (NumPy/SciPy) into a temporary folder and
// returns its parsed reference.json. It fails, never skips, when Python is missing.
func runReference(t *testing.T) refFile {
	t.Helper()
	dir := t.TempDir()
	script, err := filepath.Abs("../../../testdata/fid/reference.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("running %s with /usr/bin/python3 failed (%v): %s\nit needs Debian's python3 with NumPy and SciPy: "+
			"run ./test.sh, which installs them — this test does not skip", script, err, stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref refFile
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatalf("reference.json: %v", err)
	}
	if len(ref.Cases) != 2 {
		t.Fatalf("reference.json has %d cases, want 2", len(ref.Cases))
	}
	return ref
}

type refFile struct {
	Cases []struct {
		Name          string      `json:"name"`
		A             [][]float64 `json:"a"`
		B             [][]float64 `json:"b"`
		MuA           []float64   `json:"mu_a"`
		SigmaA        [][]float64 `json:"sigma_a"`
		FDPytorchFID  float64     `json:"fd_pytorch_fid"`
		EpsOffsetUsed bool        `json:"eps_offset_used"`
		FDNuclear     float64     `json:"fd_nuclear"`
		MMD2          float64     `json:"mmd2"`
	} `json:"cases"`
}

func relErr(got, want float64) float64 {
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

// TestAgainstSciPy compares the statistics, the Fréchet distance and the unbiased MMD² with
// the NumPy/SciPy references: pytorch-fid's sqrtm formula, the SVD (nuclear-norm) route, and
// torch-fidelity's mmd2, on a full-rank (n = 64 > d = 16) and a rank-deficient (n = 8) case.
func TestAgainstSciPy(t *testing.T) {
	ref := runReference(t)
	for _, c := range ref.Cases {
		sa, err := NewStats(c.A)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := NewStats(c.B)
		if err != nil {
			t.Fatal(err)
		}
		maxStat := 0.0
		for j, v := range c.MuA {
			maxStat = math.Max(maxStat, math.Abs(sa.Mu[j]-v))
			for k, w := range c.SigmaA[j] {
				maxStat = math.Max(maxStat, math.Abs(sa.Sigma.At(j, k)-w))
			}
		}
		if maxStat > 1e-12 {
			t.Errorf("%s: mean/covariance differ from numpy by %.3g", c.Name, maxStat)
		}
		fd, err := FrechetDistance(sa, sb)
		if err != nil {
			t.Fatal(err)
		}
		ePT, eNuc := relErr(fd, c.FDPytorchFID), relErr(fd, c.FDNuclear)
		t.Logf("%s: FD %.15g; pytorch-fid (sqrtm, eps offset used %v) %.15g rel %.2g; SVD route %.15g rel %.2g",
			c.Name, fd, c.EpsOffsetUsed, c.FDPytorchFID, ePT, c.FDNuclear, eNuc)
		if eNuc > 1e-12 {
			t.Errorf("%s: FD %.15g, SVD reference %.15g: relative error %.3g > 1e-12", c.Name, fd, c.FDNuclear, eNuc)
		}
		// sqrtm of the singular, non-symmetric Σ1Σ2 loses digits when n < d; the SVD route
		// above is the accurate reference there.
		tolPT := 1e-8
		if c.Name == "rank_deficient" {
			tolPT = 1e-6
		}
		if ePT > tolPT {
			t.Errorf("%s: FD %.15g, pytorch-fid %.15g: relative error %.3g > %g", c.Name, fd, c.FDPytorchFID, ePT, tolPT)
		}
		// One subset of the whole sets: no sampling, so the value is the full-set estimator.
		mean, std, err := KID(c.A, c.B, KIDOptions{Subsets: 1, SubsetSize: len(c.A)})
		if err != nil {
			t.Fatal(err)
		}
		if e := relErr(mean, c.MMD2); e > 1e-12 || std != 0 {
			t.Errorf("%s: KID %.15g ± %g, torch-fidelity mmd2 %.15g: relative error %.3g", c.Name, mean, std, c.MMD2, e)
		} else {
			t.Logf("%s: KID %.15g, mmd2 %.15g, rel %.2g", c.Name, mean, c.MMD2, e)
		}
	}
}

func gaussian(rng *rand.Rand, n, d int, mu, scale []float64) [][]float64 {
	x := make([][]float64, n)
	for i := range x {
		x[i] = make([]float64, d)
		for j := range x[i] {
			x[i][j] = mu[j] + scale[j]*rng.NormFloat64()
		}
	}
	return x
}

func TestFrechetSelfIsZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{100, 10} { // full rank and rank deficient (d = 20)
		d := 20
		mu, sc := make([]float64, d), make([]float64, d)
		for j := range d {
			mu[j], sc[j] = rng.NormFloat64(), 0.5+rng.Float64()
		}
		s, err := NewStats(gaussian(rng, n, d, mu, sc))
		if err != nil {
			t.Fatal(err)
		}
		fd, err := FrechetDistance(s, s)
		if err != nil {
			t.Fatal(err)
		}
		if tr := mat.Trace(s.Sigma); fd > 1e-12*tr {
			t.Errorf("n=%d: FD(a, a) = %g, tr Σ = %g", n, fd, tr)
		}
	}
}

// TestFrechetClosedForm: for diagonal covariances FD = ‖Δμ‖² + Σ (√σ1 − √σ2)², and FD is
// unchanged when both Gaussians are rotated by the same orthogonal matrix.
func TestFrechetClosedForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const d = 12
	mu1, mu2, v1, v2 := make([]float64, d), make([]float64, d), make([]float64, d), make([]float64, d)
	want := 0.0
	for j := range d {
		mu1[j], mu2[j] = rng.NormFloat64(), rng.NormFloat64()
		v1[j], v2[j] = rng.Float64()*3, rng.Float64()*3
		if j%4 == 0 {
			v1[j] = 0 // singular covariances too
		}
		want += (mu1[j]-mu2[j])*(mu1[j]-mu2[j]) + (math.Sqrt(v1[j])-math.Sqrt(v2[j]))*(math.Sqrt(v1[j])-math.Sqrt(v2[j]))
	}
	diag := func(v []float64) *mat.SymDense {
		s := mat.NewSymDense(d, nil)
		for j, x := range v {
			s.SetSym(j, j, x)
		}
		return s
	}
	a, b := Stats{N: 2, Mu: mu1, Sigma: diag(v1)}, Stats{N: 2, Mu: mu2, Sigma: diag(v2)}
	fd, err := FrechetDistance(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if e := relErr(fd, want); e > 1e-12 {
		t.Errorf("diagonal: FD %.15g, closed form %.15g (rel %.3g)", fd, want, e)
	}
	// A random orthogonal Q from the QR of a Gaussian matrix: Q Σ Qᵀ, Q μ.
	g := mat.NewDense(d, d, nil)
	for i := range d {
		for j := range d {
			g.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(g)
	var q mat.Dense
	qr.QTo(&q)
	rot := func(s Stats) Stats {
		var m, tmp mat.Dense
		tmp.Mul(&q, s.Sigma)
		m.Mul(&tmp, q.T())
		sym := mat.NewSymDense(d, nil)
		for i := range d {
			for j := i; j < d; j++ {
				sym.SetSym(i, j, 0.5*(m.At(i, j)+m.At(j, i)))
			}
		}
		var mu mat.VecDense
		mu.MulVec(&q, mat.NewVecDense(d, s.Mu))
		return Stats{N: s.N, Mu: mu.RawVector().Data, Sigma: sym}
	}
	fdRot, err := FrechetDistance(rot(a), rot(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("diagonal: rel %.2g; rotated: rel %.2g", relErr(fd, want), relErr(fdRot, want))
	if e := relErr(fdRot, want); e > 1e-12 {
		t.Errorf("rotated: FD %.15g, closed form %.15g (rel %.3g)", fdRot, want, e)
	}
}

// TestKIDHandExample: X = {(1,0), (0,1)}, Y = {(1,1), (0,0)}, d = 2, k = (x·y/2 + 1)³.
// Off-diagonal k(x1,x2) = k(y1,y2) = 1; k(xi, y1) = 1.5³ = 3.375, k(xi, y2) = 1, so
// MMD² = (2 + 2)/(2·1) − 2·(2·3.375 + 2)/4 = 2 − 4.375 = −2.375 (the unbiased estimate can be
// negative).
func TestKIDHandExample(t *testing.T) {
	x := [][]float64{{1, 0}, {0, 1}}
	y := [][]float64{{1, 1}, {0, 0}}
	mean, std, err := KID(x, y, KIDOptions{Subsets: 3, SubsetSize: 5, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mean+2.375) > 1e-15 || std != 0 {
		t.Errorf("KID %v ± %v, want -2.375 ± 0", mean, std)
	}
}

// TestKIDSameDistribution: the unbiased MMD² between two independent samples of one
// distribution averages to 0; between shifted distributions it is clearly positive.
func TestKIDSameDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d, n, reps = 8, 60, 60
	mu, shifted, sc := make([]float64, d), make([]float64, d), make([]float64, d)
	for j := range d {
		mu[j], sc[j] = 0.3*rng.NormFloat64(), 1
		shifted[j] = mu[j] + 0.5
	}
	var same, diff []float64
	for range reps {
		a := gaussian(rng, n, d, mu, sc)
		m, _, err := KID(a, gaussian(rng, n, d, mu, sc), KIDOptions{Subsets: 1, SubsetSize: n})
		if err != nil {
			t.Fatal(err)
		}
		same = append(same, m)
		m, _, err = KID(a, gaussian(rng, n, d, shifted, sc), KIDOptions{Subsets: 1, SubsetSize: n})
		if err != nil {
			t.Fatal(err)
		}
		diff = append(diff, m)
	}
	meanSE := func(v []float64) (float64, float64) {
		m, s := 0.0, 0.0
		for _, x := range v {
			m += x
		}
		m /= float64(len(v))
		for _, x := range v {
			s += (x - m) * (x - m)
		}
		return m, math.Sqrt(s / float64(len(v)-1) / float64(len(v)))
	}
	ms, ses := meanSE(same)
	md, sed := meanSE(diff)
	t.Logf("same distribution: %.4g ± %.2g (s.e.); shifted: %.4g ± %.2g", ms, ses, md, sed)
	if math.Abs(ms) > 4*ses {
		t.Errorf("same distribution: mean MMD² %.4g, more than 4 standard errors (%.2g) from 0", ms, ses)
	}
	if md < 10*sed || md < 10*math.Abs(ms) {
		t.Errorf("shifted distribution: mean MMD² %.4g ± %.2g is not clearly positive", md, sed)
	}
}

// TestKIDSubsets: subsampled KID is reproducible for a seed, changes with the seed, and its
// mean is close to the full-set value.
func TestKIDSubsets(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const d, n = 6, 200
	mu, sc := make([]float64, d), make([]float64, d)
	for j := range d {
		mu[j], sc[j] = rng.NormFloat64(), 1
	}
	a := gaussian(rng, n, d, mu, sc)
	mu[0] += 1
	b := gaussian(rng, n+37, d, mu, sc)
	o := KIDOptions{Subsets: 50, SubsetSize: 100, Seed: 11}
	m1, s1, err := KID(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	m2, s2, _ := KID(a, b, o)
	if m1 != m2 || s1 != s2 {
		t.Errorf("same seed: %v ± %v then %v ± %v", m1, s1, m2, s2)
	}
	o.Seed++
	m3, _, _ := KID(a, b, o)
	if m3 == m1 {
		t.Errorf("seeds 11 and 12 gave the same KID %v", m1)
	}
	full, _, _ := KID(a, b[:n], KIDOptions{Subsets: 1, SubsetSize: n})
	if s1 <= 0 || math.Abs(m1-full) > 3*s1 {
		t.Errorf("subsampled KID %v ± %v, full-set value %v", m1, s1, full)
	}
	t.Logf("KID over 50 subsets of 100: %.5g ± %.3g; whole sets: %.5g", m1, s1, full)
}

// TestKIDPaths: the whole-set kernel matrices and the per-subset kernels give the same
// values for the same draws.
func TestKIDPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const d = 5
	mu, sc := make([]float64, d), make([]float64, d)
	for j := range d {
		mu[j], sc[j] = rng.NormFloat64(), 1+rng.Float64()
	}
	a, b := gaussian(rng, 70, d, mu, sc), gaussian(rng, 50, d, sc, mu)
	o := KIDOptions{Subsets: 20, SubsetSize: 40, Seed: 3}
	m1, s1, err := KID(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func(v int) { maxKernelEntries = v }(maxKernelEntries)
	maxKernelEntries = 0
	m2, s2, err := KID(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	if relErr(m1, m2) > 1e-12 || relErr(s1, s2) > 1e-10 {
		t.Errorf("whole-set kernels: %.15g ± %.15g; per-subset kernels: %.15g ± %.15g", m1, s1, m2, s2)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"one row", func() error { _, err := NewStats([][]float64{{1, 2}}); return err }, "at least 2"},
		{"ragged", func() error { _, err := NewStats([][]float64{{1, 2}, {3}}); return err }, "row 1 has 1"},
		{"NaN", func() error { _, err := NewStats([][]float64{{1, 2}, {3, 4}, {math.NaN(), 0}}); return err }, "row 2, feature 0"},
		{"Inf", func() error {
			_, _, err := KID([][]float64{{1}, {2}}, [][]float64{{1}, {math.Inf(1)}}, KIDOptions{})
			return err
		}, "second set: row 1"},
		{"FD dims", func() error {
			a, _ := NewStats([][]float64{{1, 2}, {3, 4}})
			b, _ := NewStats([][]float64{{1, 2, 3}, {3, 4, 5}})
			_, err := FrechetDistance(a, b)
			return err
		}, "dimension mismatch"},
		{"FD bad stats", func() error {
			a, _ := NewStats([][]float64{{1, 2}, {3, 4}})
			_, err := FrechetDistance(a, Stats{Mu: []float64{1}, Sigma: mat.NewSymDense(2, nil)})
			return err
		}, "second statistics: mean of dimension 1"},
		{"FD negative variance", func() error {
			a, _ := NewStats([][]float64{{1, 2}, {3, 4}})
			_, err := FrechetDistance(a, Stats{Mu: []float64{1, 2}, Sigma: mat.NewSymDense(2, []float64{1, 0, 0, -1})})
			return err
		}, "covariance[1,1] is -1"},
		{"KID dims", func() error {
			_, _, err := KID([][]float64{{1}, {2}}, [][]float64{{1, 2}, {3, 4}}, KIDOptions{})
			return err
		}, "dimension mismatch"},
		{"KID tiny", func() error {
			_, _, err := KID([][]float64{{1}, {2}}, [][]float64{{1}}, KIDOptions{})
			return err
		}, "at least 2"},
	}
	for _, c := range cases {
		err := c.err()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}
