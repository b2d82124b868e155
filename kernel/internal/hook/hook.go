// Package hook connects the packages that cells call (display, nb) to the kernel
// that runs the cell: where displays go and which context a cell runs under.
// It is internal so that interpreted cells cannot rewire it.
package hook

import (
	"context"
	"sync"
)

// Event is one display message: display_data, update_display_data or clear_output.
type Event struct {
	Data, Metadata map[string]any
	ID             string
	Update         bool
	Clear, Wait    bool
}

var (
	mu  sync.RWMutex
	pub func(Event)
	ctx = context.Background()
)

// Set installs the publisher and context of the running cell and returns a function
// that restores the previous ones.
func Set(p func(Event), c context.Context) (restore func()) {
	mu.Lock()
	oldP, oldC := pub, ctx
	pub, ctx = p, c
	mu.Unlock()
	return func() {
		mu.Lock()
		pub, ctx = oldP, oldC
		mu.Unlock()
	}
}

// Publish sends e to the running cell's output; it reports false when no kernel
// is listening (the caller then falls back to plain text).
func Publish(e Event) bool {
	mu.RLock()
	p := pub
	mu.RUnlock()
	if p == nil {
		return false
	}
	p(e)
	return true
}

// Context is the running cell's context, or context.Background outside a kernel.
func Context() context.Context {
	mu.RLock()
	defer mu.RUnlock()
	return ctx
}
