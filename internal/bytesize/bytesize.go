package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units: SI units (kB, MB...) are powers of 1000, IEC ones (KiB, MiB...) and the bare
// letters (K, M...) powers of 1024, as du and ls print them. Case does not matter.
var units = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// Parse reads a size such as 2GiB, 500 MiB, 1.5G, 10kB or 1000000 (bytes).
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (use B, KiB, MiB, GiB, TiB, kB, MB, GB, TB)", s, t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("size %q: want a number and a unit, such as 2GiB or 500MiB", s)
	}
	b := v * mult
	if v < 0 || math.IsNaN(b) || b >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(b), nil
}

// Format writes b with a binary unit and one decimal at most: "512 B", "1.5 KiB", "2 GiB".
func Format(b int64) string {
	if b < 1024 {
		return fmt.Sprintf("%d B", b)
	}
	f := float64(b)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if f < 1024 || u == "TiB" {
			return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0") + " " + u
		}
	}
	return "" // not reached
}
