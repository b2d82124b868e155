// Package procstat reads the current process's memory figures from /proc, for benchmarks
// that report peak memory.
package procstat
