package dag

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunValues(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt)}
	res := mustRun(t, r, chainGraph())
	v, err := res.Value("d.text")
	if err != nil || v != "7.50" {
		t.Fatalf("d.text = %v, %v", v, err)
	}
	if got := statuses(res); got != "a=ran b=ran c=ran d=ran e=ran" {
		t.Fatal(got)
	}
	if len(res.Keys) != 0 {
		t.Errorf("keys without a cache: %v", res.Keys)
	}
	if _, err := res.Value("d.nope"); err == nil {
		t.Error("Value of a missing port: no error")
	}
}

func TestRunValidationError(t *testing.T) {
	r := &Runner{Registry: testRegistry(t, &counts{})}
	g := chainGraph()
	g.Node("c").Params["steps"] = "x"
	res, err := r.Run(context.Background(), g)
	var ve *ValidationError
	if !errors.As(err, &ve) || res != nil {
		t.Fatalf("want *ValidationError and no result, got %v %v", res, err)
	}
}

func openCache(t *testing.T) *Cache {
	t.Helper()
	c, err := OpenCache(filepath.Join(t.TempDir(), "cache"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCacheHitsOnRerun(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := chainGraph()
	first := mustRun(t, r, g)
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("first run ran %v", got)
	}
	cnt.reset()
	second := mustRun(t, r, g)
	if got := cnt.ran(); len(got) != 0 {
		t.Fatalf("second run ran %v, want nothing", got)
	}
	if got := statuses(second); got != "a=cached b=cached c=cached d=cached e=cached" {
		t.Fatal(got)
	}
	if !reflect.DeepEqual(first.Values, second.Values) || !reflect.DeepEqual(first.Keys, second.Keys) {
		t.Fatalf("cached values differ:\n%v\n%v", first.Values, second.Values)
	}
	if len(second.Keys) != 5 {
		t.Fatalf("keys: %v", second.Keys)
	}
	// A fresh Cache on the same directory (another process, say) sees the same.
	c2, err := OpenCache(r.Cache.Dir())
	if err != nil {
		t.Fatal(err)
	}
	r2 := &Runner{Registry: r.Registry, Cache: c2}
	mustRun(t, r2, g)
	if got := cnt.ran(); len(got) != 0 {
		t.Fatalf("run with a reopened cache ran %v", got)
	}
}

func TestParamChangeRerunsNodeAndDependents(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := chainGraph()
	mustRun(t, r, g)

	cnt.reset()
	g.Node("b").Params["plus"] = 2
	res := mustRun(t, r, g)
	want, _ := g.Downstream("b")
	want = append([]string{"b"}, want...)
	if got := cnt.ran(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after changing b: ran %v, want %v", got, want)
	}
	if v, _ := res.Value("d.text"); v != "10.00" {
		t.Fatalf("d.text = %v", v)
	}
	if got := statuses(res); got != "a=cached b=ran c=ran d=ran e=cached" {
		t.Fatal(got)
	}

	// Changing a default-valued param to its default value changes nothing.
	cnt.reset()
	g.Node("c").Params["on"] = true
	mustRun(t, r, g)
	if got := cnt.ran(); len(got) != 0 {
		t.Fatalf("setting a param to its default reran %v", got)
	}
	// Numbers are normalised: 100 as an int64 is the same key as 100 as an int.
	g.Node("c").Params["steps"] = int64(100)
	mustRun(t, r, g)
	if got := cnt.ran(); len(got) != 0 {
		t.Fatalf("an int64 param reran %v", got)
	}

	// Back to the first value: everything is in the cache already.
	g.Node("b").Params["plus"] = 1
	mustRun(t, r, g)
	if got := cnt.ran(); len(got) != 0 {
		t.Fatalf("going back reran %v", got)
	}

	// A seed change reruns everything.
	g.Seed++
	mustRun(t, r, g)
	if got := cnt.ran(); len(got) != 5 {
		t.Fatalf("seed change ran %v", got)
	}
	// A node seed overrides the graph seed: that node reruns, and its dependents only if
	// its output changed. const ignores the seed, so only a reruns.
	cnt.reset()
	g.Node("a").Seed = u64(1)
	mustRun(t, r, g)
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("node seed change ran %v", got)
	}
}

func TestVersionChangeReruns(t *testing.T) {
	cnt := &counts{}
	cache := openCache(t)
	reg := testRegistry(t, cnt)
	g := chainGraph()
	mustRun(t, &Runner{Registry: reg, Cache: cache}, g)

	// The same kinds with "scale" at version 2 (same behaviour).
	reg2 := withScaleVersion(reg, "2")
	cnt.reset()
	res := mustRun(t, &Runner{Registry: reg2, Cache: cache}, g)
	// c reruns; its output is identical, so d (content-addressed on c's output) is reused.
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("version change ran %v, want [c]", got)
	}
	if res.Status["d"] != StatusCached {
		t.Fatalf("d: %s", res.Status["d"])
	}
}

