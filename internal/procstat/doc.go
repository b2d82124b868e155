// Package procstat reads the current process's memory figures and the machine's processor
// from /proc, for benchmarks that report peak memory and reports that record the machine.
package procstat
