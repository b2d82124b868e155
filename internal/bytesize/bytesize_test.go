package bytesize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"2GiB": 2 << 30, "500MiB": 500 << 20, "500M": 500 << 20, "1.5G": 3 << 29, "1GB": 1e9, "10kB": 10_000,
		"123": 123, "7 KiB": 7168, "1TiB": 1 << 40, "64b": 64, "512 mib": 512 << 20, "2g": 2 << 30,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "2XB", "1.2.3M", "-5M", "1e30TiB", "NaN", "4 parsecs"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
}

func TestFormat(t *testing.T) {
	for b, want := range map[int64]string{100: "100 B", 1536: "1.5 KiB", 512 << 20: "512 MiB", 3 << 29: "1.5 GiB", 1<<30 + 1<<20: "1 GiB"} {
		if got := Format(b); got != want {
			t.Errorf("Format(%d) = %q, want %q", b, got, want)
		}
	}
}