func TestMemoryOnlyNeverCached(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := &Graph{Name: "mem"}
	g.Add("a", "const", map[string]any{"value": 4}, nil)
	g.Add("h", "open", nil, map[string]string{"x": "a.out"})
	g.Add("r", "read", nil, map[string]string{"h": "h.h"})
	g.Add("s", "add", nil, map[string]string{"a": "r.out"}) // fed by an uncached node, but an int: cacheable
	for i := range 3 {
		cnt.reset()
		res := mustRun(t, r, g)
		if v, _ := res.Value("s.out"); v != 4 {
			t.Fatalf("s.out = %v", v)
		}
		want := []string{"h", "r"}
		if i == 0 {
			want = []string{"a", "h", "r", "s"}
		}
		if got := cnt.ran(); !reflect.DeepEqual(got, want) {
			t.Fatalf("run %d ran %v, want %v", i, got, want)
		}
		if _, ok := res.Keys["h"]; ok {
			t.Fatal("memory-only node has a key")
		}
		if _, ok := res.Keys["r"]; ok {
			t.Fatal("node fed by a memory-only value has a key")
		}
	}
	// Only a and s are on disk.
	if n := countEntries(t, r.Cache); n != 2 {
		t.Fatalf("%d cache entries, want 2", n)
	}
}

func TestNoCacheKindAlwaysRuns(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := &Graph{}
	g.Add("t", "touch", map[string]any{"value": 3}, nil)
	g.Add("s", "add", nil, map[string]string{"a": "t.out"})
	mustRun(t, r, g)
	cnt.reset()
	res := mustRun(t, r, g)
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"t"}) {
		t.Fatalf("ran %v, want [t]: the NoCache node always runs, its unchanged output is reused", got)
	}
	if res.Status["s"] != StatusCached {
		t.Fatal(statuses(res))
	}
}

func countEntries(t *testing.T, c *Cache) int {
	t.Helper()
	n := 0
	shards, _ := os.ReadDir(filepath.Join(c.Dir(), "objects"))
	for _, s := range shards {
		es, _ := os.ReadDir(filepath.Join(c.Dir(), "objects", s.Name()))
		n += len(es)
	}
	return n
}

func TestForce(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := chainGraph()
	mustRun(t, r, g)
	cnt.reset()
	r.Force = []string{"b"}
	res := mustRun(t, r, g)
	// b reruns; same output, so its dependents are reused.
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"b"}) {
		t.Fatalf("forced run ran %v", got)
	}
	if res.Status["c"] != StatusCached {
		t.Fatal(statuses(res))
	}
	r.Force = []string{"zz"}
	if _, err := r.Run(context.Background(), g); err == nil || !strings.Contains(err.Error(), `"zz"`) {
		t.Fatalf("Force unknown node: %v", err)
	}
}

// Two independent nodes must run at the same time: each waits for the other to start.
func TestIndependentNodesRunConcurrently(t *testing.T) {
	reg := NewRegistry()
	var started sync.WaitGroup
	started.Add(2)
	allStarted := make(chan struct{})
	go func() { started.Wait(); close(allStarted) }()
	reg.MustRegister(Kind{
		Name: "meet", Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			started.Done()
			select {
			case <-allStarted:
			case <-time.After(10 * time.Second):
				return errors.New("the other node never started: nodes ran one at a time")
			}
			c.Set("out", 1)
			return nil
		},
	})
	g := &Graph{}
	g.Add("x", "meet", nil, nil)
	g.Add("y", "meet", nil, nil)
	if _, err := (&Runner{Registry: reg, Parallel: 2}).Run(context.Background(), g); err != nil {
		t.Fatal(err)
	}
}

func TestParallelBound(t *testing.T) {
	reg := NewRegistry()
	var cur, peak atomic.Int32
	reg.MustRegister(Kind{
		Name: "work", Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			cur.Add(-1)
			c.Set("out", 1)
			return nil
		},
	})
	g := &Graph{}
	for i := range 12 {
		g.Add(fmt.Sprint("n", i), "work", nil, nil)
	}
	for _, par := range []int{1, 3} {
		peak.Store(0)
		if _, err := (&Runner{Registry: reg, Parallel: par}).Run(context.Background(), g); err != nil {
			t.Fatal(err)
		}
		if p := peak.Load(); p > int32(par) {
			t.Fatalf("Parallel=%d: %d nodes ran at once", par, p)
		}
	}
}

