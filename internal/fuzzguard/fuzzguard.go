// Package fuzzguard turns a hang in a fuzz target into a crash with its input: Go's fuzzer
// has no time limit per input.
package fuzzguard

import "time"

// Limit is how long one fuzz input may run.
const Limit = 10 * time.Second

// Hang panics if the input being fuzzed takes over Limit, so that the hang is reported with
// its input like any crash. Use as the first line of a fuzz function:
//
//	defer fuzzguard.Hang()()
func Hang() (stop func() bool) {
	return time.AfterFunc(Limit, func() { panic("one input took over 10 s (a hang)") }).Stop
}
