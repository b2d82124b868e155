package dag

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache is a content-addressed store of node outputs on disk. Several runners, in one
// process or several, may share one cache directory.
type Cache struct {
	dir  string
	last sync.Map // lastPath -> key most recently written or read there by this process
}

// OpenCache opens (creating it if needed) a cache directory, and removes temporary
// entries left by runs that were killed while writing.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("dag: OpenCache: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dag: OpenCache %s: %w", dir, err)
	}
	c := &Cache{dir: abs}
	for _, sub := range []string{"objects", "tmp", "scratch", "last"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), 0o755); err != nil {
			return nil, fmt.Errorf("dag: OpenCache: %w", err)
		}
	}
	c.cleanTmp()
	return c, nil
}

// Dir is the cache directory (absolute).
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) tmpDir() string { return filepath.Join(c.dir, "tmp") }

func (c *Cache) objectDir(key string) string {
	return filepath.Join(c.dir, "objects", key[:2], key)
}

func (c *Cache) scratchDir(key string) string {
	return filepath.Join(c.dir, "scratch", key)
}

// cleanTmp removes entries of tmp/ written by processes that no longer exist (their
// names start with the writer's pid), and any older than a day.
func (c *Cache) cleanTmp() {
	entries, err := os.ReadDir(c.tmpDir())
	if err != nil {
		return
	}
	me := os.Getpid()
	for _, e := range entries {
		name := e.Name()
		stale := false
		if i := strings.IndexByte(name, '-'); i > 0 {
			if pid, err := strconv.Atoi(name[:i]); err == nil && pid != me && !processAlive(pid) {
				stale = true
			}
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			stale = true
		}
		if stale {
			os.RemoveAll(filepath.Join(c.tmpDir(), name))
		}
	}
}

// mkTemp makes a directory in tmp/ named after this process.
func (c *Cache) mkTemp(what string) (string, error) {
	return os.MkdirTemp(c.tmpDir(), fmt.Sprintf("%d-%s-", os.Getpid(), what))
}

var keyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Has reports whether a complete entry with that key is in the cache.
func (c *Cache) Has(key string) bool {
	if !keyRE.MatchString(key) {
		return false
	}
	_, err := c.readManifest(key)
	return err == nil
}

// Remove deletes the entry with that key, if any.
func (c *Cache) Remove(key string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("dag: bad cache key %q", key)
	}
	d := c.objectDir(key)
	if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Move aside first so that a reader never sees half an entry.
	tmp, err := c.mkTemp("rm")
	if err != nil {
		return err
	}
	aside := filepath.Join(tmp, "entry")
	if err := os.Rename(d, aside); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return os.RemoveAll(tmp)
}

// keyComponents is what a cache key is the hash of.
type keyComponents struct {
	Kind    string            `json:"kind"`
	Version string            `json:"version"`
	Code    string            `json:"code,omitempty"` // Kind.CodeVersion; omitted when unset, so old keys stay valid
	Params  map[string]any    `json:"params"`
	Seed    uint64            `json:"seed"`
	Inputs  map[string]string `json:"inputs"` // input port -> sha256 of upstream encoded output
	// External is the kind's Fingerprint of what the node reads outside the graph.
	External string `json:"external,omitempty"`
}

