package dag

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// entryDir is the folder of a cache entry.
func entryDir(c *Cache, key string) string { return filepath.Join(c.Dir(), "objects", key[:2], key) }

// warnings collects the warning events of a runner.
type warnings struct {
	mu  sync.Mutex
	got []Event
}

func (w *warnings) event(e Event) {
	if e.Type == EventWarning {
		w.mu.Lock()
		w.got = append(w.got, e)
		w.mu.Unlock()
	}
}

// rewriteManifest edits an entry's manifest in place.
func rewriteManifest(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "manifest.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCacheDamageIsRecomputed damages node c's entry in each way a disk or a person can,
// and checks that VerifyCache names the entry, file and problem; that the next run says
// so in a warning event, runs c (and only c: its value is the same, so d is reused), and
// replaces the entry, so that the cache verifies again and a third run runs nothing.
func TestCacheDamageIsRecomputed(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		file    string // the file VerifyCache blames
		problem string
		output  string // the output it names ("" for the manifest)
	}{
		{"hash mismatch", func(t *testing.T, dir string) {
			// c.out is 7.5: same length, other digits.
			b, _ := os.ReadFile(filepath.Join(dir, "out0.bin"))
			b[0] ^= 0x01
			os.WriteFile(filepath.Join(dir, "out0.bin"), b, 0o644)
		}, "out0.bin", ProblemHash, "out"},
		{"truncated", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, "out0.bin"), 1)
		}, "out0.bin", ProblemTruncated, "out"},
		{"longer", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, "out0.bin"), os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte("0"))
			f.Close()
		}, "out0.bin", ProblemSize, "out"},
		{"missing output file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "out0.bin"))
		}, "out0.bin", ProblemMissing, "out"},
		{"manifest not JSON", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"key": "ab`), 0o644)
		}, "manifest.json", ProblemBadManifest, ""},
		{"manifest names another key", func(t *testing.T, dir string) {
			rewriteManifest(t, dir, func(m map[string]any) { m["key"] = strings.Repeat("0", 64) })
		}, "manifest.json", ProblemBadManifest, ""},
		{"manifest missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "manifest.json"))
		}, "manifest.json", ProblemMissing, ""},
		{"manifest unreadable", func(t *testing.T, dir string) {
			// A folder where the file should be: unreadable even for root.
			p := filepath.Join(dir, "manifest.json")
			os.Remove(p)
			os.Mkdir(p, 0o755)
		}, "manifest.json", ProblemUnreadable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cnt := &counts{}
			w := &warnings{}
			r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t), Events: w.event}
			g := chainGraph()
			res := mustRun(t, r, g)
			key := res.Keys["c"]
			tc.damage(t, entryDir(r.Cache, key))

			rep, err := VerifyCache(r.Cache.Dir(), VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Entries != 5 || len(rep.Damaged) != 1 {
				t.Fatalf("verify: %d entries, %d damaged, want 5 and 1: %+v", rep.Entries, len(rep.Damaged), rep.Damaged)
			}
			d := rep.Damaged[0]
			if d.Key != key || len(d.Problems) != 1 || d.Problems[0].File != tc.file || d.Problems[0].Problem != tc.problem || d.Problems[0].Output != tc.output {
				t.Fatalf("verify reports %+v, want key %s file %s problem %q output %q", d, key, tc.file, tc.problem, tc.output)
			}

			cnt.reset()
			res = mustRun(t, r, g)
			if got := cnt.ran(); !reflect.DeepEqual(got, []string{"c"}) {
				t.Fatalf("ran %v, want [c]", got)
			}
			if v, _ := res.Value("c.out"); v != 7.5 {
				t.Fatalf("c.out = %v", v)
			}
			if len(w.got) != 1 || w.got[0].Node != "c" || w.got[0].Err == nil {
				t.Fatalf("warnings %+v, want one for c", w.got)
			}
			msg := w.got[0].Message
			want := fmt.Sprintf("cache entry %s damaged (", key)
			if !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "): recomputing") || !strings.Contains(msg, tc.file) || !strings.Contains(msg, tc.problem) {
				t.Fatalf("warning %q, want %q...%s %s...): recomputing", msg, want, tc.file, tc.problem)
			}

			if exact := fmt.Sprintf(`cache entry %s damaged (output "out" (out0.bin) hash mismatch): recomputing`, key); tc.problem == ProblemHash && msg != exact {
				t.Fatalf("warning %q, want %q", msg, exact)
			}
			// The entry was replaced: the cache verifies and nothing runs.
			rep, err = VerifyCache(r.Cache.Dir(), VerifyOptions{})
			if err != nil || len(rep.Damaged) != 0 || rep.Entries != 5 {
				t.Fatalf("after the rerun: %v, %+v", err, rep)
			}
			if n := verifyCache(t, r.Cache.Dir()); n != 5 {
				t.Fatalf("%d entries, want 5", n)
			}
			cnt.reset()
			w.got = nil
			mustRun(t, r, g)
			if got := cnt.ran(); len(got) != 0 || len(w.got) != 0 {
				t.Fatalf("third run ran %v, warned %v", got, w.got)
			}
		})
	}
}

