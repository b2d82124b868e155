package display

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html"
	"strings"
	"sync"
	"time"

	"github.com/dpsflow/dpsflow/kernel/internal/hook"
)

// Handle is an output that can be replaced in place (display_data with a display_id,
// then update_display_data).
type Handle struct {
	id string
}

// New displays data and returns a handle to update it.
func New(data MIME) *Handle {
	var b [8]byte
	_, _ = rand.Read(b[:])
	h := &Handle{id: "dpsflow-" + hex.EncodeToString(b[:])}
	if !hook.Publish(hook.Event{Data: data, ID: h.id}) {
		fallback(data)
	}
	return h
}

// Update replaces the displayed data.
func (h *Handle) Update(data MIME) {
	if !hook.Publish(hook.Event{Data: data, ID: h.id, Update: true}) {
		fallback(data)
	}
}

// ID is the display_id.
func (h *Handle) ID() string { return h.id }

// Progress is a progress bar updated in place, at most ten times a second.
type Progress struct {
	mu          sync.Mutex
	h           *Handle
	label       string
	done, total int
	msg         string
	start, last time.Time
}

// NewProgress shows an empty progress bar for total steps.
func NewProgress(label string, total int) *Progress {
	p := &Progress{label: label, total: total, start: time.Now()}
	p.h = New(p.render())
	p.last = time.Now()
	return p
}

// Set records that done steps are finished.
func (p *Progress) Set(done int) { p.Update(done, "") }

// Update records done steps and a message shown beside the bar.
func (p *Progress) Update(done int, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.msg = done, msg
	if done < p.total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.h.Update(p.render())
}

// Done shows the bar as finished.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = p.total
	p.h.Update(p.render())
}

// Func returns a callback with the signature of sampler.Progress
// (done, total steps and the current measurement distances).
func (p *Progress) Func() func(done, total int, dist []float64) {
	return func(done, total int, dist []float64) {
		p.mu.Lock()
		p.total = total
		p.mu.Unlock()
		msg := ""
		if len(dist) > 0 {
			msg = fmt.Sprintf("‖y−A(x̂₀)‖ = %.4g", dist[0])
		}
		p.Update(done, msg)
	}
}

func (p *Progress) render() MIME {
	frac := 0.0
	if p.total > 0 {
		frac = min(1, max(0, float64(p.done)/float64(p.total)))
	}
	elapsed := time.Since(p.start).Round(100 * time.Millisecond)
	const width = 30
	n := int(frac * width)
	text := fmt.Sprintf("%s [%s%s] %d/%d %s %s", p.label, strings.Repeat("#", n), strings.Repeat(".", width-n),
		p.done, p.total, elapsed, p.msg)
	h := fmt.Sprintf(`<div><progress value="%d" max="%d" style="width:30em"></progress> %s %d/%d %s %s</div>`,
		p.done, max(p.total, 1), html.EscapeString(p.label), p.done, p.total, elapsed, html.EscapeString(p.msg))
	return MIME{"text/plain": strings.TrimSpace(text), "text/html": h}
}
