package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/dag"
)

// cacheFixture fills DIR/.dpsflow/cache with the entries of 4 nodes: blob nodes a (1000 B),
// b (2000 B), c (3000 B) and d (4000 B). It returns DIR and each node's key.
func cacheFixture(t *testing.T) (string, map[string]string) {
	t.Helper()
	reg := dag.NewRegistry()
	reg.MustRegister(dag.Kind{Name: "blob", Version: "1", Params: []dag.Param{{Name: "n", Type: "int", Required: true}},
		Outputs: []dag.Port{{Name: "out", Type: "bytes"}},
		Run: func(c *dag.Call) error {
			c.Set("out", bytes.Repeat([]byte{'x'}, c.Int("n")))
			return nil
		}})
	g := &dag.Graph{Name: "fixture"}
	for i, id := range []string{"a", "b", "c", "d"} {
		g.Add(id, "blob", map[string]any{"n": 1000 * (i + 1)}, nil)
	}
	dir := t.TempDir()
	cache, err := dag.OpenCache(cacheDirFor(filepath.Join(dir, "run.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&dag.Runner{Registry: reg, Cache: cache}).Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	return dir, res.Keys
}

func entryPath(dir, key string) string {
	return filepath.Join(dir, ".dpsflow", "cache", "objects", key[:2], key)
}

func TestCacheVerifyCommand(t *testing.T) {
	dir, keys := cacheFixture(t)
	out, code, err := runCLI(t, "cache", "verify", dir)
	if code != 0 || !strings.Contains(out, "4 entries") || !strings.Contains(out, "all verified") {
		t.Fatalf("exit %d (%v):\n%s", code, err, out)
	}
	// The cache folder itself works too, and "." is the default.
	if out, code, _ := runCLI(t, "cache", "verify", filepath.Join(dir, ".dpsflow", "cache")); code != 0 || !strings.Contains(out, "4 entries") {
		t.Fatalf("cache folder: exit %d\n%s", code, out)
	}
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	out, code, _ = runCLI(t, "cache", "verify")
	os.Chdir(wd)
	if code != 0 || !strings.Contains(out, "4 entries") {
		t.Fatalf("default DIR: exit %d\n%s", code, out)
	}

	if err := os.Truncate(filepath.Join(entryPath(dir, keys["b"]), "out0.bin"), 10); err != nil {
		t.Fatal(err)
	}
	out, code, err = runCLI(t, "cache", "verify", dir)
	if code != 1 || err == nil || !strings.Contains(err.Error(), "1 damaged cache entry") {
		t.Fatalf("exit %d (%v), want 1", code, err)
	}
	for _, want := range []string{keys["b"], `node "b"`, `output "out" (out0.bin) truncated: 10 of 2000 bytes`, "1 damaged"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	out, code, _ = runCLI(t, "cache", "verify", "--json", dir)
	var rep dag.VerifyReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if rep.Entries != 4 || len(rep.Damaged) != 1 || rep.Damaged[0].Key != keys["b"] || rep.Damaged[0].Problems[0].Problem != dag.ProblemTruncated {
		t.Fatalf("--json report %+v", rep)
	}
	out, code, err = runCLI(t, "cache", "verify", "--remove", dir)
	if code != 1 || !strings.Contains(err.Error(), "removed") || !strings.Contains(out, "DAMAGED, removed") {
		t.Fatalf("--remove: exit %d (%v)\n%s", code, err, out)
	}
	if _, err := os.Stat(entryPath(dir, keys["b"])); !os.IsNotExist(err) {
		t.Fatal("damaged entry not removed")
	}
	if out, code, _ := runCLI(t, "cache", "verify", dir); code != 0 || !strings.Contains(out, "3 entries") {
		t.Fatalf("after --remove: exit %d\n%s", code, out)
	}
	// Not a cache: a usage error (exit 2) that says where it looked.
	_, code, err = runCLI(t, "cache", "verify", t.TempDir())
	if code != 2 || !strings.Contains(err.Error(), "no dpsflow cache in") {
		t.Fatalf("empty folder: exit %d (%v)", code, err)
	}
}

func TestCacheGCCommand(t *testing.T) {
	dir, keys := cacheFixture(t)
	now := time.Now()
	// Last uses: a 40 days ago, b 20, c 2, d now.
	for id, days := range map[string]int{"a": 40, "b": 20, "c": 2, "d": 0} {
		at := now.Add(-time.Duration(days) * 24 * time.Hour)
		if err := os.Chtimes(filepath.Join(entryPath(dir, keys[id]), "manifest.json"), at, at); err != nil {
			t.Fatal(err)
		}
	}
	out, code, err := runCLI(t, "cache", "gc", dir, "--keep-days", "10", "--dry-run")
	if code != 0 || !strings.Contains(out, "would remove 2 items") || !strings.Contains(out, keys["a"]) || !strings.Contains(out, keys["b"]) || strings.Contains(out, keys["c"]) {
		t.Fatalf("dry run: exit %d (%v)\n%s", code, err, out)
	}
	if _, err := os.Stat(entryPath(dir, keys["a"])); err != nil {
		t.Fatal("the dry run removed an entry")
	}
	out, code, err = runCLI(t, "cache", "gc", dir, "--keep-days", "10")
	if code != 0 || !strings.Contains(out, "removed 2 items") || !strings.Contains(out, "2 entries kept") || !strings.Contains(out, "unused for 40d") {
		t.Fatalf("gc: exit %d (%v)\n%s", code, err, out)
	}
	// c (3000 B of output) and d (4000 B) are left; under 5000 B only d, the most recently
	// used, fits.
	out, code, err = runCLI(t, "cache", "gc", dir, "--max-size", "5000", "--json")
	var rep dag.GCReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || code != 0 {
		t.Fatalf("--max-size: exit %d (%v, %v)\n%s", code, err, jerr, out)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Name != keys["c"] || rep.Kept != 1 || rep.KeptBytes > 5000 {
		t.Fatalf("--max-size 5000: %+v", rep)
	}
	for _, bad := range [][]string{{"--max-size", "2XB"}, {"--max-size", "-1G"}, {"--keep-days", "-3"}, {"--max-size", "0"}} {
		if _, code, err := runCLI(t, append([]string{"cache", "gc", dir}, bad...)...); code != 2 {
			t.Errorf("%v: exit %d (%v), want 2", bad, code, err)
		}
	}
}

// TestProgressShowsCacheWarnings: the recompute warning of a damaged entry is printed.
func TestProgressShowsCacheWarnings(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf)
	msg := `cache entry 0123 damaged (output "recon" (out0.bin) hash mismatch: sha256 aa, manifest says bb): recomputing`
	p.event(dag.Event{Type: dag.EventWarning, Node: "sample", Kind: "sample", Message: msg, Err: errors.New("x")})
	if !strings.Contains(buf.String(), "sample") || !strings.Contains(buf.String(), msg) {
		t.Fatalf("printed %q", buf.String())
	}
}