// TestCacheUndecodableEntryIsRecomputed: bytes that match the manifest's hash but that
// the type's codec rejects.
func TestCacheUndecodableEntryIsRecomputed(t *testing.T) {
	cnt := &counts{}
	w := &warnings{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t), Events: w.event}
	g := chainGraph()
	res := mustRun(t, r, g)
	key := res.Keys["a"]
	dir := entryDir(r.Cache, key)
	junk := []byte("not a number")
	os.WriteFile(filepath.Join(dir, "out0.bin"), junk, 0o644)
	sum, _ := hashValue(bytesCodec{}, junk)
	rewriteManifest(t, dir, func(m map[string]any) {
		o := m["outputs"].(map[string]any)["out"].(map[string]any)
		o["sha256"], o["size"] = sum, len(junk)
	})
	if rep, _ := VerifyCache(r.Cache.Dir(), VerifyOptions{}); len(rep.Damaged) != 0 {
		t.Fatalf("verify checks bytes against the manifest only, yet reports %+v", rep.Damaged)
	}
	cnt.reset()
	mustRun(t, r, g)
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"a"}) {
		t.Fatalf("ran %v, want [a]", got)
	}
	if len(w.got) != 1 || !strings.Contains(w.got[0].Message, ProblemDecode) {
		t.Fatalf("warnings %+v", w.got)
	}
	if v, err := r.Cache.lookupOnceValue(key, "const", r.Registry); err != nil || v != 2 {
		t.Fatalf("entry after the rerun: %v %v", v, err)
	}
}

// lookupOnceValue reads back the single output of an entry of a kind.
func (c *Cache) lookupOnceValue(key, kind string, reg *Registry) (any, error) {
	k, _ := reg.Kind(kind)
	values, _, err := c.lookup(key, k, reg)
	if err != nil {
		return nil, err
	}
	return values[k.Outputs[0].Name], nil
}

