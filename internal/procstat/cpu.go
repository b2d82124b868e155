package procstat

import (
	"os"
	"strings"
)

// CPUModel is the processor's model name (the first "model name" of /proc/cpuinfo), "" where
// /proc is missing (not Linux) or does not name it (e.g. some ARM kernels).
func CPUModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	return cpuModelFrom(string(data))
}

// cpuModelFrom finds the first "model name : …" line of a /proc/cpuinfo text.
func cpuModelFrom(cpuinfo string) string {
	for _, line := range strings.Split(cpuinfo, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
