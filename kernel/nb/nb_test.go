package nb

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/task"
)

func TestCacheDir(t *testing.T) {
	t.Setenv("DPSFLOW_CACHE", "/some/cache")
	if got := CacheDir(); got != "/some/cache" {
		t.Errorf("with $DPSFLOW_CACHE: %q", got)
	}
	t.Setenv("DPSFLOW_CACHE", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	t.Setenv("HOME", "/home/u")
	if got := CacheDir(); got != filepath.Join("/xdg", "dpsflow", "notebooks") {
		t.Errorf("with $XDG_CACHE_HOME: %q", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if got := CacheDir(); !strings.HasSuffix(got, "dpsflow-notebooks") {
		t.Errorf("without HOME: %q, want a folder in the temporary directory", got)
	}
}

// ExecuteAll returns the outcomes in the order of the specs, equal to those of single
// runs, and a failed job panics with its position and name once every job has finished.
func TestExecuteAll(t *testing.T) {
	t.Setenv("DPSFLOW_CACHE", t.TempDir())
	spec := func(name string, steps int) pipeline.RunSpec {
		tk, err := task.Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		return pipeline.RunSpec{Name: name, Task: tk, Builtin: pipeline.BuiltinMNIST, N: 1, Steps: steps, Batch: 1, Seed: 1, Backend: "embedded"}
	}
	outs := ExecuteAll(spec("inpaint-box", 2), spec("sr4", 3), spec("inpaint-box", 3))
	for i, want := range []struct {
		op    string
		steps int
	}{{"inpainting", 2}, {"super_resolution", 3}, {"inpainting", 3}} {
		if got := outs[i].Trace.Steps; got != want.steps || outs[i].Recon == nil || outs[i].Metrics == nil {
			t.Errorf("outcome %d: %d steps, recon %v, want %d steps (order kept)", i, got, outs[i].Recon != nil, want.steps)
		}
	}
	again := Execute(spec("sr4", 3)) // from the cache: the same bytes
	if fmt.Sprint(again.Recon.Pixels) != fmt.Sprint(outs[1].Recon.Pixels) {
		t.Error("Execute of the same spec gives other pixels than ExecuteAll")
	}
	if st := again.Result.Status["sample"]; st != "cached" {
		t.Errorf("rerun: sample node %s, want cached", st)
	}

	bad := spec("sr4", 2)
	bad.Task = nil
	defer func() {
		r := recover()
		if err, ok := r.(error); !ok || !strings.Contains(err.Error(), "job 1 (sr4)") {
			t.Errorf("a failed job: recovered %v, want an error naming job 1 (sr4)", r)
		}
	}()
	ExecuteAll(spec("inpaint-box", 2), bad)
	t.Error("no panic for a failed job")
}