// TestVerifyCacheReport checks the counts, the sizes (summed independently) and --remove.
func TestVerifyCacheReport(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	res := mustRun(t, r, chainGraph())
	dir := r.Cache.Dir()
	os.Remove(filepath.Join(entryDir(r.Cache, res.Keys["b"]), "out0.bin"))
	os.Truncate(filepath.Join(entryDir(r.Cache, res.Keys["d"]), "out0.bin"), 2)
	os.WriteFile(filepath.Join(dir, "objects", "stray.txt"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "scratch", strings.Repeat("e", 64)), 0o755)
	os.WriteFile(filepath.Join(dir, "scratch", strings.Repeat("e", 64), "ckpt"), make([]byte, 1000), 0o644)
	os.MkdirAll(filepath.Join(dir, "tmp", "otherhost-1-commit-1"), 0o755)
	os.WriteFile(filepath.Join(dir, "tmp", "otherhost-1-commit-1", "out0.bin"), make([]byte, 300), 0o644)

	var objBytes int64
	filepath.WalkDir(filepath.Join(dir, "objects"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			objBytes += fi.Size()
		}
		return nil
	})
	rep, err := VerifyCache(dir, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 6 || rep.Bytes != objBytes || rep.Scratch != 1 || rep.ScratchBytes != 1000 || rep.Tmp != 1 || rep.TmpBytes != 300 {
		t.Fatalf("report %+v; want 6 entries (5 + a stray file), %d bytes, 1 scratch of 1000 B, 1 tmp of 300 B", rep, objBytes)
	}
	got := map[string]string{}
	for _, d := range rep.Damaged {
		if d.Removed {
			t.Fatal("removed without Remove")
		}
		got[d.Key] = d.Problems[0].Problem
	}
	want := map[string]string{res.Keys["b"]: ProblemMissing, res.Keys["d"]: ProblemTruncated, "": ProblemStray}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("damaged %v, want %v", got, want)
	}
	rep, err = VerifyCache(dir, VerifyOptions{Remove: true})
	if err != nil || len(rep.Damaged) != 3 {
		t.Fatalf("%v %+v", err, rep)
	}
	for _, d := range rep.Damaged {
		if !d.Removed {
			t.Fatalf("%s not removed", d.Path)
		}
		if _, err := os.Stat(d.Path); !os.IsNotExist(err) {
			t.Fatalf("%s still there", d.Path)
		}
	}
	rep, err = VerifyCache(dir, VerifyOptions{})
	if err != nil || len(rep.Damaged) != 0 || rep.Entries != 3 {
		t.Fatalf("after remove: %v %+v", err, rep)
	}
	// Removal went through tmp/ and left nothing there but the other machine's write.
	if n := dirLen(t, filepath.Join(dir, "tmp")); n != 1 {
		t.Fatalf("%d entries in tmp/, want 1", n)
	}
	// The next run recomputes exactly what was removed.
	cnt.reset()
	mustRun(t, r, chainGraph())
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"b", "d"}) {
		t.Fatalf("ran %v, want [b d]", got)
	}
	if _, err := VerifyCache(t.TempDir(), VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "not a cache folder") {
		t.Fatalf("an empty folder: %v", err)
	}
}

// setUsed sets an entry's last use.
func setUsed(t *testing.T, c *Cache, key string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(filepath.Join(entryDir(c, key), "manifest.json"), at, at); err != nil {
		t.Fatal(err)
	}
}

