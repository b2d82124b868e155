package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
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
		defer fuzzguard.Hang()()
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
