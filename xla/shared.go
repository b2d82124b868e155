package xla

import (
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	gomlxxla "github.com/gomlx/gomlx/backends/xla"
)

// shared holds the backends handed out by Shared, one per normalised spec.
var shared = struct {
	mu      sync.Mutex
	entries map[string]*sharedEntry
}{entries: map[string]*sharedEntry{}}

type sharedEntry struct {
	backend backends.Backend
	refs    int
}

// sharedKey normalises a parsed spec so that specs meaning the same backend share one:
// aliases ("go", "simplego") and "" (→ $DPSFLOW_BACKEND, else DefaultSpec) resolve to
// their kind, option order does not matter, and auto_install (which only affects how a
// plugin is found) is left out.
func sharedKey(s Spec) string {
	opts := slices.DeleteFunc(slices.Clone(s.Options), func(o string) bool { return o == "auto_install" })
	slices.Sort(opts)
	opts = slices.Compact(opts)
	return string(s.Kind) + ":" + s.Plugin + "," + strings.Join(opts, ",")
}

// Shared returns the process's backend for spec, creating it on first use, and a release
// function to call once the caller no longer uses it nor any tensor or executable on it.
// Specs that mean the same backend ("", "embedded", "go", $DPSFLOW_BACKEND's value) get
// the same one; the backend is reference-counted, and when the last holder releases it,
// it is finalized, so the next Shared
// creates a fresh one. Calling release more than once has no further effect. Safe for
// concurrent use. Errors are New's; a failed creation is not remembered.
func Shared(spec string) (backends.Backend, func(), error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, nil, err
	}
	key := sharedKey(s)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	e := shared.entries[key]
	if e == nil {
		b, err := newFromSpec(s)
		if err != nil {
			return nil, nil, err
		}
		e = &sharedEntry{backend: b}
		shared.entries[key] = e
	}
	e.refs++
	var once sync.Once
	release := func() { once.Do(func() { releaseShared(key, e) }) }
	return e.backend, release, nil
}

// releaseShared drops one reference to e and finalizes its backend after the last one.
func releaseShared(key string, e *sharedEntry) {
	shared.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && shared.entries[key] == e {
		delete(shared.entries, key)
	}
	shared.mu.Unlock()
	if last {
		finalize(e.backend)
	}
}

// finalize releases b's resources and forgets what this package remembers about it.
func finalize(b backends.Backend) {
	if xb, ok := b.(*gomlxxla.Backend); ok {
		pjrtMu.Lock()
		delete(loadedPJRT, xb)
		pjrtMu.Unlock()
	}
	b.Finalize()
}

// SharedCount says how many holders the shared backend for spec has (0 when none is
// alive); for tests and reports.
func SharedCount(spec string) int {
	s, err := ParseSpec(spec)
	if err != nil {
		return 0
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if e := shared.entries[sharedKey(s)]; e != nil {
		return e.refs
	}
	return 0
}
