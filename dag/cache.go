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
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// hostName names this machine in temp names, so that processes on other machines sharing
// the cache folder (a shared filesystem) can tell that a temp entry is not theirs to judge.
// Tests set it to pretend to be another machine.
var hostName = safeHost(func() string { h, _ := os.Hostname(); return h }())

var unsafeHost = regexp.MustCompile(`[^A-Za-z0-9.]`)

// safeHost maps a host name to a file-name part without '-' (the field separator).
func safeHost(h string) string {
	h = unsafeHost.ReplaceAllString(h, "_")
	if h == "" {
		h = "unknown"
	}
	if len(h) > 64 {
		h = h[:64]
	}
	return h
}

// tempPID is the pid in temp names; tests set it to pretend to be a process of another
// machine.
var tempPID = os.Getpid()

// tempPrefix is the start of a temp name in tmp/: HOST-PID-what-.
func tempPrefix(what string) string {
	return fmt.Sprintf("%s-%d-%s-", hostName, tempPID, what)
}

// tempOwner parses a temp name made by tempPrefix. Names of older versions (PID-what-)
// give host "": their machine is unknown.
func tempOwner(name string) (host string, pid int, ok bool) {
	parts := strings.SplitN(name, "-", 3)
	if len(parts) < 3 {
		return "", 0, false
	}
	if pid, err := strconv.Atoi(parts[1]); err == nil {
		return parts[0], pid, true
	}
	if pid, err := strconv.Atoi(parts[0]); err == nil {
		return "", pid, true
	}
	return "", 0, false
}

// tmpMaxAge is how long a temp entry may go untouched before anyone removes it.
const tmpMaxAge = 24 * time.Hour

