package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad sweep input exits 2 with one line naming what is wrong, and creates nothing.
func TestSweepBadInputExitsTwo(t *testing.T) {
	tmp := t.TempDir()
	spec := filepath.Join(tmp, "spec.yaml")
	must(t, os.WriteFile(spec, []byte("tasks: [sr4]\nsolvers: [pinv]\nn: 4\nbatch: 2\n"), 0o644))
	dir := filepath.Join(tmp, "sweep")
	if out, code, err := runCLI(t, "sweep", "plan", spec, "--shards", "2", "--out", dir); code != 0 {
		t.Fatalf("plan: exit %d: %v\n%s", code, err, out)
	}
	t.Setenv("SLURM_ARRAY_TASK_ID", "")
	t.Setenv("JOB_COMPLETION_INDEX", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "run", dir}, "give --shard I"},
		{[]string{"sweep", "run", dir, "--shard", "2"}, "shard 2 is out of range"},
		{[]string{"sweep", "run", filepath.Join(tmp, "nowhere"), "--shard", "0"}, "shared filesystem"},
		{[]string{"sweep", "status", tmp}, "holds no sweep plan"},
		{[]string{"sweep", "plan", spec, "--shards", "0", "--out", filepath.Join(tmp, "new")}, "--shards 0"},
		{[]string{"sweep", "plan", spec, "--shards", "2", "--block", "3", "--out", filepath.Join(tmp, "new")}, "--block 3"},
		{[]string{"sweep", "export", dir}, "one of --slurm and --k8s"},
		{[]string{"sweep", "export", dir, "--k8s", "--image", "x"}, "--pvc"},
		{[]string{"sweep", "run", dir, "--local", "--workers", "0"}, "--workers 0"},
	} {
		out, code, err := runCLI(t, c.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d, %v, want 2 and %q\n%s", c.args, code, err, c.want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "new")); err == nil {
		t.Error("a refused plan created its folder")
	}
	t.Setenv("SLURM_ARRAY_TASK_ID", "x1")
	if _, code, err := runCLI(t, "sweep", "run", dir); code != 2 || !strings.Contains(err.Error(), `$SLURM_ARRAY_TASK_ID="x1"`) {
		t.Errorf("bad $SLURM_ARRAY_TASK_ID: exit %d, %v", code, err)
	}
}