// key is the sha256 of the canonical JSON of the components (encoding/json sorts map
// keys; parameters are normalised first).
func (k *keyComponents) key() (string, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("params cannot be encoded as JSON: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

type manifestOutput struct {
	File   string `json:"file"`
	Type   string `json:"type"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

type manifest struct {
	Key        string                    `json:"key"`
	Node       string                    `json:"node"` // the node that wrote it (informative)
	Components *keyComponents            `json:"components"`
	Outputs    map[string]manifestOutput `json:"outputs"`
	Created    time.Time                 `json:"created"`
}

func (c *Cache) readManifest(key string) (*manifest, error) {
	b, err := os.ReadFile(filepath.Join(c.objectDir(key), "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("cache entry %s: manifest: %w", key, err)
	}
	if m.Key != key {
		return nil, fmt.Errorf("cache entry %s: manifest names key %s", key, m.Key)
	}
	return &m, nil
}

// lookup reads a node's outputs back: values and the sha256 of each output's bytes. Every
// file is checked against the manifest's hash; any mismatch is an error (the caller runs
// the node instead).
func (c *Cache) lookup(key string, k *Kind, reg *Registry) (map[string]any, map[string]string, error) {
	m, err := c.readManifest(key)
	if err != nil {
		return nil, nil, err
	}
	dir := c.objectDir(key)
	values := make(map[string]any, len(k.Outputs))
	hashes := make(map[string]string, len(k.Outputs))
	for _, p := range k.Outputs {
		mo, ok := m.Outputs[p.Name]
		if !ok {
			return nil, nil, fmt.Errorf("cache entry %s: no output %q", key, p.Name)
		}
		if mo.Type != p.Type {
			return nil, nil, fmt.Errorf("cache entry %s: output %q has type %q, want %q", key, p.Name, mo.Type, p.Type)
		}
		codec, _ := reg.Type(p.Type)
		if codec == nil {
			return nil, nil, fmt.Errorf("cache entry %s: output %q: type %q has no codec", key, p.Name, p.Type)
		}
		if strings.ContainsAny(mo.File, `/\`) || mo.File == ".." {
			return nil, nil, fmt.Errorf("cache entry %s: bad file name %q", key, mo.File)
		}
		b, err := os.ReadFile(filepath.Join(dir, mo.File))
		if err != nil {
			return nil, nil, fmt.Errorf("cache entry %s: %w", key, err)
		}
		sum := sha256.Sum256(b)
		h := hex.EncodeToString(sum[:])
		if h != mo.SHA256 {
			return nil, nil, fmt.Errorf("cache entry %s: output %q is corrupt (sha256 %s, manifest says %s)", key, p.Name, h, mo.SHA256)
		}
		v, err := codec.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, nil, fmt.Errorf("cache entry %s: output %q: %w", key, p.Name, err)
		}
		values[p.Name] = v
		hashes[p.Name] = h
	}
	return values, hashes, nil
}

// hashingWriter counts and hashes what goes through it.
type hashingWriter struct {
	w    io.Writer
	h    hash.Hash
	size int64
}

func (hw *hashingWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.size += int64(n)
	return n, err
}

// hashValue is the sha256 of a value's encoded bytes, without storing them.
func hashValue(codec Codec, v any) (string, error) {
	h := sha256.New()
	if err := codec.Encode(h, v); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// commit writes a node's outputs under key: into a temp dir in tmp/ (each file synced,
// the manifest last), then renamed into objects/. replace says what to do when the key
// is already there: replace it (a forced rerun) or keep it. It returns the sha256 of
// each output's bytes.
func (c *Cache) commit(key, nodeID string, comps *keyComponents, k *Kind, reg *Registry, values map[string]any, replace bool) (map[string]string, error) {
	tmp, err := c.mkTemp("commit")
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	m := manifest{Key: key, Node: nodeID, Components: comps, Outputs: map[string]manifestOutput{}, Created: time.Now().UTC()}
	hashes := make(map[string]string, len(k.Outputs))
	for i, p := range k.Outputs {
		codec, _ := reg.Type(p.Type)
		if codec == nil {
			return nil, fmt.Errorf("output %q: type %q has no codec", p.Name, p.Type)
		}
		name := fmt.Sprintf("out%d.bin", i)
		f, err := os.Create(filepath.Join(tmp, name))
		if err != nil {
			return nil, err
		}
		bw := bufio.NewWriterSize(f, 1<<16)
		hw := &hashingWriter{w: bw, h: sha256.New()}
		err = codec.Encode(hw, values[p.Name])
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("output %q: encoding for the cache: %w", p.Name, err)
		}
		h := hex.EncodeToString(hw.h.Sum(nil))
		hashes[p.Name] = h
		m.Outputs[p.Name] = manifestOutput{File: name, Type: p.Type, SHA256: h, Size: hw.size}
	}
	mb, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, "manifest.json"), mb); err != nil {
		return nil, err
	}
	syncDir(tmp)
	final := c.objectDir(key)
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr != nil {
			return nil, fmt.Errorf("committing cache entry: %w", err)
		}
		// The key is already there: written by a concurrent run, or this is a forced
		// rerun.
		if !replace {
			return hashes, nil
		}
		if err := c.Remove(key); err != nil {
			return nil, fmt.Errorf("replacing cache entry: %w", err)
		}
		if err := os.Rename(tmp, final); err != nil {
			return nil, fmt.Errorf("committing cache entry: %w", err)
		}
	}
	committed = true
	syncDir(parent)
	return hashes, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- last-run records, for Explain ----

// lastRecord is what the cache remembers of a graph node's last key.
type lastRecord struct {
	Key        string         `json:"key"`
	Components *keyComponents `json:"components"`
	Time       time.Time      `json:"time"`
}

// lastRecordRaw is lastRecord read back with parameters as raw JSON, for comparison.
type lastRecordRaw struct {
	Key        string `json:"key"`
	Components struct {
		Kind     string                     `json:"kind"`
		Version  string                     `json:"version"`
		Code     string                     `json:"code,omitempty"`
		Params   map[string]json.RawMessage `json:"params"`
		Seed     uint64                     `json:"seed"`
		Inputs   map[string]string          `json:"inputs"`
		External string                     `json:"external,omitempty"`
	} `json:"components"`
	Time time.Time `json:"time"`
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// safeName maps a graph name or node id to a file name; names that had to change get a
// short hash so that they stay distinct.
func safeName(s string) string {
	if s == "" {
		return "_unnamed"
	}
	t := unsafeName.ReplaceAllString(s, "_")
	if t == s && !strings.HasPrefix(s, ".") && len(s) <= 100 {
		return s
	}
	if len(t) > 80 {
		t = t[:80]
	}
	sum := sha256.Sum256([]byte(s))
	return t + "~" + hex.EncodeToString(sum[:4])
}

func (c *Cache) lastPath(graph, node string) string {
	return filepath.Join(c.dir, "last", safeName(graph), safeName(node)+".json")
}

func (c *Cache) readLast(graph, node string) (*lastRecordRaw, error) {
	b, err := os.ReadFile(c.lastPath(graph, node))
	if err != nil {
		return nil, err
	}
	var r lastRecordRaw
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// writeLast records a node's key unless it is already the recorded one. It is advisory:
// errors are ignored, and it is not synced.
func (c *Cache) writeLast(graph, node, key string, comps *keyComponents) {
	p := c.lastPath(graph, node)
	if k, ok := c.last.Load(p); ok && k == key {
		return
	}
	if old, err := c.readLast(graph, node); err == nil && old.Key == key {
		c.last.Store(p, key)
		return
	}
	b, err := json.MarshalIndent(&lastRecord{Key: key, Components: comps, Time: time.Now().UTC()}, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	if err := atomicfile.Write(p, b, 0o644); err != nil {
		return
	}
	c.last.Store(p, key)
}