// staleTmp says whether a tmp/ entry is a leftover: written by a process of this machine
// that no longer exists, or untouched (no file in it modified) for tmpMaxAge. An entry of
// another machine, or of an older version that did not name its machine, is only judged
// by age: its pid means nothing here.
func (c *Cache) staleTmp(name string, now time.Time) (bool, string) {
	if host, pid, ok := tempOwner(name); ok && host == hostName && pid != tempPID && !processAlive(pid) {
		return true, fmt.Sprintf("left by process %d of this machine, which has ended", pid)
	}
	if t := newestMtime(filepath.Join(c.tmpDir(), name), now.Add(-tmpMaxAge)); !t.IsZero() && now.Sub(t) > tmpMaxAge {
		return true, fmt.Sprintf("untouched since %s", t.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// newestMtime is the latest modification time of path or anything under it (zero if
// path cannot be read). It stops at the first time after enough: the caller only wants
// to know whether everything is older.
func newestMtime(path string, enough time.Time) time.Time {
	info, err := os.Lstat(path)
	if err != nil {
		return time.Time{}
	}
	newest := info.ModTime()
	if !info.IsDir() || newest.After(enough) {
		return newest
	}
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(newest) {
			newest = fi.ModTime()
			if newest.After(enough) {
				return fs.SkipAll
			}
		}
		return nil
	})
	return newest
}

// cleanTmp removes the leftovers of tmp/ (see staleTmp).
func (c *Cache) cleanTmp() {
	entries, err := os.ReadDir(c.tmpDir())
	if err != nil {
		return
	}
	now := time.Now()
	for _, e := range entries {
		if stale, _ := c.staleTmp(e.Name(), now); stale {
			os.RemoveAll(filepath.Join(c.tmpDir(), e.Name()))
		}
	}
}

// mkTemp makes a directory in tmp/ named after this machine and process.
func (c *Cache) mkTemp(what string) (string, error) {
	return os.MkdirTemp(c.tmpDir(), tempPrefix(what))
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
	return c.removeItem(c.objectDir(key))
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

// errNotCached: the cache has no entry with that key.
var errNotCached = errors.New("not in the cache")

// damageError is a cache entry that is there but cannot be used: the run recomputes it.
type damageError struct {
	key     string
	problem EntryProblem
}

func (e *damageError) Error() string {
	return fmt.Sprintf("cache entry %s damaged (%s)", e.key, e.problem)
}

// brief is Error without the two hashes of a mismatch, for a progress line.
func (e *damageError) brief() string {
	p := e.problem
	if p.Problem == ProblemHash {
		p.Detail = ""
	}
	return fmt.Sprintf("cache entry %s damaged (%s)", e.key, p)
}

func (c *Cache) manifestPath(key string) string {
	return filepath.Join(c.objectDir(key), "manifest.json")
}

// readManifest reads an entry's manifest: errNotCached when there is no entry, a
// *damageError when it is there but unusable.
func (c *Cache) readManifest(key string) (*manifest, error) {
	m, _, err := c.readManifestRaw(key)
	return m, err
}

// readManifestRaw is readManifest that also returns the manifest's bytes.
func (c *Cache) readManifestRaw(key string) (*manifest, []byte, error) {
	b, err := os.ReadFile(c.manifestPath(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(c.objectDir(key)); errors.Is(serr, fs.ErrNotExist) {
				return nil, nil, errNotCached
			}
			return nil, nil, &damageError{key, EntryProblem{File: "manifest.json", Problem: ProblemMissing}}
		}
		return nil, nil, &damageError{key, EntryProblem{File: "manifest.json", Problem: ProblemUnreadable, Detail: errDetail(err)}}
	}
	m, p := parseManifest(key, b)
	if p != nil {
		return nil, b, &damageError{key, *p}
	}
	return m, b, nil
}

func parseManifest(key string, b []byte) (*manifest, *EntryProblem) {
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &EntryProblem{File: "manifest.json", Problem: ProblemBadManifest, Detail: err.Error()}
	}
	if m.Key != key {
		return nil, &EntryProblem{File: "manifest.json", Problem: ProblemBadManifest, Detail: fmt.Sprintf("it names key %q", m.Key)}
	}
	return &m, nil
}

// errDetail is an I/O error without the path (the report names the file already).
func errDetail(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// checkOutput checks one output file of an entry against its manifest line, streaming
// it through sha256; keep, when non-nil, receives the bytes.
func checkOutput(dir, port string, mo manifestOutput, keep *bytes.Buffer) *EntryProblem {
	p := &EntryProblem{Output: port, File: mo.File}
	if mo.File == "" || mo.File == "." || mo.File == ".." || mo.File == "manifest.json" || strings.ContainsAny(mo.File, `/\`) {
		p.Problem, p.Detail = ProblemBadManifest, fmt.Sprintf("bad file name %q", mo.File)
		return p
	}
	f, err := os.Open(filepath.Join(dir, mo.File))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			p.Problem = ProblemMissing
		} else {
			p.Problem, p.Detail = ProblemUnreadable, errDetail(err)
		}
		return p
	}
	defer f.Close()
	h := sha256.New()
	var w io.Writer = h
	if keep != nil {
		if st, err := f.Stat(); err == nil && st.Size() > 0 {
			keep.Grow(int(st.Size())) // one allocation, as os.ReadFile made, not doubling growth
		}
		w = io.MultiWriter(h, keep)
	}
	n, err := io.Copy(w, f)
	switch {
	case err != nil:
		p.Problem, p.Detail = ProblemUnreadable, errDetail(err)
	case n < mo.Size:
		p.Problem, p.Detail = ProblemTruncated, fmt.Sprintf("%d of %d bytes", n, mo.Size)
	case n > mo.Size:
		p.Problem, p.Detail = ProblemSize, fmt.Sprintf("%d bytes, manifest says %d", n, mo.Size)
	default:
		if sum := hex.EncodeToString(h.Sum(nil)); sum != mo.SHA256 {
			p.Problem, p.Detail = ProblemHash, fmt.Sprintf("sha256 %s, manifest says %s", sum, mo.SHA256)
		} else {
			return nil
		}
	}
	return p
}

// lookup reads a node's outputs back: values and the sha256 of each output's bytes. It
// returns errNotCached when the entry is not there, and a *damageError when it is there
// but unusable (a file missing, truncated or changed; an unreadable manifest; outputs
// that do not match the kind): the caller then runs the node and replaces the entry.
// A use time is recorded on success (see GCCache).
func (c *Cache) lookup(key string, k *Kind, reg *Registry) (map[string]any, map[string]string, error) {
	for attempt := 0; ; attempt++ {
		values, hashes, mb, err := c.lookupOnce(key, k, reg)
		if err == nil {
			c.touch(key)
			return values, hashes, nil
		}
		var de *damageError
		if !errors.As(err, &de) || attempt == 2 {
			return nil, nil, err
		}
		// A concurrent run may have replaced (or removed) the entry while it was read:
		// read it again when its manifest is not the one just read.
		now, rerr := os.ReadFile(c.manifestPath(key))
		switch {
		case errors.Is(rerr, fs.ErrNotExist):
			if _, serr := os.Stat(c.objectDir(key)); errors.Is(serr, fs.ErrNotExist) {
				return nil, nil, errNotCached
			}
			if mb == nil {
				return nil, nil, err // no manifest both times
			}
		case rerr != nil || bytes.Equal(now, mb):
			return nil, nil, err
		}
	}
}

func (c *Cache) lookupOnce(key string, k *Kind, reg *Registry) (map[string]any, map[string]string, []byte, error) {
	m, mb, err := c.readManifestRaw(key)
	if err != nil {
		return nil, nil, mb, err
	}
	damaged := func(p EntryProblem) (map[string]any, map[string]string, []byte, error) {
		return nil, nil, mb, &damageError{key, p}
	}
	dir := c.objectDir(key)
	values := make(map[string]any, len(k.Outputs))
	hashes := make(map[string]string, len(k.Outputs))
	for _, p := range k.Outputs {
		mo, ok := m.Outputs[p.Name]
		if !ok {
			return damaged(EntryProblem{Output: p.Name, File: "manifest.json", Problem: ProblemBadManifest, Detail: fmt.Sprintf("no output %q", p.Name)})
		}
		if mo.Type != p.Type {
			return damaged(EntryProblem{Output: p.Name, File: "manifest.json", Problem: ProblemBadManifest, Detail: fmt.Sprintf("output %q has type %q, want %q", p.Name, mo.Type, p.Type)})
		}
		codec, _ := reg.Type(p.Type)
		if codec == nil {
			return nil, nil, mb, fmt.Errorf("cache entry %s: output %q: type %q has no codec", key, p.Name, p.Type)
		}
		var buf bytes.Buffer
		if prob := checkOutput(dir, p.Name, mo, &buf); prob != nil {
			return damaged(*prob)
		}
		v, err := codec.Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			return damaged(EntryProblem{Output: p.Name, File: mo.File, Problem: ProblemDecode, Detail: err.Error()})
		}
		values[p.Name] = v
		hashes[p.Name] = mo.SHA256
	}
	return values, hashes, mb, nil
}

// touchEvery bounds how often a read records a use time (one metadata write per entry per
// interval, however many workers read it).
const touchEvery = 10 * time.Minute

// touch records that the entry was used now: the manifest's modification time is the
// entry's last use (its commit counts as one). Errors are ignored (a read-only cache).
func (c *Cache) touch(key string) {
	p := c.manifestPath(key)
	now := time.Now()
	if info, err := os.Stat(p); err != nil || now.Sub(info.ModTime()) < touchEvery {
		return
	}
	os.Chtimes(p, time.Time{}, now)
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

// testWriterHook, when set (by tests), wraps the writer of each file commit writes for a
// node: a test makes it fail as a full disk would.
var testWriterHook func(node, file string, w io.Writer) io.Writer

// writeErr explains an error met writing the cache; a full disk or an exhausted quota
// names the cache folder.
func (c *Cache) writeErr(err error, what string) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("cache folder %s is full (no space left on device) %s: %w", c.dir, what, err)
	case errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("cache folder %s is over its disk quota %s: %w", c.dir, what, err)
	}
	return fmt.Errorf("cache folder %s: %s: %w", c.dir, what, err)
}

// errWriter keeps the first error of the writer under it: a codec may wrap it in words
// that lose its kind (such as "no space left on device").
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// writeFile writes one file of an entry being committed (through the test hook), synced.
// ioErr says err is the file's own I/O error (its first), not the codec's.
func writeFile(node, path string, write func(io.Writer) error) (size int64, sum string, ioErr bool, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, "", true, err
	}
	var w io.Writer = f
	if testWriterHook != nil {
		w = testWriterHook(node, filepath.Base(path), f)
	}
	ew := &errWriter{w: w}
	bw := bufio.NewWriterSize(ew, 1<<16)
	hw := &hashingWriter{w: bw, h: sha256.New()}
	err = write(hw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		if err = f.Sync(); err != nil {
			ew.err = err
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err, ew.err = cerr, cerr
	}
	if ew.err != nil {
		return hw.size, "", true, ew.err
	}
	return hw.size, hex.EncodeToString(hw.h.Sum(nil)), false, err
}

// commit writes a node's outputs under key: into a temp dir in tmp/ (each file synced,
// the manifest last), then renamed into objects/, so that the entry appears whole or not
// at all (a full disk leaves nothing behind). replace says what to do when the key is
// already there: replace it (a forced rerun, a damaged entry) or keep it. When several
// processes commit one key at once, one entry wins and stays whole. It returns the
// sha256 of each output's bytes.
func (c *Cache) commit(key, nodeID string, comps *keyComponents, k *Kind, reg *Registry, values map[string]any, replace bool) (map[string]string, error) {
	tmp, err := c.mkTemp("commit")
	if err != nil {
		return nil, c.writeErr(err, fmt.Sprintf("making a temp folder for node %q's outputs", nodeID))
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
		size, h, ioErr, err := writeFile(nodeID, filepath.Join(tmp, name), func(w io.Writer) error {
			return codec.Encode(w, values[p.Name])
		})
		if ioErr {
			return nil, c.writeErr(err, fmt.Sprintf("writing node %q's output %q", nodeID, p.Name))
		}
		if err != nil {
			return nil, fmt.Errorf("output %q: encoding for the cache: %w", p.Name, err)
		}
		hashes[p.Name] = h
		m.Outputs[p.Name] = manifestOutput{File: name, Type: p.Type, SHA256: h, Size: size}
	}
	mb, err := json.MarshalIndent(&m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if _, _, _, err := writeFile(nodeID, filepath.Join(tmp, "manifest.json"), func(w io.Writer) error {
		_, err := w.Write(mb)
		return err
	}); err != nil {
		return nil, c.writeErr(err, fmt.Sprintf("writing node %q's manifest", nodeID))
	}
	syncDir(tmp)
	final := c.objectDir(key)
	parent := filepath.Dir(final)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, c.writeErr(err, fmt.Sprintf("committing node %q's outputs", nodeID))
	}
	removed := false
	for attempt := 0; ; attempt++ {
		err := os.Rename(tmp, final)
		if err == nil {
			break
		}
		if _, serr := os.Stat(final); serr != nil {
			if errors.Is(serr, fs.ErrNotExist) && attempt < 3 {
				continue // removed meanwhile by another process (a replace, gc): try again
			}
			return nil, c.writeErr(err, fmt.Sprintf("committing node %q's outputs", nodeID))
		}
		// The key is there: written by a concurrent run, or this is a replace. After our
		// own removal, an entry there is a concurrent run's fresh one: keep it.
		if !replace || removed {
			c.touch(key)
			return hashes, nil
		}
		if err := c.Remove(key); err != nil {
			return nil, c.writeErr(err, fmt.Sprintf("replacing the cache entry of node %q", nodeID))
		}
		removed = true
	}
	committed = true
	syncDir(parent)
	return hashes, nil
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

// ---- verification and garbage collection ----

// Problems found in a cache entry (EntryProblem.Problem).
const (
	ProblemMissing     = "missing"       // the file is not there
	ProblemTruncated   = "truncated"     // shorter than the manifest says
	ProblemSize        = "wrong size"    // longer than the manifest says
	ProblemHash        = "hash mismatch" // right size, other bytes
	ProblemUnreadable  = "unreadable"    // it cannot be read (permissions, I/O error)
	ProblemBadManifest = "bad manifest"  // the manifest is not valid JSON, names another key or a bad file
	ProblemDecode      = "cannot decode" // the bytes match but the type's codec rejects them
	ProblemStray       = "not an entry"  // something in objects/ that is not an entry folder
)

// EntryProblem is what is wrong with one file of a cache entry.
type EntryProblem struct {
	Output  string `json:"output,omitempty"` // the node output, when the file holds one
	File    string `json:"file"`             // file name inside the entry folder
	Problem string `json:"problem"`          // one of the Problem constants
	Detail  string `json:"detail,omitempty"`
}

func (p EntryProblem) String() string {
	s := p.File
	if p.Output != "" {
		s = fmt.Sprintf("output %q (%s)", p.Output, p.File)
	}
	s += " " + p.Problem
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// DamagedEntry is a cache entry that a run cannot use.
type DamagedEntry struct {
	Key      string         `json:"key"`            // "" for a stray folder or file
	Node     string         `json:"node,omitempty"` // the node that wrote it, when the manifest says
	Path     string         `json:"path"`
	Problems []EntryProblem `json:"problems"`
	Removed  bool           `json:"removed,omitempty"`
}

// VerifyOptions says what VerifyCache does besides checking.
type VerifyOptions struct {
	Remove bool // delete damaged entries
}

// VerifyReport is what VerifyCache found.
type VerifyReport struct {
	Dir          string         `json:"dir"`
	Entries      int            `json:"entries"` // entry folders checked (damaged ones included)
	Bytes        int64          `json:"bytes"`   // their total size
	Damaged      []DamagedEntry `json:"damaged"`
	Scratch      int            `json:"scratch"` // partial states of nodes that may resume (scratch/)
	ScratchBytes int64          `json:"scratch_bytes"`
	Tmp          int            `json:"tmp"` // writes in progress or left by killed runs (tmp/)
	TmpBytes     int64          `json:"tmp_bytes"`
}

// openExisting opens a cache folder that must exist, without creating or cleaning
// anything.
func openExisting(dir string) (*Cache, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("dag: cache folder %s: %w", dir, err)
	}
	if info, err := os.Stat(filepath.Join(abs, "objects")); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("dag: %s is not a cache folder (no objects/ in it)", abs)
	}
	return &Cache{dir: abs}, nil
}

// cacheItem is a folder (or stray file) of objects/, scratch/ or tmp/.
type cacheItem struct {
	name, path string
	key        string // for entries with a valid name
	stray      bool   // in objects/ but not an entry folder
}

// listObjects lists what objects/ holds.
func (c *Cache) listObjects() ([]cacheItem, error) {
	root := filepath.Join(c.dir, "objects")
	shards, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("dag: cache folder %s: %w", c.dir, err)
	}
	var out []cacheItem
	for _, s := range shards {
		sp := filepath.Join(root, s.Name())
		if !s.IsDir() {
			out = append(out, cacheItem{name: s.Name(), path: sp, stray: true})
			continue
		}
		entries, err := os.ReadDir(sp)
		if err != nil {
			return nil, fmt.Errorf("dag: cache folder %s: %w", c.dir, err)
		}
		for _, e := range entries {
			it := cacheItem{name: e.Name(), path: filepath.Join(sp, e.Name())}
			if e.IsDir() && keyRE.MatchString(e.Name()) && e.Name()[:2] == s.Name() {
				it.key = e.Name()
			} else {
				it.stray = true
			}
			out = append(out, it)
		}
	}
	return out, nil
}

// listDir lists the folders of scratch/ or tmp/ (missing: none).
func (c *Cache) listDir(sub string) []cacheItem {
	es, _ := os.ReadDir(filepath.Join(c.dir, sub))
	out := make([]cacheItem, len(es))
	for i, e := range es {
		out[i] = cacheItem{name: e.Name(), path: filepath.Join(c.dir, sub, e.Name())}
	}
	return out
}

// treeSize is the total size of the files under path.
func treeSize(path string) int64 {
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// checkEntry re-hashes an entry: the manifest and every output file it lists. gone says
// the entry vanished while it was checked (removed or replaced by a run).
func (c *Cache) checkEntry(key string) (node string, problems []EntryProblem, gone bool) {
	m, err := c.readManifest(key)
	if err != nil {
		if errors.Is(err, errNotCached) {
			return "", nil, true
		}
		var de *damageError
		if errors.As(err, &de) {
			return "", []EntryProblem{de.problem}, false
		}
		return "", []EntryProblem{{File: "manifest.json", Problem: ProblemUnreadable, Detail: err.Error()}}, false
	}
	dir := c.objectDir(key)
	for _, port := range sortedKeys(m.Outputs) {
		if p := checkOutput(dir, port, m.Outputs[port], nil); p != nil {
			problems = append(problems, *p)
		}
	}
	if len(problems) > 0 {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return m.Node, nil, true
		}
	}
	return m.Node, problems, false
}

// removeItem deletes a folder of the cache: moved aside into tmp/ first, so that a reader
// never sees half of it.
func (c *Cache) removeItem(path string) error {
	tmp, err := c.mkTemp("rm")
	if err != nil {
		return err
	}
	if err := os.Rename(path, filepath.Join(tmp, "item")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		os.RemoveAll(tmp)
		return err
	}
	return os.RemoveAll(tmp)
}

// VerifyCache re-hashes every entry of the cache folder dir (which must exist, with an
// objects/ folder): the manifest and each output file's size and sha256. It reports
// the damaged entries (which file, what is wrong) and, with opts.Remove, deletes them;
// it also counts what scratch/ and tmp/ hold. Entries written or replaced while it runs
// are checked as they are found; one removed meanwhile is skipped.
func VerifyCache(dir string, opts VerifyOptions) (*VerifyReport, error) {
	c, err := openExisting(dir)
	if err != nil {
		return nil, err
	}
	items, err := c.listObjects()
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Dir: c.dir, Damaged: []DamagedEntry{}}
	for _, it := range items {
		d := DamagedEntry{Key: it.key, Path: it.path}
		if it.stray {
			d.Problems = []EntryProblem{{File: it.name, Problem: ProblemStray, Detail: "objects/ holds only <k[:2]>/<64-hex key> folders"}}
		} else {
			var gone bool
			d.Node, d.Problems, gone = c.checkEntry(it.key)
			if gone {
				continue
			}
		}
		rep.Entries++
		rep.Bytes += treeSize(it.path)
		if len(d.Problems) == 0 {
			continue
		}
		if opts.Remove {
			// Check again: a run may have replaced it with a good entry meanwhile.
			still := it.stray
			if !still {
				_, again, gone := c.checkEntry(it.key)
				still = !gone && len(again) > 0
			}
			if still {
				if err := c.removeItem(it.path); err != nil {
					return rep, fmt.Errorf("dag: removing damaged cache entry %s: %w", it.path, err)
				}
				d.Removed = true
			}
		}
		rep.Damaged = append(rep.Damaged, d)
	}
	for _, it := range c.listDir("scratch") {
		rep.Scratch++
		rep.ScratchBytes += treeSize(it.path)
	}
	for _, it := range c.listDir("tmp") {
		rep.Tmp++
		rep.TmpBytes += treeSize(it.path)
	}
	return rep, nil
}

// GCOptions says what GCCache removes.
type GCOptions struct {
	// Unused removes entries not used (read back by a run, or committed) for longer than
	// this, and scratch states untouched for as long; 0: no age limit.
	Unused time.Duration
	// MaxSize then removes the least recently used entries until the entries total at
	// most this many bytes; 0: no size limit. scratch/ and tmp/ do not count.
	MaxSize int64
	// DryRun reports what would be removed, removing nothing.
	DryRun bool
}

// GCItem is something GCCache removed (or would remove).
type GCItem struct {
	What     string    `json:"what"` // "entry", "scratch" or "tmp"
	Name     string    `json:"name"` // the key, or the folder name
	Node     string    `json:"node,omitempty"`
	Bytes    int64     `json:"bytes"`
	LastUsed time.Time `json:"last_used"`
	Why      string    `json:"why"`
}

// GCReport is what GCCache did.
type GCReport struct {
	Dir       string   `json:"dir"`
	DryRun    bool     `json:"dry_run,omitempty"`
	Removed   []GCItem `json:"removed"`
	Freed     int64    `json:"freed"` // bytes
	Kept      int      `json:"kept"`  // entries left
	KeptBytes int64    `json:"kept_bytes"`
}

// scratchGrace protects a scratch state written this recently: a node may be using it.
const scratchGrace = time.Hour

// GCCache removes from the cache folder dir (which must exist) what no recent run used:
// entries unused for opts.Unused, then least recently used entries until the rest fit in
// opts.MaxSize; scratch states untouched for opts.Unused (never one written in the last
// hour); and tmp/ leftovers (of ended processes of this machine, or untouched for a
// day). An entry's last use is its manifest's modification time, which a run that reads
// the entry back moves forward. Other processes may use the cache meanwhile: removal
// moves an entry aside in one rename, so that a reader finds it whole or not at all.
func GCCache(dir string, opts GCOptions) (*GCReport, error) {
	if opts.Unused < 0 || opts.MaxSize < 0 {
		return nil, fmt.Errorf("dag: GCCache: negative limit (unused %v, max size %d)", opts.Unused, opts.MaxSize)
	}
	c, err := openExisting(dir)
	if err != nil {
		return nil, err
	}
	items, err := c.listObjects()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rep := &GCReport{Dir: c.dir, DryRun: opts.DryRun, Removed: []GCItem{}}
	remove := func(path string, it GCItem) error {
		if !opts.DryRun {
			if err := c.removeItem(path); err != nil {
				return fmt.Errorf("dag: removing %s: %w", path, err)
			}
		}
		rep.Removed = append(rep.Removed, it)
		rep.Freed += it.Bytes
		return nil
	}
	type entry struct {
		GCItem
		path string
	}
	var kept []entry
	for _, it := range items {
		e := entry{GCItem: GCItem{What: "entry", Name: it.key, Bytes: treeSize(it.path)}, path: it.path}
		if it.stray {
			e.Name = it.name
		}
		if info, err := os.Stat(filepath.Join(it.path, "manifest.json")); err == nil {
			e.LastUsed = info.ModTime()
		} else if info, err := os.Lstat(it.path); err == nil {
			e.LastUsed = info.ModTime()
		} else {
			continue // removed meanwhile
		}
		if it.key != "" {
			if b, err := os.ReadFile(filepath.Join(it.path, "manifest.json")); err == nil {
				if m, p := parseManifest(it.key, b); p == nil {
					e.Node = m.Node
				}
			}
		}
		if opts.Unused > 0 && now.Sub(e.LastUsed) > opts.Unused {
			e.Why = fmt.Sprintf("unused for %s", roundAge(now.Sub(e.LastUsed)))
			if err := remove(e.path, e.GCItem); err != nil {
				return rep, err
			}
			continue
		}
		kept = append(kept, e)
	}
	if opts.MaxSize > 0 {
		var total int64
		for _, e := range kept {
			total += e.Bytes
		}
		sort.Slice(kept, func(i, j int) bool {
			if !kept[i].LastUsed.Equal(kept[j].LastUsed) {
				return kept[i].LastUsed.Before(kept[j].LastUsed)
			}
			return kept[i].Name < kept[j].Name
		})
		n := 0
		for n < len(kept) && total > opts.MaxSize {
			e := kept[n]
			e.Why = fmt.Sprintf("least recently used (last %s ago; %d bytes over the limit)", roundAge(now.Sub(e.LastUsed)), total-opts.MaxSize)
			if err := remove(e.path, e.GCItem); err != nil {
				return rep, err
			}
			total -= e.Bytes
			n++
		}
		kept = kept[n:]
	}
	for _, e := range kept {
		rep.Kept++
		rep.KeptBytes += e.Bytes
	}
	if opts.Unused > 0 {
		for _, it := range c.listDir("scratch") {
			t := newestMtime(it.path, now.Add(-max(opts.Unused, scratchGrace)))
			if t.IsZero() || now.Sub(t) <= max(opts.Unused, scratchGrace) {
				continue
			}
			gi := GCItem{What: "scratch", Name: it.name, Bytes: treeSize(it.path), LastUsed: t, Why: fmt.Sprintf("partial state untouched for %s", roundAge(now.Sub(t)))}
			if err := remove(it.path, gi); err != nil {
				return rep, err
			}
		}
	}
	for _, it := range c.listDir("tmp") {
		stale, why := c.staleTmp(it.name, now)
		if !stale {
			continue
		}
		gi := GCItem{What: "tmp", Name: it.name, Bytes: treeSize(it.path), LastUsed: newestMtime(it.path, now), Why: why}
		if !opts.DryRun {
			if err := os.RemoveAll(it.path); err != nil {
				return rep, fmt.Errorf("dag: removing %s: %w", it.path, err)
			}
		}
		rep.Removed = append(rep.Removed, gi)
		rep.Freed += gi.Bytes
	}
	return rep, nil
}

// roundAge writes a duration for people: "3d4h", "5h12m", "42s".
func roundAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		if h := (d - days*24*time.Hour) / time.Hour; h > 0 {
			return fmt.Sprintf("%dd%dh", days, h)
		}
		return fmt.Sprintf("%dd", days)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Second).String()
	}
}
