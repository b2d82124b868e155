package dag

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// killEnv configures the kinds of the SIGKILL test.
type killEnv struct {
	log         string // append "start <id>" lines here ("" for none)
	blockRun    bool   // node c blocks inside Run, after writing a checkpoint
	blockEncode bool   // c's output codec blocks half-way through writing the cache entry
	resumed     atomic.Bool
	cnt         *counts
}

func (e *killEnv) logf(format string, args ...any) {
	if e.log == "" {
		return
	}
	f, err := os.OpenFile(e.log, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(f, format+"\n", args...)
	f.Sync()
	f.Close()
}

// hang blocks the helper process until it is killed (or gives up after a minute, so that
// an orphan never lingers).
func hang() {
	time.Sleep(time.Minute)
	os.Exit(3)
}

// slowCodec is float64sCodec that can block half-way through Encode.
type slowCodec struct{ env *killEnv }

func (s slowCodec) Encode(w io.Writer, v any) error {
	var buf bytes.Buffer
	if err := (float64sCodec{}).Encode(&buf, v); err != nil {
		return err
	}
	b := buf.Bytes()
	if !s.env.blockEncode {
		_, err := w.Write(b)
		return err
	}
	if _, err := w.Write(b[:len(b)/2]); err != nil {
		return err
	}
	if f, ok := w.(interface{ Flush() error }); ok {
		f.Flush()
	} else if hw, ok := w.(*hashingWriter); ok {
		if f, ok := hw.w.(interface{ Flush() error }); ok {
			f.Flush()
		}
	}
	s.env.logf("encode")
	hang()
	return nil
}

func (slowCodec) Decode(r io.Reader) (any, error) { return (float64sCodec{}).Decode(r) }

func killRegistry(env *killEnv) *Registry {
	r := NewRegistry()
	if err := r.RegisterType("slowfloats", slowCodec{env}); err != nil {
		panic(err)
	}
	start := func(c *Call) {
		env.logf("start %s", c.Node().ID)
		if env.cnt != nil {
			env.cnt.inc(c.Node().ID)
		}
	}
	r.MustRegister(Kind{Name: "gen", Version: "1",
		Outputs: []Port{{Name: "out", Type: "floats"}},
		Params:  []Param{{Name: "n", Type: "int", Default: 64}, {Name: "salt", Type: "int", Required: true}},
		Run: func(c *Call) error {
			start(c)
			rng := rand.New(rand.NewPCG(c.Seed(), uint64(c.Int("salt"))))
			out := make([]float64, c.Int("n"))
			for i := range out {
				out[i] = rng.NormFloat64()
			}
			c.Set("out", out)
			return nil
		}})
	r.MustRegister(Kind{Name: "combine", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "floats"}, {Name: "y", Type: "floats"}},
		Outputs: []Port{{Name: "out", Type: "slowfloats"}},
		Run: func(c *Call) error {
			start(c)
			x, y := c.In("x").([]float64), c.In("y").([]float64)
			dir, err := c.ScratchDir()
			if err != nil {
				return err
			}
			ckpt := filepath.Join(dir, "ckpt")
			if _, err := os.Stat(ckpt); err == nil {
				env.resumed.Store(true)
			}
			if err := os.WriteFile(ckpt, []byte("half done"), 0o644); err != nil {
				return err
			}
			if env.blockRun {
				env.logf("checkpoint c")
				hang()
			}
			out := make([]float64, len(x))
			for i := range x {
				out[i] = x[i]*y[i] + x[i]
			}
			c.Set("out", out)
			return nil
		}})
	r.MustRegister(Kind{Name: "scale", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "slowfloats"}},
		Outputs: []Port{{Name: "out", Type: "floats"}},
		Params:  []Param{{Name: "factor", Type: "float", Default: 0.5}},
		Run: func(c *Call) error {
			start(c)
			x := c.In("x").([]float64)
			out := make([]float64, len(x))
			for i := range x {
				out[i] = x[i] * c.Float("factor")
			}
			c.Set("out", out)
			return nil
		}})
	r.MustRegister(Kind{Name: "mean", Version: "1",
		Inputs:  []Port{{Name: "x", Type: "floats"}},
		Outputs: []Port{{Name: "out", Type: "float"}},
		Run: func(c *Call) error {
			start(c)
			s := 0.0
			for _, v := range c.In("x").([]float64) {
				s += v
			}
			c.Set("out", s/float64(len(c.In("x").([]float64))))
			return nil
		}})
	r.MustRegister(Kind{Name: "final", Version: "1",
		Inputs:  []Port{{Name: "d", Type: "floats"}, {Name: "e", Type: "float"}},
		Outputs: []Port{{Name: "out", Type: "float"}, {Name: "summary", Type: "string"}},
		Run: func(c *Call) error {
			start(c)
			s := c.In("e").(float64)
			for _, v := range c.In("d").([]float64) {
				s += v
			}
			c.Set("out", s)
			c.Set("summary", fmt.Sprintf("%.6f", s))
			return nil
		}})
	return r
}

