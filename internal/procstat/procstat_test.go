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

func TestCPUModelFromCPUInfo(t *testing.T) {
	const cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B45 128-Core Processor\nflags\t\t: fpu\n\nprocessor\t: 1\nmodel name\t: other\n"
	if got, want := cpuModelFrom(cpuinfo), "AMD EPYC 9B45 128-Core Processor"; got != want {
		t.Errorf("cpuModelFrom = %q, want %q", got, want)
	}
	if got := cpuModelFrom("processor\t: 0\nFeatures\t: fp asimd\n"); got != "" {
		t.Errorf("cpuModelFrom without a model name = %q, want empty", got)
	}
}
