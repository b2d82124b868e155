package number

import (
	"math"
	"testing"
)

func TestFloat(t *testing.T) {
	for _, c := range []struct {
		v    any
		want float64
		ok   bool
	}{{int8(-3), -3, true}, {uint64(7), 7, true}, {float32(0.5), 0.5, true}, {2.25, 2.25, true}, {"3", 0, false}, {true, 0, false}, {nil, 0, false}} {
		if got, ok := Float(c.v); got != c.want || ok != c.ok {
			t.Errorf("Float(%#v) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
	if f, ok := Float(math.NaN()); !ok || !math.IsNaN(f) {
		t.Errorf("Float(NaN) = %v, %v", f, ok)
	}
}
