package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/internal/sampleblock"
	"github.com/dpsflow/dpsflow/nodes/solver"
)

// Shard states in a shard's status file (Status adds NotStarted and Lost).
const (
	StateRunning    = "running"
	StateDone       = "done"
	StateFailed     = "failed"
	StateNotStarted = "not started"
	// StateLost: the status says running but its heartbeat stopped (the worker was killed
	// without a chance to say so, or its machine went away).
	StateLost = "lost"
)

// ShardStatus is shards/I.json, rewritten by the shard as it goes.
type ShardStatus struct {
	Shard    int       `json:"shard"`
	State    string    `json:"state"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Job      string    `json:"job,omitempty"` // the scheduler's id of the worker (Slurm job_task, pod)
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"` // the heartbeat
	Units    int       `json:"units"`
	Done     int       `json:"done"`    // units finished, by this run or earlier ones
	Skipped  int       `json:"skipped"` // of those, found finished at the start (not recomputed)
	Error    string    `json:"error,omitempty"`
	Finished time.Time `json:"finished,omitzero"`
}

// UnitRecord is units/ID.json: a finished unit.
type UnitRecord struct {
	Unit     string    `json:"unit"`
	Shard    int       `json:"shard"`
	Host     string    `json:"host"`
	Seconds  float64   `json:"seconds"`
	Finished time.Time `json:"finished"`
	// Diverged: the solver's state became NaN/Inf on these images; the table shows the
	// cell as diverged (a result, like on one machine).
	Diverged string `json:"diverged,omitempty"`
}

// ShardRangeError is a shard index the plan does not have.
type ShardRangeError struct {
	Shard, Shards int
	Dir           string
}

func (e *ShardRangeError) Error() string {
	return fmt.Sprintf("shard %d is out of range: %s has %d shards (0–%d)", e.Shard, e.Dir, e.Shards, e.Shards-1)
}

// ShardFromEnv is the shard index a cluster gives its worker: Slurm's
// SLURM_ARRAY_TASK_ID or Kubernetes' JOB_COMPLETION_INDEX. ok is false when neither is set.
func ShardFromEnv() (shard int, from string, ok bool, err error) {
	for _, name := range []string{"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"} {
		if v, set := os.LookupEnv(name); set && v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				return 0, name, false, fmt.Errorf("$%s=%q is not a shard index", name, v)
			}
			return i, name, true, nil
		}
	}
	return 0, "", false, nil
}

// RunOptions are RunShard's.
type RunOptions struct {
	Events    func(dag.Event) // progress of the unit's nodes; may be nil
	Log       io.Writer       // a line per unit; may be nil
	Heartbeat time.Duration   // how often the status file is touched; 0: 30 s
}

// BlockDone reports whether a node event is a sample node stopping at the end of its
// block: the expected end of a unit, not a failure.
func BlockDone(ev dag.Event) bool {
	return ev.Type == dag.EventFailed && errors.Is(ev.Err, sampleblock.ErrBlockDone)
}