func killGraph() *Graph {
	g := &Graph{Name: "kill", Seed: 2023}
	g.Add("a", "gen", map[string]any{"salt": 1}, nil)
	g.Add("b", "gen", map[string]any{"salt": 2}, nil)
	g.Add("e", "mean", nil, map[string]string{"x": "a.out"})
	g.Add("c", "combine", nil, map[string]string{"x": "a.out", "y": "b.out"})
	g.Add("d", "scale", nil, map[string]string{"x": "c.out"})
	g.Add("f", "final", nil, map[string]string{"d": "d.out", "e": "e.out"})
	return g
}

// TestHelperProcess is the child of TestSIGKILLResume; it does nothing otherwise.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("DAG_HELPER") != "1" {
		return
	}
	mode := os.Getenv("DAG_HELPER_MODE")
	env := &killEnv{log: os.Getenv("DAG_LOG"), blockRun: mode == "run", blockEncode: mode == "commit"}
	cache, err := OpenCache(os.Getenv("DAG_CACHE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_, err = (&Runner{Registry: killRegistry(env), Cache: cache, Parallel: 1}).Run(context.Background(), killGraph())
	fmt.Fprintln(os.Stderr, "helper finished, but it should have blocked:", err)
	os.Exit(3)
}

// verifyCache checks that every entry under objects/ is complete: a manifest naming its
// key, and every output file present with the size and sha256 the manifest gives, and
// nothing else. It returns the number of entries.
func verifyCache(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	shards, err := os.ReadDir(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shards {
		entries, _ := os.ReadDir(filepath.Join(dir, "objects", s.Name()))
		for _, e := range entries {
			n++
			ed := filepath.Join(dir, "objects", s.Name(), e.Name())
			b, err := os.ReadFile(filepath.Join(ed, "manifest.json"))
			if err != nil {
				t.Fatalf("partial cache entry %s: %v", ed, err)
			}
			var m manifest
			if err := json.Unmarshal(b, &m); err != nil || m.Key != e.Name() || !strings.HasPrefix(m.Key, s.Name()) {
				t.Fatalf("bad manifest in %s: %v", ed, err)
			}
			files, _ := os.ReadDir(ed)
			if len(files) != len(m.Outputs)+1 {
				t.Fatalf("entry %s has %d files, manifest lists %d outputs", ed, len(files), len(m.Outputs))
			}
			for port, o := range m.Outputs {
				data, err := os.ReadFile(filepath.Join(ed, o.File))
				if err != nil {
					t.Fatalf("entry %s output %s: %v", ed, port, err)
				}
				sum := sha256.Sum256(data)
				if hex.EncodeToString(sum[:]) != o.SHA256 || int64(len(data)) != o.Size {
					t.Fatalf("entry %s output %s: %d bytes, hash mismatch or size %d", ed, port, len(data), o.Size)
				}
			}
		}
	}
	return n
}

func dirLen(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestSIGKILLResume kills a run with SIGKILL in the middle (inside a node's Run, or
// half-way through writing a cache entry), then resumes it: finished nodes are reused,
// the rest run, the values equal those of an uninterrupted run, and the cache never
// holds a partial entry.
func TestSIGKILLResume(t *testing.T) {
	if os.Getenv("DAG_HELPER") == "1" {
		return
	}
	// The reference: an uninterrupted run in its own cache.
	ref, err := (&Runner{Registry: killRegistry(&killEnv{}), Cache: openCache(t)}).Run(context.Background(), killGraph())
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"run", "commit"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			cacheDir, logPath := filepath.Join(dir, "cache"), filepath.Join(dir, "log")
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), "DAG_HELPER=1", "DAG_HELPER_MODE="+mode, "DAG_CACHE="+cacheDir, "DAG_LOG="+logPath)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			marker := map[string]string{"run": "checkpoint c\n", "commit": "encode\n"}[mode]
			deadline := time.Now().Add(60 * time.Second)
			for {
				b, _ := os.ReadFile(logPath)
				if strings.Contains(string(b), marker) {
					break
				}
				select {
				case err := <-exited:
					t.Fatalf("helper exited early (%v):\n%s", err, out.String())
				case <-time.After(5 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("helper never reached %q; log:\n%s", marker, b)
				}
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
				t.Fatal(err)
			}
			<-exited
			b, _ := os.ReadFile(logPath)
			if got := strings.Fields(strings.ReplaceAll(string(b), "start ", "")); len(got) < 4 || !reflect.DeepEqual(got[:4], []string{"a", "b", "e", "c"}) {
				t.Fatalf("child log: %q", b)
			}
			if n := verifyCache(t, cacheDir); n != 3 {
				t.Fatalf("%d cache entries after the kill, want 3 (a, b, e)", n)
			}
			leftovers := dirLen(t, filepath.Join(cacheDir, "tmp"))
			if mode == "commit" && leftovers == 0 {
				t.Fatal("the kill during commit left no temp entry: the test did not exercise it")
			}

			// Resume in this process.
			cache, err := OpenCache(cacheDir)
			if err != nil {
				t.Fatal(err)
			}
			if n := dirLen(t, filepath.Join(cacheDir, "tmp")); n != 0 {
				t.Fatalf("OpenCache left %d stale temp entries", n)
			}
			env := &killEnv{cnt: &counts{}}
			r := &Runner{Registry: killRegistry(env), Cache: cache}
			res, err := r.Run(context.Background(), killGraph())
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(res); got != "a=cached b=cached c=ran d=ran e=cached f=ran" {
				t.Fatalf("resumed run: %s", got)
			}
			if got := env.cnt.ran(); !reflect.DeepEqual(got, []string{"c", "d", "f"}) {
				t.Fatalf("resumed run ran %v", got)
			}
			if !env.resumed.Load() {
				t.Error("c did not find the checkpoint it left in its ScratchDir")
			}
			if !reflect.DeepEqual(res.Values, ref.Values) {
				t.Fatalf("resumed values differ from an uninterrupted run:\n%v\n%v", res.Values["f"], ref.Values["f"])
			}
			if !reflect.DeepEqual(res.Keys, ref.Keys) {
				t.Fatal("resumed keys differ from an uninterrupted run")
			}
			if n := verifyCache(t, cacheDir); n != 6 {
				t.Fatalf("%d cache entries, want 6", n)
			}
			if n := dirLen(t, filepath.Join(cacheDir, "tmp")) + dirLen(t, filepath.Join(cacheDir, "scratch")); n != 0 {
				t.Fatalf("%d entries left in tmp/ and scratch/", n)
			}
			env.cnt.reset()
			mustRun(t, r, killGraph())
			if got := env.cnt.ran(); len(got) != 0 {
				t.Fatalf("third run ran %v", got)
			}
		})
	}
}
