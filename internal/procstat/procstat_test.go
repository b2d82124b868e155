package procstat

import (
	"runtime"
	"testing"
)

// The peak covers memory the process touched: after writing 64 MiB it is at least that.
func TestPeakRSSCoversTouchedMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("VmHWM is Linux's")
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	if got := PeakRSSMiB(); got < 64 {
		t.Fatalf("peak RSS %.1f MiB after touching 64 MiB", got)
	}
	runtime.KeepAlive(buf)
}