func usedAt(t *testing.T, c *Cache, key string) time.Time {
	t.Helper()
	fi, err := os.Stat(filepath.Join(entryDir(c, key), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// TestCacheUseTimeAndGC: a run that reads entries back records their use; GCCache removes
// entries unused for the given time, then least recently used ones down to a size (the
// expected set computed by its own loop), stale scratch states and tmp leftovers; a dry
// run removes nothing but reports the same.
func TestCacheUseTimeAndGC(t *testing.T) {
	cnt := &counts{}
	r := &Runner{Registry: testRegistry(t, cnt), Cache: openCache(t)}
	g := chainGraph()
	res := mustRun(t, r, g)
	c := r.Cache
	now := time.Now()
	day := 24 * time.Hour
	// Ages in days: a 30, b 20, c 10, d 3, e 1.
	age := map[string]int{"a": 30, "b": 20, "c": 10, "d": 3, "e": 1}
	for id, n := range age {
		setUsed(t, c, res.Keys[id], now.Add(-time.Duration(n)*day))
	}
	// A run of a, b (a smaller graph) reads a and b back: their use is now.
	g2 := &Graph{Name: "chain", Seed: 7}
	g2.Add("a", "const", map[string]any{"value": 2}, nil)
	g2.Add("b", "add", map[string]any{"plus": 1}, map[string]string{"a": "a.out"})
	cnt.reset()
	mustRun(t, r, g2)
	if len(cnt.ran()) != 0 {
		t.Fatal("a, b should be reused")
	}
	for _, id := range []string{"a", "b"} {
		if d := time.Since(usedAt(t, c, res.Keys[id])); d > time.Minute {
			t.Fatalf("%s: last use %s ago after being read", id, d)
		}
	}
	if d := time.Since(usedAt(t, c, res.Keys["c"])); d < 9*day {
		t.Fatalf("c was not read, yet its use moved to %s ago", d)
	}
	// A use less than touchEvery ago is not rewritten.
	recent := time.Now().Add(-time.Minute).Truncate(time.Second)
	setUsed(t, c, res.Keys["a"], recent)
	mustRun(t, r, g2)
	if !usedAt(t, c, res.Keys["a"]).Equal(recent) {
		t.Fatal("a use a minute old was rewritten")
	}
	setUsed(t, c, res.Keys["a"], now)

	// Leftovers: a scratch state 8 days old, one written now, a tmp write of an ended
	// process of this machine, one of another machine (kept) and one of another machine
	// untouched for two days.
	old := now.Add(-8 * day)
	mk := func(rel string, size int, mtime time.Time) {
		p := filepath.Join(c.Dir(), rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, size), 0o644)
		os.Chtimes(p, mtime, mtime)
		os.Chtimes(filepath.Dir(p), mtime, mtime)
	}
	mk("scratch/"+strings.Repeat("1", 64)+"/ckpt", 700, old)
	mk("scratch/"+strings.Repeat("2", 64)+"/ckpt", 500, now)
	deadTmp := fmt.Sprintf("%s-2147483646-commit-9", hostName)
	mk("tmp/"+deadTmp+"/out0.bin", 40, now)
	mk("tmp/elsewhere-2147483646-commit-9/out0.bin", 50, now)
	mk("tmp/elsewhere-17-commit-9/out0.bin", 60, now.Add(-2*day))

	sizes := map[string]int64{}
	for id, key := range res.Keys {
		sizes[id] = treeSize(entryDir(c, key))
	}
	// Dry run of --keep-days 5: c (10 d) would go, b and a were used now, d 3 d, e 1 d.
	removed := func(rep *GCReport) []string {
		var out []string
		for _, it := range rep.Removed {
			name := it.What + ":" + it.Name
			for id, key := range res.Keys {
				if it.Name == key {
					name = it.What + ":" + id
				}
			}
			out = append(out, name)
		}
		sort.Strings(out)
		return out
	}
	wantAge := []string{"entry:c", "scratch:" + strings.Repeat("1", 64), "tmp:" + deadTmp, "tmp:elsewhere-17-commit-9"}
	sort.Strings(wantAge)
	dry, err := GCCache(c.Dir(), GCOptions{Unused: 5 * day, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := removed(dry); !reflect.DeepEqual(got, wantAge) {
		t.Fatalf("dry run would remove %v, want %v", got, wantAge)
	}
	if wantFreed := sizes["c"] + 700 + 40 + 60; dry.Freed != wantFreed {
		t.Fatalf("dry run frees %d, want %d", dry.Freed, wantFreed)
	}
	if rep, _ := VerifyCache(c.Dir(), VerifyOptions{}); rep.Entries != 5 || rep.Scratch != 2 || rep.Tmp != 3 {
		t.Fatalf("the dry run removed something: %+v", rep)
	}
	rep, err := GCCache(c.Dir(), GCOptions{Unused: 5 * day})
	if err != nil {
		t.Fatal(err)
	}
	if got := removed(rep); !reflect.DeepEqual(got, wantAge) || rep.Freed != dry.Freed || rep.Kept != 4 {
		t.Fatalf("gc removed %v (freed %d, kept %d), want %v", got, rep.Freed, rep.Kept, wantAge)
	}
	if v, err := VerifyCache(c.Dir(), VerifyOptions{}); err != nil || v.Entries != 4 || len(v.Damaged) != 0 || v.Scratch != 1 || v.Tmp != 1 {
		t.Fatalf("after gc: %v %+v", err, v)
	}

	// --max-size: uses now a (now), b (now-1s), d (3 d), e (1 d). Independent LRU: drop
	// the oldest until the rest fit.
	setUsed(t, c, res.Keys["b"], now.Add(-time.Second))
	order := []string{"d", "e", "b", "a"}
	var total int64
	for _, id := range order {
		total += sizes[id]
	}
	limit := total - sizes["d"] - 1 // d is not enough: e goes too
	var want []string
	for i, left := 0, total; left > limit; i++ {
		want = append(want, "entry:"+order[i])
		left -= sizes[order[i]]
	}
	sort.Strings(want)
	if !reflect.DeepEqual(want, []string{"entry:d", "entry:e"}) {
		t.Fatalf("test setup: %v", want)
	}
	rep, err = GCCache(c.Dir(), GCOptions{MaxSize: limit})
	if err != nil {
		t.Fatal(err)
	}
	if got := removed(rep); !reflect.DeepEqual(got, want) || rep.KeptBytes > limit || rep.KeptBytes != sizes["a"]+sizes["b"] {
		t.Fatalf("max size %d removed %v (kept %d B), want %v", limit, got, rep.KeptBytes, want)
	}
	cnt.reset()
	mustRun(t, r, g)
	if got := cnt.ran(); !reflect.DeepEqual(got, []string{"c", "d", "e"}) {
		t.Fatalf("after gc ran %v, want [c d e]", got)
	}
	if _, err := GCCache(c.Dir(), GCOptions{MaxSize: -1}); err == nil {
		t.Fatal("negative size accepted")
	}
}

// TestTempNamesAndCleanup: temp names carry machine and pid; OpenCache removes only
// leftovers of ended processes of this machine, or writes untouched for a day, never the
// fresh write of another machine whose pid means nothing here.
func TestTempNamesAndCleanup(t *testing.T) {
	for _, tc := range []struct {
		name string
		host string
		pid  int
		ok   bool
	}{
		{"node07.cluster_1-4242-commit-123", "node07.cluster_1", 4242, true},
		{"4242-commit-123", "", 4242, true}, // an older version's name
		{"12-34-scratch-5", "12", 34, true},
		{"junk", "", 0, false},
	} {
		host, pid, ok := tempOwner(tc.name)
		if host != tc.host || pid != tc.pid || ok != tc.ok {
			t.Errorf("tempOwner(%q) = %q %d %v, want %q %d %v", tc.name, host, pid, ok, tc.host, tc.pid, tc.ok)
		}
	}
	if got := safeHost("gpu-node-3.example.org"); got != "gpu_node_3.example.org" {
		t.Errorf("safeHost: %q", got)
	}
	if p := tempPrefix("commit"); !strings.HasPrefix(p, hostName+"-") || strings.Count(p, "-") != 3 {
		t.Errorf("tempPrefix: %q", p)
	}
	c := openCache(t)
	day := 24 * time.Hour
	mk := func(name string, age time.Duration) string {
		d := filepath.Join(c.Dir(), "tmp", name)
		os.MkdirAll(d, 0o755)
		f := filepath.Join(d, "out0.bin")
		os.WriteFile(f, []byte("partial"), 0o644)
		at := time.Now().Add(-age)
		os.Chtimes(f, at, at)
		os.Chtimes(d, at, at)
		return d
	}
	keep := []string{
		mk("otherhost-2147483646-commit-1", 0),                      // another machine's write in progress
		mk("2147483646-commit-2", time.Hour),                        // an older version's: machine unknown
		mk(fmt.Sprintf("%s-%d-commit-3", hostName, os.Getpid()), 0), // this process
		mk("otherhost-5-scratch-4", 2*day),                          // old folder, but a file in it is new:
	}
	os.WriteFile(filepath.Join(keep[3], "new"), nil, 0o644)
	gone := []string{
		mk(hostName+"-2147483646-commit-5", 0), // an ended process of this machine
		mk("otherhost-5-commit-6", 2*day),      // untouched for two days
		mk("2147483646-commit-7", 2*day),
	}
	if _, err := OpenCache(c.Dir()); err != nil {
		t.Fatal(err)
	}
	for _, d := range keep {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed", filepath.Base(d))
		}
	}
	for _, d := range gone {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s kept", filepath.Base(d))
		}
	}
	// Scratch dirs of uncacheable nodes use the same names.
	reg := NewRegistry()
	var got string
	reg.MustRegister(Kind{Name: "t", NoCache: true, Outputs: []Port{{Name: "out", Type: "int"}}, Run: func(call *Call) error {
		d, err := call.ScratchDir()
		got = filepath.Base(d)
		call.Set("out", 1)
		return err
	}})
	g := &Graph{}
	g.Add("n", "t", nil, nil)
	if _, err := (&Runner{Registry: reg, Cache: c}).Run(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	if host, pid, ok := tempOwner(got); !ok || host != hostName || pid != os.Getpid() || !strings.Contains(got, "-scratch-") {
		t.Fatalf("scratch temp name %q", got)
	}
}
