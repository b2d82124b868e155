package kernel

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/dpsflow/dpsflow/internal/bytesize"
)

// DefaultMaxMemory is the default of dpsflow kernel --max-memory: three quarters of
// the machine's (or the container's) memory.
const DefaultMaxMemory = "75%"

// ParseMemory reads a memory size: bytes ("1073741824"), a size with a unit ("4GiB",
// "512MiB", "1.5GB", "2g"; KiB..TiB and K..T are powers of 1024, KB..TB of 1000), a
// percentage of the machine's memory ("75%", of the cgroup's limit when it is lower),
// or "0" / "off" for no bound (0).
func ParseMemory(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "", "0", "off", "none":
		return 0, nil
	}
	if p, ok := strings.CutSuffix(t, "%"); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || f > 100 || math.IsNaN(f) {
			return 0, fmt.Errorf("memory size %q: want a percentage between 0 and 100", s)
		}
		total, err := SystemMemory()
		if err != nil {
			return 0, fmt.Errorf("memory size %q: %w; give a size such as 4GiB", s, err)
		}
		return int64(float64(total) * f / 100), nil
	}
	b, err := bytesize.Parse(t)
	if err != nil {
		return 0, fmt.Errorf("memory size %q: want bytes, a size such as 4GiB or 512MiB, a percentage such as 75%%, or off", s)
	}
	return b, nil
}

// FormatMemory writes a size in bytes with a binary unit (3.5 GiB).
func FormatMemory(b int64) string { return bytesize.Format(b) }

// SystemMemory is the memory this process may use: the machine's, or the cgroup's
// limit (a container's) when that is lower.
func SystemMemory() (int64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, errors.New("the machine's memory is unknown here (no /proc/meminfo)")
	}
	var total int64
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					total = kb << 10
				}
			}
		}
	}
	if total <= 0 {
		return 0, errors.New("the machine's memory is unknown here (no MemTotal in /proc/meminfo)")
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			if lim, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && lim > 0 && lim < total {
				total = lim
			}
		}
	}
	return total, nil
}

// residentMemory is the resident set size of process pid, in bytes.
func residentMemory(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/statm: %q", pid, data)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/statm: %w", pid, err)
	}
	return pages * int64(os.Getpagesize()), nil
}