// RunShard runs the units of shard i of the plan in dir that no run has finished yet.
// Units whose solver diverges are finished (the table reports them so); other failures
// are collected and the shard fails after trying every unit. A cancelled ctx stops it
// between sampler steps (the next run resumes from the checkpoints).
func RunShard(ctx context.Context, dir string, shard int, reg *dag.Registry, opts RunOptions) error {
	p, g, err := Open(dir, reg)
	if err != nil {
		return err
	}
	if shard < 0 || shard >= p.Shards {
		return &ShardRangeError{Shard: shard, Dir: dir, Shards: p.Shards}
	}
	cache, err := dag.OpenCache(filepath.Join(dir, CacheDir))
	if err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}
	host, _ := os.Hostname()
	units := p.ShardUnits(shard)
	st := &ShardStatus{Shard: shard, State: StateRunning, Host: host, PID: os.Getpid(), Job: jobID(),
		Started: time.Now().UTC(), Units: len(units)}
	var mu sync.Mutex // st is written by the heartbeat too
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		st.Updated = time.Now().UTC()
		return writeJSON(shardPath(dir, shard), st)
	}
	if err := save(); err != nil {
		return fmt.Errorf("writing the shard's status into %s: %w", dir, err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		every := opts.Heartbeat
		if every <= 0 {
			every = 30 * time.Second
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = save()
			}
		}
	}()
	finish := func(state string, err error) error {
		mu.Lock()
		st.State, st.Finished = state, time.Now().UTC()
		if err != nil {
			st.Error = err.Error()
		}
		mu.Unlock()
		if serr := save(); serr != nil && err == nil {
			err = serr
		}
		return err
	}
	var failed []error
	for _, u := range units {
		if rec, err := ReadUnit(dir, u.ID); err == nil {
			mu.Lock()
			st.Done++
			st.Skipped++
			mu.Unlock()
			logf("unit %s: finished earlier (shard %d on %s, %.1f s); not recomputed", u.ID, rec.Shard, rec.Host, rec.Seconds)
			continue
		}
		logf("unit %s: images %d–%d of %s on %s", u.ID, u.Lo, u.Hi-1, u.Solver, u.Task)
		start := time.Now()
		diverged, err := runUnit(ctx, g, u, reg, cache, opts.Events)
		if ctx.Err() != nil {
			return finish(StateFailed, fmt.Errorf("interrupted in unit %s (finished batches are saved; run the shard again to resume): %w", u.ID, ctx.Err()))
		}
		if err != nil {
			logf("unit %s: FAILED: %v", u.ID, err)
			failed = append(failed, fmt.Errorf("unit %s: %w", u.ID, err))
			continue
		}
		rec := UnitRecord{Unit: u.ID, Shard: shard, Host: host, Seconds: time.Since(start).Seconds(), Finished: time.Now().UTC(), Diverged: diverged}
		if err := writeJSON(unitPath(dir, u.ID), rec); err != nil {
			return finish(StateFailed, fmt.Errorf("recording unit %s in %s: %w", u.ID, dir, err))
		}
		mu.Lock()
		st.Done++
		mu.Unlock()
		if diverged != "" {
			logf("unit %s: diverged (%s) in %.1f s; the table shows it", u.ID, diverged, rec.Seconds)
		} else {
			logf("unit %s: done in %.1f s", u.ID, rec.Seconds)
		}
		_ = save()
	}
	if len(failed) > 0 {
		return finish(StateFailed, fmt.Errorf("shard %d: %d of %d units failed: %w", shard, len(failed), len(units), errors.Join(failed...)))
	}
	return finish(StateDone, nil)
}

// runUnit runs the part of the DAG that unit u needs, its sample node restricted to the
// unit's images. diverged is the solver's divergence, if that is how it ended.
func runUnit(ctx context.Context, g *dag.Graph, u Unit, reg *dag.Registry, cache *dag.Cache, events func(dag.Event)) (diverged string, err error) {
	sub, err := Subgraph(g, u.Node)
	if err != nil {
		return "", err
	}
	runner := &dag.Runner{Registry: reg, Cache: cache, Events: events}
	res, err := runner.Run(sampleblock.With(ctx, sampleblock.Range{Lo: u.Lo, Hi: u.Hi}), sub)
	if res == nil {
		return "", err
	}
	for _, n := range sub.Nodes {
		e := res.Errors[n.ID]
		var d *solver.DivergedError
		switch {
		case e == nil || errors.Is(e, sampleblock.ErrBlockDone):
		case n.ID == u.Node && errors.As(e, &d):
			diverged = e.Error()
		default:
			return "", &dag.NodeError{Node: n.ID, Kind: n.Kind, Err: e}
		}
	}
	return diverged, nil
}

// Subgraph is the part of g that node needs: it and everything upstream, with the same
// ids, params and seeds, so that every node has the cache key it has in g.
func Subgraph(g *dag.Graph, node string) (*dag.Graph, error) {
	up, err := g.Upstream(node)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{node: true}
	for _, id := range up {
		keep[id] = true
	}
	sub := g.Clone()
	all := sub.Nodes
	sub.Nodes = nil
	for _, n := range all {
		if keep[n.ID] {
			sub.Nodes = append(sub.Nodes, n)
		}
	}
	return sub, nil
}

func jobID() string {
	if j := os.Getenv("SLURM_ARRAY_JOB_ID"); j != "" {
		return j + "_" + os.Getenv("SLURM_ARRAY_TASK_ID")
	}
	if pod := os.Getenv("HOSTNAME"); os.Getenv("JOB_COMPLETION_INDEX") != "" {
		return pod
	}
	return ""
}

func shardPath(dir string, i int) string {
	return filepath.Join(dir, ShardsDir, fmt.Sprintf("%d.json", i))
}

func unitPath(dir, id string) string { return filepath.Join(dir, UnitsDir, id+".json") }

// ReadUnit reads the record of a finished unit.
func ReadUnit(dir, id string) (*UnitRecord, error) {
	var r UnitRecord
	if err := readJSON(unitPath(dir, id), &r); err != nil {
		return nil, err
	}
	if r.Unit != id {
		return nil, fmt.Errorf("%s: record of unit %q", unitPath(dir, id), r.Unit)
	}
	return &r, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
