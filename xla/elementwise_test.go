package xla

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The float32 arithmetic assembly gives the Go loops' results bit for bit, for every
// length around its 32- and 8-float blocks, in place (o = a or o = b) or not, with
// zeros, infinities and NaNs among the operands.
func TestSIMDArithmeticMatchesGoLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()), 1e-40, 3e38}
	value := func() float32 {
		if rng.IntN(8) == 0 {
			return special[rng.IntN(len(special))]
		}
		return float32(rng.NormFloat64() * 10)
	}
	same := func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) || (x != x && y != y) }
	goOp := func(op binaryOp, x, y float32) float32 {
		switch op {
		case opAdd:
			return x + y
		case opSub:
			return x - y
		case opMul:
			return x * y
		}
		return x / y
	}
	for _, op := range []binaryOp{opAdd, opSub, opMul, opDiv} {
		for n := 0; n <= 75; n++ {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				a[i], b[i] = value(), value()
			}
			s := value()
			for alias := range 3 { // 0: fresh output, 1: o = a, 2: o = b
				out := make([]float32, n)
				aa, bb := append([]float32{}, a...), append([]float32{}, b...)
				switch alias {
				case 1:
					out = aa
				case 2:
					out = bb
				}
				applyVV(op, out, aa, bb)
				for i := range n {
					if want := goOp(op, a[i], b[i]); !same(out[i], want) {
						t.Fatalf("op %d n %d alias %d: vv[%d] = %g, want %g", op, n, alias, i, out[i], want)
					}
				}
				if alias == 2 {
					continue
				}
				aa = append([]float32{}, a...)
				out = make([]float32, n)
				if alias == 1 {
					out = aa
				}
				applyVS(op, out, aa, s)
				for i := range n {
					if want := goOp(op, a[i], s); !same(out[i], want) {
						t.Fatalf("op %d n %d: vs[%d] = %g, want %g", op, n, i, out[i], want)
					}
				}
				aa = append([]float32{}, a...)
				out = make([]float32, n)
				if alias == 1 {
					out = aa
				}
				applySV(op, out, s, aa)
				for i := range n {
					if want := goOp(op, s, a[i]); !same(out[i], want) {
						t.Fatalf("op %d n %d: sv[%d] = %g, want %g", op, n, i, out[i], want)
					}
				}
			}
		}
	}
	if !haveAVXArith {
		t.Log("no AVX here: the Go loops were compared with themselves")
	}
}

// The float32 Logistic assembly computes SimpleGo's float64 expression with its own exp:
// over 4 million inputs (every scale from 1e-30 to 1e30, both signs, and the special
// values) no result is more than one float32 ulp from SimpleGo's, and almost all are
// bit-identical (a difference needs a float64 result within a few ulps of a float32
// rounding boundary).
func TestSIMDLogisticMatchesSimpleGoExpression(t *testing.T) {
	ref := func(x float32) float32 {
		if x >= 0 {
			return float32(1.0 / (1.0 + math.Exp(-float64(x))))
		}
		e := math.Exp(float64(x))
		return float32(e / (1.0 + e))
	}
	rng := rand.New(rand.NewPCG(53, 54))
	const n = 1 << 22
	in := make([]float32, n)
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), 1e-45, -1e-45, 3.4e38, -3.4e38, 88.7, -88.7, 103.9, -103.9, 120, -120, 200, -200}
	copy(in, special)
	for i := len(special); i < n; i++ {
		in[i] = float32(math.Pow(10, rng.Float64()*60-30) * float64(1-2*rng.IntN(2)))
		if i%2 == 0 { // half of them where the curve bends
			in[i] = float32(rng.NormFloat64() * 8)
		}
	}
	out := make([]float32, n)
	done := simdLogistic(in, out)
	if !haveSIMDLogistic {
		t.Skip("no AVX2/FMA on this CPU: the assembly does not run here (Logistic uses math.Exp)")
	}
	if done != n {
		t.Fatalf("the assembly did %d of %d elements", done, n)
	}
	differ := 0
	for i, x := range in {
		got, want := out[i], ref(x)
		if want != want {
			if got == got {
				t.Fatalf("logistic(%g) = %g, want NaN", x, got)
			}
			continue
		}
		if got == want {
			continue
		}
		differ++
		if d := int64(math.Float32bits(got)) - int64(math.Float32bits(want)); d > 1 || d < -1 {
			t.Fatalf("logistic(%g) = %g, SimpleGo's expression gives %g (%d ulps)", x, got, want, d)
		}
	}
	t.Logf("%d of %d results differ from SimpleGo's by one ulp", differ, n)
	if differ > n/100000 {
		t.Errorf("%d of %d results differ by one ulp: the exp is less accurate than it should be", differ, n)
	}
}
