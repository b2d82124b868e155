package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
)

// A small table: 2 tasks × 2 solvers × 4 digits in batches of 2.
const smallSpec = `tasks: [sr4, inpaint-box]
solvers:
  - {name: dps, params: {steps: 12}}
  - pinv
n: 4
batch: 2
`

func writeSpec(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func registry(t *testing.T) *dag.Registry {
	t.Helper()
	reg, err := pipeline.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func plan(t *testing.T, spec string, shards int) (string, *Plan) {
	t.Helper()
	p, tp, err := NewPlan(spec, Options{Shards: shards, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sweep")
	if err := p.Write(dir, tp); err != nil {
		t.Fatal(err)
	}
	return dir, p
}

// comparable is a table row without its timings, which differ from run to run.
func comparable(rows []pipeline.TableRow) []pipeline.TableRow {
	out := make([]pipeline.TableRow, len(rows))
	for i, r := range rows {
		r.SecondsPerImage = 0
		out[i] = r
	}
	return out
}

// Shards run one after the other and merged give the table one machine computes, number
// for number; a shard run again recomputes nothing.
func TestShardsMergeToTheOneMachineTable(t *testing.T) {
	spec := writeSpec(t, smallSpec)
	dir, p := plan(t, spec, 3)
	if len(p.Units) != 8 || p.Block != 2 {
		t.Fatalf("%d units of %d images, want 8 of 2", len(p.Units), p.Block)
	}
	reg := registry(t)
	ctx := context.Background()
	var steps atomic.Int32
	countSteps := func(ev dag.Event) {
		if ev.Type == dag.EventProgress && strings.HasPrefix(ev.Node, "sample/") && strings.Contains(ev.Message, "step") {
			steps.Add(1)
		}
	}
	for i := range p.Shards {
		if err := RunShard(ctx, dir, i, reg, RunOptions{Events: countSteps}); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	if steps.Load() == 0 {
		t.Fatal("the shards ran no sampler steps")
	}
	r, err := Status(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.Done != 8 || r.Left != 0 || r.Running != 0 || r.ETASeconds == nil || *r.ETASeconds != 0 {
		t.Fatalf("status after every shard: %+v", r)
	}
	for _, s := range r.Shards {
		if s.State != StateDone || s.Done != s.Units {
			t.Errorf("shard %+v", s)
		}
	}
	// Again: every unit is found finished.
	var ran atomic.Int32
	count := func(ev dag.Event) {
		if ev.Type == dag.EventStart {
			ran.Add(1)
		}
	}
	if err := RunShard(ctx, dir, 1, reg, RunOptions{Events: count}); err != nil {
		t.Fatal(err)
	}
	var st ShardStatus
	if err := readJSON(shardPath(dir, 1), &st); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 0 || st.Skipped != st.Units || st.State != StateDone {
		t.Fatalf("a rerun ran %d nodes; status %+v", ran.Load(), st)
	}
	// The merge samples nothing: every batch was saved by the shards.
	steps.Store(0)
	merged, err := Merge(ctx, dir, reg, countSteps)
	if err != nil {
		t.Fatal(err)
	}
	if steps.Load() != 0 {
		t.Errorf("the merge ran %d sampler steps", steps.Load())
	}
	for _, f := range []string{pipeline.TableMarkdown, pipeline.TableCSV, pipeline.TableJSON, pipeline.TableGridFile("sr4")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	s, err := pipeline.LoadTableSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := pipeline.PlanTable(s)
	if err != nil {
		t.Fatal(err)
	}
	one, err := pipeline.RunTable(ctx, tp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := comparable(merged.Rows), comparable(one.Rows); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("merged table differs from one machine's:\n%s\nwant\n%s", g, w)
	}
	if merged.Rows[0].Metrics["psnr"].Mean == 0 || merged.Rows[0].Metrics["fd"].Mean == 0 {
		t.Fatalf("empty metrics: %+v", merged.Rows[0])
	}
}

// A shard interrupted in the middle of a batch resumes it from the sampler's checkpoint:
// the rerun starts past step 0, and the merged numbers are those of an uninterrupted run.
func TestInterruptedShardResumes(t *testing.T) {
	spec := writeSpec(t, strings.Replace(smallSpec, "steps: 12", "steps: 30", 1))
	dir, _ := plan(t, spec, 1)
	reg := registry(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopAt := func(ev dag.Event) {
		if ev.Type == dag.EventProgress && strings.HasPrefix(ev.Node, "sample/") && strings.Contains(ev.Message, "step 25/30") {
			cancel()
		}
	}
	err := RunShard(ctx, dir, 0, reg, RunOptions{Events: stopAt})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("interrupted shard: %v", err)
	}
	if r, _ := Status(dir, time.Now()); r.Shards[0].State != StateFailed || r.Done != 0 {
		t.Fatalf("status after the interruption: %+v", r.Shards[0])
	}
	var first string
	resume := func(ev dag.Event) {
		if ev.Type == dag.EventProgress && strings.HasPrefix(ev.Node, "sample/") && first == "" {
			first = ev.Message
		}
	}
	if err := RunShard(context.Background(), dir, 0, reg, RunOptions{Events: resume}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, "step 21/30") {
		t.Fatalf("the rerun's first step: %q, want 21/30 (resumed from the checkpoint at 20)", first)
	}
}

func TestBadPlansAreRefused(t *testing.T) {
	spec := writeSpec(t, smallSpec)
	dir, _ := plan(t, spec, 2)
	reg := registry(t)
	ctx := context.Background()
	var rangeErr *ShardRangeError
	if err := RunShard(ctx, dir, 2, reg, RunOptions{}); !errors.As(err, &rangeErr) || !strings.Contains(err.Error(), "2 shards (0–1)") {
		t.Errorf("shard out of range: %v", err)
	}
	if _, _, err := Open(filepath.Join(t.TempDir(), "gone"), reg); err == nil || !strings.Contains(err.Error(), "shared filesystem") {
		t.Errorf("missing folder: %v", err)
	}
	if _, _, err := Open(t.TempDir(), reg); err == nil || !strings.Contains(err.Error(), "holds no sweep plan") {
		t.Errorf("empty folder: %v", err)
	}
	// Another version: a kind's code version differs.
	other := filepath.Join(t.TempDir(), "other")
	copyDir(t, dir, other)
	var p Plan
	if err := readJSON(filepath.Join(other, PlanFile), &p); err != nil {
		t.Fatal(err)
	}
	p.Kinds["sample"] = "2 0123456789ab"
	if err := writeJSON(filepath.Join(other, PlanFile), &p); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(other, reg); err == nil || !strings.Contains(err.Error(), "another version of dpsflow") || !strings.Contains(err.Error(), "kind sample") {
		t.Errorf("plan of another version: %v", err)
	}
	// The spec changes after planning: the new steps are named.
	if err := os.WriteFile(spec, []byte(strings.Replace(smallSpec, "steps: 12", "steps: 13", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, reg); err == nil || !strings.Contains(err.Error(), "changed after planning") || !strings.Contains(err.Error(), "solver/sr4/dps") {
		t.Errorf("changed spec: %v", err)
	}
	// A comment is no change.
	if err := os.WriteFile(spec, []byte("# a comment\n"+smallSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(dir, reg); err != nil {
		t.Errorf("a comment refused: %v", err)
	}
	// Planning into a folder that holds another plan.
	p2, tp2, err := NewPlan(spec, Options{Shards: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Write(dir, tp2); err == nil || !strings.Contains(err.Error(), "another spec or split") {
		t.Errorf("re-plan into a used folder: %v", err)
	}
	if _, _, err := NewPlan(spec, Options{Shards: 2, Block: 3}); err == nil || !strings.Contains(err.Error(), "multiple of the spec's batch (2)") {
		t.Errorf("block of 3: %v", err)
	}
	if _, err := Merge(ctx, dir, reg, nil); err == nil || !strings.Contains(err.Error(), "8 of 8 units") {
		t.Errorf("merge before the shards: %v", err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
