package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseTableSpec: any bytes read as a table spec give a checked spec whose tasks and
// labels can be asked for, or an error naming the file; never a panic.
func FuzzParseTableSpec(f *testing.F) {
	paths, err := filepath.Glob("../../notebooks/tables/*.yaml")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no table specs in notebooks/tables: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("tasks: [sr4]\nsolvers: [dps, {name: daps, label: d, params: {lr: 1e-4}}]\nn: 2\nseed: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer hangGuard()()
		s, err := ParseTableSpec(b, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(s.Labels()) != len(s.Solvers) || len(s.Tasks) == 0 {
			t.Fatalf("%d labels for %d solvers, %d tasks", len(s.Labels()), len(s.Solvers), len(s.Tasks))
		}
		for i := range s.Tasks {
			s.Task(i)
		}
	})
}

// hangGuard crashes the fuzzing process if one input takes over 10 s, so that a hang is
// reported with its input like a panic (go's fuzzer has no time limit per input). Use as
// defer hangGuard()().
func hangGuard() func() bool {
	return time.AfterFunc(10*time.Second, func() { panic("one input took over 10 s (a hang)") }).Stop
}
