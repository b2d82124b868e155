package dag

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The multi-process test: workers on pretend machines (distinct host names and pids that
// are not alive here, as on a shared filesystem) write and read one cache folder at once.
const (
	concWorkers = 5
	concRounds  = 40
	concShared  = 3 // keys every worker writes
	concOwn     = 4 // keys only one worker writes
)

var concKind = &Kind{Name: "blob", Version: "1", Outputs: []Port{{Name: "blob", Type: "bytes"}}}

func concKey(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// concPayload is a value that says who wrote it (key, writer, round) and whose body
// follows from that header, 50-200 kB long: a reader can check that it got one writer's
// value whole.
func concPayload(key string, writer, round int) []byte {
	hdr := fmt.Sprintf("%s|%d|%d|", key, writer, round)
	size := 50_000 + (writer*7919+round*104729)%150_000
	b := make([]byte, len(hdr)+size)
	copy(b, hdr)
	seed := sha256.Sum256([]byte(hdr))
	for i := len(hdr); i < len(b); i++ {
		b[i] = seed[i%32] ^ byte(i/32)
	}
	return b
}

func checkPayload(key string, v any) error {
	b, ok := v.([]byte)
	if !ok {
		return fmt.Errorf("value of type %T", v)
	}
	f := bytes.SplitN(b, []byte("|"), 4)
	if len(f) != 4 || string(f[0]) != key {
		return fmt.Errorf("entry %s holds a value with header %.80q", key, b)
	}
	w, err1 := strconv.Atoi(string(f[1]))
	r, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil || !bytes.Equal(b, concPayload(key, w, r)) {
		return fmt.Errorf("entry %s: value of writer %s round %s is not whole", key, f[1], f[2])
	}
	return nil
}

func concSharedKeys() []string {
	var ks []string
	for j := range concShared {
		ks = append(ks, concKey(fmt.Sprintf("shared-%d", j)))
	}
	return ks
}

func concOwnKey(worker, j int) string { return concKey(fmt.Sprintf("worker-%d-%d", worker, j)) }

// TestHelperCacheWorker is a child of TestConcurrentCacheProcesses; it does nothing
// otherwise.
func TestHelperCacheWorker(t *testing.T) {
	if os.Getenv("DAG_CONC") != "1" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "worker: "+format+"\n", args...)
		os.Exit(1)
	}
	dir := os.Getenv("DAG_CONC_DIR")
	id, _ := strconv.Atoi(os.Getenv("DAG_CONC_ID"))
	hostName, tempPID = fmt.Sprintf("machine%d", id), 2147483000+id
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fail("never told to start")
		}
	}
	cache := filepath.Join(dir, "cache")
	c, err := OpenCache(cache)
	if err != nil {
		fail("%v", err)
	}
	reg := NewRegistry()
	shared := concSharedKeys()
	var reads []string
	reads = append(reads, shared...)
	for w := range concWorkers {
		reads = append(reads, concOwnKey(w, id%concOwn))
	}
	hits, misses, replaced := 0, 0, 0
	for round := range concRounds {
		if round%8 == 3 {
			// Opening cleans tmp/, where the others are writing.
			if c, err = OpenCache(cache); err != nil {
				fail("round %d: %v", round, err)
			}
		}
		sk := shared[round%concShared]
		replace := round%4 == id%4
		if replace {
			replaced++
		}
		if _, err := c.commit(sk, "w", &keyComponents{}, concKind, reg, map[string]any{"blob": concPayload(sk, id, round)}, replace); err != nil {
			fail("round %d: commit shared: %v", round, err)
		}
		ok := concOwnKey(id, round%concOwn)
		if _, err := c.commit(ok, "w", &keyComponents{}, concKind, reg, map[string]any{"blob": concPayload(ok, id, round)}, round%3 == 0); err != nil {
			fail("round %d: commit own: %v", round, err)
		}
		for _, k := range reads {
			values, _, err := c.lookup(k, concKind, reg)
			switch {
			case errors.Is(err, errNotCached):
				misses++
			case err != nil:
				fail("round %d: a reader saw a damaged entry: %v", round, err)
			default:
				if err := checkPayload(k, values["blob"]); err != nil {
					fail("round %d: %v", round, err)
				}
				hits++
			}
		}
	}
	fmt.Printf("hits=%d misses=%d replaced=%d\n", hits, misses, replaced)
	os.Exit(0)
}

