package procstat

import (
	"os"
	"runtime"
	"strings"
)

// Machine is the machine and Go build a process runs on, for the reports that record where
// a result was made (the training reports' train.json).
type Machine struct {
	CPU       string `json:"cpu,omitempty"` // the processor's model name; "" where /proc does not give it
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
}

// ThisMachine is the Machine of the current process.
func ThisMachine() Machine {
	return Machine{CPU: CPUModel(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
}

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
