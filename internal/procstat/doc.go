// Package procstat reads the current process's memory figures and the machine it runs on
// (from /proc and the Go runtime), for benchmarks that report peak memory and reports that
// record the machine.
package procstat