// TestConcurrentCacheProcesses runs concWorkers processes (each pretending to be on its
// own machine) that, for concRounds rounds each, commit the shared keys (some rounds with
// replace), commit their own keys, reopen the cache (cleaning tmp/), and read every
// shared key and one key of every worker, checking that each read finds no entry or a
// whole one. Afterwards every entry verifies, holds one writer's whole value, and tmp/
// is empty.
func TestConcurrentCacheProcesses(t *testing.T) {
	if os.Getenv("DAG_CONC") == "1" {
		return
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, concWorkers)
	errs := make([]error, concWorkers)
	for i := range concWorkers {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCacheWorker$")
		cmd.Env = append(os.Environ(), "DAG_CONC=1", "DAG_CONC_DIR="+dir, fmt.Sprintf("DAG_CONC_ID=%d", i))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cmd.Wait()
		}()
	}
	start := time.Now()
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	hits := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, outs[i].String())
		}
		var h, m, r int
		if _, err := fmt.Sscanf(lastLine(outs[i].String()), "hits=%d misses=%d replaced=%d", &h, &m, &r); err != nil {
			t.Fatalf("worker %d output: %q", i, outs[i].String())
		}
		hits += h
	}
	t.Logf("%d workers x %d rounds in %s; %d reads found a whole entry", concWorkers, concRounds, time.Since(start).Round(time.Millisecond), hits)
	if hits == 0 {
		t.Fatal("no read found an entry: the test did not exercise reads")
	}
	cache := filepath.Join(dir, "cache")
	rep, err := VerifyCache(cache, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := concShared + concWorkers*concOwn; rep.Entries != want || len(rep.Damaged) != 0 || rep.Tmp != 0 || rep.Scratch != 0 {
		t.Fatalf("after the workers: %+v; want %d whole entries, nothing in tmp/", rep, want)
	}
	if n := verifyCache(t, cache); n != concShared+concWorkers*concOwn {
		t.Fatalf("%d entries", n)
	}
	c := &Cache{dir: cache}
	keys := concSharedKeys()
	for w := range concWorkers {
		for j := range concOwn {
			keys = append(keys, concOwnKey(w, j))
		}
	}
	for _, k := range keys {
		values, _, err := c.lookup(k, concKind, NewRegistry())
		if err != nil {
			t.Fatalf("entry %s: %v", k, err)
		}
		if err := checkPayload(k, values["blob"]); err != nil {
			t.Fatal(err)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestCommitSameKey: a second commit of a key keeps the first entry; with replace, it
// replaces it whole; 8 goroutines committing one key at once (20 rounds, half with
// replace) leave one whole entry of one of them and nothing in tmp/.
func TestCommitSameKey(t *testing.T) {
	c := openCache(t)
	reg := NewRegistry()
	key := concKey("same")
	commit := func(writer int, replace bool) {
		t.Helper()
		if _, err := c.commit(key, "n", &keyComponents{}, concKind, reg, map[string]any{"blob": concPayload(key, writer, 0)}, replace); err != nil {
			t.Fatal(err)
		}
	}
	read := func() []byte {
		t.Helper()
		values, _, err := c.lookup(key, concKind, reg)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPayload(key, values["blob"]); err != nil {
			t.Fatal(err)
		}
		return values["blob"].([]byte)
	}
	commit(1, false)
	commit(2, false)
	if !bytes.Equal(read(), concPayload(key, 1, 0)) {
		t.Fatal("a second commit replaced the first without replace")
	}
	commit(3, true)
	if !bytes.Equal(read(), concPayload(key, 3, 0)) {
		t.Fatal("replace kept the old entry")
	}
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[w] = c.commit(key, "n", &keyComponents{}, concKind, reg, map[string]any{"blob": concPayload(key, 10+w, round)}, round%2 == 0)
			}()
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("round %d writer %d: %v", round, w, err)
			}
		}
		read()
		if n := dirLen(t, filepath.Join(c.Dir(), "tmp")); n != 0 {
			t.Fatalf("round %d: %d entries left in tmp/", round, n)
		}
	}
	if n := verifyCache(t, c.Dir()); n != 1 {
		t.Fatalf("%d entries", n)
	}
}