func TestFailureSkipsDependentsIndependentsFinish(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t), Parallel: 1}
	g := chainGraph()
	g.Add("bad", "fail", nil, map[string]string{"x": "a.out"})
	g.Add("after", "add", nil, map[string]string{"a": "bad.out"})
	g.Add("after2", "add", nil, map[string]string{"a": "after.out", "b": "e.out"})
	var events []Event
	r.Events = func(e Event) { events = append(events, e) }
	res, err := r.Run(context.Background(), g)
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != "bad" || ne.Kind != "fail" || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want NodeError for bad, got %v", err)
	}
	if got := statuses(res); got != "a=ran after=skipped after2=skipped b=ran bad=failed c=ran d=ran e=ran" {
		t.Fatal(got)
	}
	if v, _ := res.Value("d.text"); v != "7.50" {
		t.Fatalf("independent branch: %v", v)
	}
	if cnt.get("after") != 0 || cnt.get("after2") != 0 {
		t.Fatal("a dependent of a failed node ran")
	}
	var skipped []string
	for _, e := range events {
		if e.Type == EventSkipped {
			skipped = append(skipped, e.Node+": "+e.Message)
		}
	}
	if want := []string{`after: upstream "bad" failed`, `after2: upstream "after" skipped`}; !reflect.DeepEqual(skipped, want) {
		t.Fatalf("skip events %v", skipped)
	}
	// The failure is not cached: the next run tries again.
	cnt.reset()
	r.Run(context.Background(), g)
	if cnt.get("bad") != 1 {
		t.Fatal("failed node not retried")
	}
}

func TestPanicBecomesNodeError(t *testing.T) {
	r := &Runner{Registry: testRegistry(t, &counts{})}
	g := &Graph{}
	g.Add("p", "panic", nil, nil)
	g.Add("ok", "const", map[string]any{"value": 1}, nil)
	res, err := r.Run(context.Background(), g)
	var ne *NodeError
	var pe *PanicError
	if !errors.As(err, &ne) || ne.Node != "p" || !errors.As(err, &pe) {
		t.Fatalf("want NodeError{p} wrapping PanicError, got %T %v", err, err)
	}
	if !strings.Contains(err.Error(), `node "p"`) || !strings.Contains(err.Error(), "nil map") {
		t.Fatalf("error %q", err)
	}
	if res.Status["ok"] != StatusRan {
		t.Fatal(statuses(res))
	}
}

func TestNodeMisuse(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(Kind{Name: "noset", Outputs: []Port{{Name: "a", Type: "int"}, {Name: "b", Type: "int"}},
		Run: func(c *Call) error { c.Set("a", 1); return nil }})
	reg.MustRegister(Kind{Name: "wrongtype", Outputs: []Port{{Name: "a", Type: "int"}},
		Run: func(c *Call) error { c.Set("a", "one"); return nil }})
	reg.MustRegister(Kind{Name: "badport", Outputs: []Port{{Name: "a", Type: "int"}},
		Run: func(c *Call) error { c.Set("a", 1); c.Set("zz", 2); return nil }})
	reg.MustRegister(Kind{Name: "badparam", Outputs: []Port{{Name: "a", Type: "int"}},
		Params: []Param{{Name: "p", Type: "float", Default: 1}},
		Run:    func(c *Call) error { c.Set("a", c.Int("p")); return nil }})
	for kind, want := range map[string]string{
		"noset":     "output(s) b not set",
		"wrongtype": `output "a" (type "int"): value of Go type string, want int`,
		"badport":   `Set("zz"): kind "badport" has no output "zz"`,
		"badparam":  `param "p" is float 1, read as int`,
	} {
		g := &Graph{}
		g.Add("n", kind, nil, nil)
		_, err := (&Runner{Registry: reg}).Run(context.Background(), g)
		var ne *NodeError
		if !errors.As(err, &ne) || ne.Node != "n" || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", kind, err, want)
		}
	}
}

func TestCancel(t *testing.T) {
	reg := NewRegistry()
	started := make(chan struct{})
	reg.MustRegister(Kind{Name: "wait", Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			close(started)
			<-c.Context().Done()
			return c.Context().Err()
		}})
	reg.MustRegister(Kind{Name: "next", Inputs: []Port{{Name: "x", Type: "int"}}, Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error { c.Set("out", 1); return nil }})
	g := &Graph{}
	g.Add("w", "wait", nil, nil)
	g.Add("n", "next", nil, map[string]string{"x": "w.out"})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	res, err := (&Runner{Registry: reg}).Run(ctx, g)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if got := statuses(res); got != "n=skipped w=failed" {
		t.Fatal(got)
	}
	// Cancelled before the start: nothing runs.
	res, err = (&Runner{Registry: reg}).Run(ctx, g)
	if !errors.Is(err, context.Canceled) || statuses(res) != "n=skipped w=skipped" {
		t.Fatalf("%v %s", err, statuses(res))
	}
}

