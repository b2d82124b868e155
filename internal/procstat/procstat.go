package procstat

import (
	"os"
	"strconv"
	"strings"
)

// PeakRSSMiB is the process's peak resident set size (VmHWM in /proc/self/status) in MiB,
// 0 where /proc is missing (not Linux).
func PeakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}
