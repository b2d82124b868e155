package dag

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func explain(t *testing.T, r *Runner, g *Graph) map[string]Decision {
	t.Helper()
	ds, err := r.Explain(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	order, _ := g.Order()
	m := map[string]Decision{}
	for i, d := range ds {
		if d.Node != order[i].ID {
			t.Fatalf("Explain not in topological order: %v", ds)
		}
		m[d.Node] = d
	}
	return m
}

func wantDecision(t *testing.T, ds map[string]Decision, node, action, reason string) {
	t.Helper()
	d := ds[node]
	if d.Action != action || !strings.Contains(d.Reason, reason) {
		t.Errorf("%s: %s (%s), want %s (%s)", node, d.Action, d.Reason, action, reason)
	}
}

func TestExplain(t *testing.T) {
	cnt := &counts{}
	reg := testRegistry(t, cnt)
	r := &Runner{Registry: reg, Cache: openCache(t)}
	g := chainGraph()
	g.Add("h", "open", nil, map[string]string{"x": "a.out"})
	g.Add("t", "touch", map[string]any{"value": 1}, nil)

	ds := explain(t, r, g)
	wantDecision(t, ds, "a", "run", "never run")
	wantDecision(t, ds, "b", "run", "never run")
	wantDecision(t, ds, "h", "run", `not cacheable (output "h" has memory-only type "handle")`)
	wantDecision(t, ds, "t", "run", `not cacheable (kind "touch" always runs)`)
	if cnt.get("a") != 0 {
		t.Fatal("Explain ran a node")
	}
	res := mustRun(t, r, g)

	ds = explain(t, r, g)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		wantDecision(t, ds, id, "reuse", "cached")
		if ds[id].Key != res.Keys[id] {
			t.Errorf("%s: Explain key %s, Run key %s", id, ds[id].Key, res.Keys[id])
		}
	}

	// Params.
	g.Node("c").Params["steps"] = 50
	g.Node("c").Params["label"] = "x"
	ds = explain(t, r, g)
	wantDecision(t, ds, "b", "reuse", "cached")
	wantDecision(t, ds, "c", "run", `params changed: label (unset) → "x", steps 100 → 50`)
	wantDecision(t, ds, "d", "run", "input x may change (upstream c will run)")
	mustRun(t, r, g)
	wantDecision(t, explain(t, r, g), "c", "reuse", "cached")

	// Seed.
	g.Node("b").Seed = u64(5)
	wantDecision(t, explain(t, r, g), "b", "run", "seed changed 7 → 5")
	g.Node("b").Seed = nil

	// Input: rewire c to an upstream that is cached but holds another value.
	g.Add("b2", "add", map[string]any{"plus": 5}, map[string]string{"a": "a.out"})
	mustRun(t, r, g)
	g.Node("c").Inputs["x"] = "b2.out"
	wantDecision(t, explain(t, r, g), "c", "run", "input x changed")
	g.Node("c").Inputs["x"] = "b.out"

	// Forced.
	r.Force = []string{"e"}
	wantDecision(t, explain(t, r, g), "e", "run", "forced")
	r.Force = nil

	// Kind version.
	reg2 := withScaleVersion(reg, "2")
	r2 := &Runner{Registry: reg2, Cache: r.Cache}
	wantDecision(t, explain(t, r2, g), "c", "run", "kind version changed 1 → 2")

	// No cache.
	wantDecision(t, explain(t, &Runner{Registry: reg}, g), "a", "run", "no cache")

	// A deleted entry.
	if err := r.Cache.Remove(res.Keys["e"]); err != nil {
		t.Fatal(err)
	}
	wantDecision(t, explain(t, r, g), "e", "run", "cache entry missing")
}

// A kind with a Fingerprint is cached until what it reads changes, and Explain says so
// without running it.
func TestFingerprintKeysNodesByWhatTheyRead(t *testing.T) {
	file := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(file, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs := 0
	reg := NewRegistry()
	reg.MustRegister(Kind{
		Name: "read", Version: "1",
		Params:  []Param{{Name: "path", Type: "string", Required: true}},
		Outputs: []Port{{Name: "text", Type: "string"}},
		Fingerprint: func(p map[string]any) (string, error) {
			b, err := os.ReadFile(p["path"].(string))
			return string(b), err
		},
		Run: func(c *Call) error {
			runs++
			b, err := os.ReadFile(c.String("path"))
			c.Set("text", string(b))
			return err
		},
	})
	g := &Graph{Name: "fp"}
	g.Add("r", "read", map[string]any{"path": file}, nil)
	cache, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Registry: reg, Cache: cache}
	for range 2 {
		if _, err := r.Run(context.Background(), g); err != nil {
			t.Fatal(err)
		}
	}
	if runs != 1 {
		t.Fatalf("ran %d times for an unchanged file, want 1", runs)
	}
	if err := os.WriteFile(file, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := r.Explain(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Action != "run" || !strings.Contains(ds[0].Reason, "what it reads outside the graph changed") {
		t.Fatalf("after the file changed, explain says %+v", ds[0])
	}
	res, err := r.Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := res.Value("r.text"); v != "two" || runs != 2 {
		t.Fatalf("after the file changed: value %v, %d runs", v, runs)
	}
}