func TestScratchDir(t *testing.T) {
	reg := NewRegistry()
	attempt := 0
	var dirs []string
	reg.MustRegister(Kind{Name: "long", Version: "1", Outputs: []Port{{Name: "out", Type: "string"}},
		Run: func(c *Call) error {
			attempt++
			d, err := c.ScratchDir()
			if err != nil {
				return err
			}
			dirs = append(dirs, d)
			ckpt := filepath.Join(d, "ckpt")
			if b, err := os.ReadFile(ckpt); err == nil {
				c.Set("out", "resumed from "+string(b))
				return nil
			}
			os.WriteFile(ckpt, []byte("half"), 0o644)
			return errors.New("interrupted")
		}})
	reg.MustRegister(Kind{Name: "temp", NoCache: true, Outputs: []Port{{Name: "out", Type: "string"}},
		Run: func(c *Call) error {
			d, err := c.ScratchDir()
			if err != nil {
				return err
			}
			dirs = append(dirs, d)
			entries, _ := os.ReadDir(d)
			c.Set("out", fmt.Sprint(len(entries)))
			return os.WriteFile(filepath.Join(d, "junk"), nil, 0o644)
		}})
	g := &Graph{}
	g.Add("l", "long", nil, nil)
	r := &Runner{Registry: reg, Cache: openCache(t)}
	if _, err := r.Run(context.Background(), g); err == nil {
		t.Fatal("first attempt should fail")
	}
	res := mustRun(t, r, g)
	if v, _ := res.Value("l.out"); v != "resumed from half" {
		t.Fatalf("l.out = %v", v)
	}
	if dirs[0] != dirs[1] || !strings.HasPrefix(dirs[0], r.Cache.Dir()) {
		t.Fatalf("scratch dirs %v", dirs)
	}
	if _, err := os.Stat(dirs[0]); !os.IsNotExist(err) {
		t.Fatalf("scratch dir not removed after commit: %v", err)
	}
	// Uncacheable: a fresh dir each time, removed after.
	dirs = nil
	g2 := &Graph{}
	g2.Add("t", "temp", nil, nil)
	for range 2 {
		res := mustRun(t, r, g2)
		if v, _ := res.Value("t.out"); v != "0" {
			t.Fatalf("temp scratch not fresh: %v", v)
		}
	}
	if dirs[0] == dirs[1] {
		t.Fatal("same temp scratch dir twice")
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("temp scratch %s not removed", d)
		}
	}
}

func TestEvents(t *testing.T) {
	reg := NewRegistry()
	reg.MustRegister(Kind{Name: "steps", Outputs: []Port{{Name: "out", Type: "int"}},
		Run: func(c *Call) error {
			for i := 1; i <= 3; i++ {
				c.Progress(i, 3, "step")
			}
			c.Set("out", 3)
			return nil
		}})
	g := &Graph{}
	g.Add("s", "steps", nil, nil)
	var mu sync.Mutex
	inCall := false
	var got []string
	r := &Runner{Registry: reg, Cache: openCache(t), Events: func(e Event) {
		mu.Lock()
		if inCall {
			t.Error("Events called concurrently")
		}
		inCall = true
		mu.Unlock()
		s := string(e.Type)
		if e.Type == EventProgress {
			s += fmt.Sprintf(" %d/%d", e.Done, e.Total)
		}
		got = append(got, s)
		mu.Lock()
		inCall = false
		mu.Unlock()
	}}
	mustRun(t, r, g)
	mustRun(t, r, g)
	want := []string{"queued", "start", "progress 1/3", "progress 2/3", "progress 3/3", "done", "queued", "cached"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestCorruptEntryIsRerun(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := chainGraph()
	res := mustRun(t, r, g)
	key := res.Keys["c"]
	f := filepath.Join(r.Cache.Dir(), "objects", key[:2], key, "out0.bin")
	if err := os.WriteFile(f, []byte("\x00\x00\x00\x00\x00\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	cnt.reset()
	res = mustRun(t, r, g)
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"c"}) {
		t.Fatalf("ran %v, want [c]", got)
	}
	if v, _ := res.Value("c.out"); v != 7.5 {
		t.Fatalf("c.out = %v", v)
	}
}

func TestOpenCacheRemovesStaleTemp(t *testing.T) {
	c := openCache(t)
	stale := filepath.Join(c.Dir(), "tmp", hostName+"-2147483646-commit-123")
	mine := filepath.Join(c.Dir(), "tmp", fmt.Sprintf("%s-%d-commit-456", hostName, os.Getpid()))
	for _, d := range []string{stale, mine} {
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "out0.bin"), []byte("partial"), 0o644)
	}
	if _, err := OpenCache(c.Dir()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatal("stale temp dir of a dead process not removed")
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatal("temp dir of a live process removed")
	}
}
