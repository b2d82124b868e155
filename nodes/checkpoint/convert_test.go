package checkpoint

import (
	"math"
	"testing"

	"github.com/x448/float16"
)

// halfToFloat32 agrees with github.com/x448/float16 (the type GoMLX uses) on all 65536
// bit patterns, NaN payloads included (signalling NaNs come out quiet).
func TestHalfToFloat32Exhaustive(t *testing.T) {
	for h := range 1 << 16 {
		got := math.Float32bits(halfToFloat32(uint16(h)))
		want := math.Float32bits(float16.Frombits(uint16(h)).Float32())
		if got != want {
			t.Fatalf("half %#04x: got %#08x, want %#08x", h, got, want)
		}
	}
}
