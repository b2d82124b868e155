package kernel

import (
	"io"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"
)

// stream buffers what a cell writes to stdout or stderr and sends it in pieces while
// the cell runs: at most every flushEvery, or at once when the buffer is large, so
// that a print in a tight loop does not become one message per line.
type stream struct {
	mu    sync.Mutex
	name  string
	buf   []byte
	send  func(name, text string)
	timer *time.Timer
}

const (
	flushEvery = 30 * time.Millisecond
	flushSize  = 64 << 10
)

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	if len(s.buf) >= flushSize {
		s.flushLocked()
	} else if s.timer == nil {
		s.timer = time.AfterFunc(flushEvery, s.Flush)
	}
	return len(p), nil
}

// Flush sends what is buffered, except an incomplete UTF-8 sequence at the end.
func (s *stream) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushLocked()
}

func (s *stream) flushLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	n := len(s.buf)
	for i := 1; i <= 3 && i <= len(s.buf); i++ { // hold back a split rune
		if r := s.buf[len(s.buf)-i]; utf8.RuneStart(r) {
			if !utf8.FullRune(s.buf[len(s.buf)-i:]) {
				n = len(s.buf) - i
			}
			break
		}
	}
	if n == 0 {
		return
	}
	text := string(s.buf[:n])
	s.buf = append(s.buf[:0], s.buf[n:]...)
	if s.send != nil {
		s.send(s.name, text)
	}
}

// switchWriter is the interpreter's stdout or stderr: it writes to the running cell's
// stream, or nowhere between cells. On stderr it also takes out the lines yaegi
// writes while a panic unwinds ("cell:3:5: panic: main.f(...)"), which become the
// traceback of the error instead of output.
type switchWriter struct {
	mu     sync.Mutex
	w      *stream
	panics []string // captured panic frames, innermost first
	stderr bool
	tee    io.Writer // also gets the panic frames, when set (the supervisor reads them)
}

var panicLine = regexp.MustCompile(`^(?:cell|_\.go)?:?\d+:\d+: panic: .*\n?$`)

func (sw *switchWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.stderr && panicLine.Match(p) {
		sw.panics = append(sw.panics, string(p))
		if sw.tee != nil {
			sw.tee.Write(append([]byte(frameMarker), p...))
		}
		return len(p), nil
	}
	if sw.w != nil {
		return sw.w.Write(p)
	}
	return len(p), nil
}

func (sw *switchWriter) set(w *stream) {
	sw.mu.Lock()
	sw.w = w
	sw.mu.Unlock()
}

// takePanics returns and forgets the captured panic frames.
func (sw *switchWriter) takePanics() []string {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	p := sw.panics
	sw.panics = nil
	return p
}
