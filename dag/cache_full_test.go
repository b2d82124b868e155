package dag

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// limitWriter fails like a full disk once n bytes have gone through it.
type limitWriter struct {
	w io.Writer
	n int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) <= l.n {
		l.n -= int64(len(p))
		return l.w.Write(p)
	}
	k := int(l.n)
	l.n = 0
	n, err := l.w.Write(p[:k])
	if err == nil {
		err = syscall.ENOSPC
	}
	return n, err
}

// wrappingCodec is the bytes codec, but it words write errors its own way (losing
// their kind), as some codecs do.
type wrappingCodec struct{}

func (wrappingCodec) Encode(w io.Writer, v any) error {
	b := v.([]byte)
	for len(b) > 0 {
		k := min(len(b), 4096)
		if _, err := w.Write(b[:k]); err != nil {
			return fmt.Errorf("wrapping codec: write failed: %v", err)
		}
		b = b[k:]
	}
	return nil
}

func (wrappingCodec) Decode(r io.Reader) (any, error) { return bytesCodec{}.Decode(r) }

const bigSize = 300_000

// fullRegistry: "small" writes 1 kB, "big" 300 kB in output "recon" (bytes) and "wrapped"
// 300 kB through wrappingCodec.
func fullRegistry(t testing.TB) *Registry {
	reg := NewRegistry()
	if err := reg.RegisterType("wbytes", wrappingCodec{}); err != nil {
		t.Fatal(err)
	}
	payload := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i * 7)
		}
		return b
	}
	reg.MustRegister(Kind{Name: "small", Version: "1", Outputs: []Port{{Name: "out", Type: "bytes"}},
		Run: func(c *Call) error { c.Set("out", payload(1000)); return nil }})
	reg.MustRegister(Kind{Name: "big", Version: "1", Inputs: []Port{{Name: "x", Type: "bytes"}},
		Outputs: []Port{{Name: "recon", Type: "bytes"}, {Name: "wrapped", Type: "wbytes"}},
		Run: func(c *Call) error {
			c.Set("recon", payload(bigSize))
			c.Set("wrapped", payload(bigSize))
			return nil
		}})
	return reg
}

func fullGraph() *Graph {
	g := &Graph{Name: "full"}
	g.Add("s", "small", nil, nil)
	g.Add("N", "big", nil, map[string]string{"x": "s.out"})
	return g
}

// checkNoPartial asserts that the cache holds only s's entry, verified, and nothing in tmp/.
func checkNoPartial(t *testing.T, c *Cache, res *Result) {
	t.Helper()
	rep, err := VerifyCache(c.Dir(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 1 || len(rep.Damaged) != 0 || rep.Tmp != 0 || !c.Has(res.Keys["s"]) || c.Has(res.Keys["N"]) {
		t.Fatalf("after a full disk: %+v (want only s's entry, nothing in tmp/)", rep)
	}
}

// TestCacheFullDiskHook fills the "disk" after K bytes of one file of N's entry (each
// output, the manifest; K = 0, 1, 65535, 65536, 299999 bytes) and checks: the node fails
// with an error that names the cache folder, the node and the output, and wraps ENOSPC;
// no entry and no temp folder is left; a later run with room commits a whole entry.
func TestCacheFullDiskHook(t *testing.T) {
	t.Cleanup(func() { testWriterHook = nil })
	for _, file := range []string{"out0.bin", "out1.bin", "manifest.json"} {
		for _, k := range []int64{0, 1, 65535, 65536, bigSize - 1} {
			if file == "manifest.json" && k > 100 {
				continue // the manifest is small
			}
			t.Run(fmt.Sprintf("%s/%d", file, k), func(t *testing.T) {
				c := openCache(t)
				testWriterHook = func(node, name string, w io.Writer) io.Writer {
					if node == "N" && name == file {
						return &limitWriter{w: w, n: k}
					}
					return w
				}
				res, err := (&Runner{Registry: fullRegistry(t), Cache: c}).Run(context.Background(), fullGraph())
				testWriterHook = nil
				var ne *NodeError
				if !errors.As(err, &ne) || ne.Node != "N" || !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("want node N's error wrapping ENOSPC, got %v", err)
				}
				want := fmt.Sprintf("cache folder %s is full (no space left on device) writing node %q's ", c.Dir(), "N")
				switch file {
				case "out0.bin":
					want += `output "recon"`
				case "out1.bin":
					want += `output "wrapped"`
				default:
					want += "manifest"
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q\nwant it to contain %q", err, want)
				}
				checkNoPartial(t, c, res)
				res, err = (&Runner{Registry: fullRegistry(t), Cache: c}).Run(context.Background(), fullGraph())
				if err != nil || res.Status["N"] != StatusRan || res.Status["s"] != StatusCached {
					t.Fatalf("with room: %v %v", err, res.Status)
				}
				if rep, _ := VerifyCache(c.Dir(), VerifyOptions{}); rep.Entries != 2 || len(rep.Damaged) != 0 || rep.Tmp != 0 {
					t.Fatalf("with room: %+v", rep)
				}
			})
		}
	}
}

// TestCacheFullDiskTmpfs does the same on a real 1 MiB tmpfs (N writes 600 kB plus
// what fits). It needs mount rights (root on Linux) and is skipped without them.
func TestCacheFullDiskTmpfs(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mountTmpfs(mnt, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := unmount(mnt); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	c, err := OpenCache(filepath.Join(mnt, ".dpsflow", "cache"))
	if err != nil {
		t.Fatal(err)
	}
	reg := fullRegistry(t)
	// 1 MiB holds N's two 300 kB outputs; a filler of 500 kB leaves too little.
	if err := os.WriteFile(filepath.Join(mnt, "filler"), make([]byte, 500_000), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := (&Runner{Registry: reg, Cache: c}).Run(context.Background(), fullGraph())
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Node != "N" || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want node N's error wrapping ENOSPC, got %v", err)
	}
	if want := fmt.Sprintf("cache folder %s is full (no space left on device) writing node %q's output", c.Dir(), "N"); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q\nwant it to contain %q", err, want)
	}
	checkNoPartial(t, c, res)
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	if res, err = (&Runner{Registry: reg, Cache: c}).Run(context.Background(), fullGraph()); err != nil || res.Status["N"] != StatusRan {
		t.Fatalf("with room: %v", err)
	}
	if rep, _ := VerifyCache(c.Dir(), VerifyOptions{}); rep.Entries != 2 || len(rep.Damaged) != 0 || rep.Tmp != 0 {
		t.Fatalf("with room: %+v", rep)
	}
}
