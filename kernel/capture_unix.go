//go:build unix

package kernel

import (
	"bytes"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// captured is the process's stdout and stderr redirected into pipes.
type captured struct {
	log    *os.File // the original stderr, for the kernel's own log
	files  []*os.File
	synced []chan struct{}
}

// sentinel marks a point in a pipe: when the reader sees it, everything written
// before it has been handed on. It starts with NUL, which text output does not contain.
var sentinel = []byte("\x00\x01dpsflow-sync\x01\x00")

// captureStdio points the process's file descriptors 1 and 2 at pipes and hands what
// arrives there to sink, so that output of compiled code (a progress bar on
// os.Stderr, a log line, os.Stdout in a cell) reaches the running cell.
func captureStdio(sink func(name string, p []byte)) (*captured, error) {
	return capture(sink, nil, nil)
}

// canCapture tells whether captureStdio works here.
const canCapture = true

// capture is captureStdio, except that with stderrLoop (in an interpreter process)
// file descriptor 2 stays the supervisor's pipe: the supervisor reads it, so that it
// sees the last words of a crash (the Go runtime writes "fatal error: ..." there
// only), and passes it back on stderrLoop. The kernel's own log then goes to logf.
func capture(sink func(name string, p []byte), stderrLoop, logf *os.File) (*captured, error) {
	c := &captured{}
	for _, s := range []struct {
		fd   int
		name string
		file *os.File
	}{{1, "stdout", os.Stdout}, {2, "stderr", os.Stderr}} {
		synced := make(chan struct{}, 16)
		if s.fd == 2 && stderrLoop != nil {
			c.log = logf
			c.files = append(c.files, s.file)
			c.synced = append(c.synced, synced)
			go forward(stderrLoop, s.name, sink, synced)
			continue
		}
		orig, err := unix.Dup(s.fd)
		if err != nil {
			return nil, err
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		if err := unix.Dup2(int(w.Fd()), s.fd); err != nil {
			return nil, err
		}
		w.Close()
		if s.fd == 2 {
			c.log = os.NewFile(uintptr(orig), "stderr")
		} else {
			unix.Close(orig)
		}
		c.files = append(c.files, s.file)
		c.synced = append(c.synced, synced)
		go forward(r, s.name, sink, synced)
	}
	return c, nil
}

// forward copies a pipe to sink, taking out sentinels and signalling them.
func forward(r *os.File, name string, sink func(string, []byte), synced chan struct{}) {
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := r.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.Index(pending, sentinel)
			if i < 0 {
				break
			}
			if i > 0 {
				sink(name, append([]byte(nil), pending[:i]...))
			}
			pending = pending[i+len(sentinel):]
			select {
			case synced <- struct{}{}:
			default:
			}
		}
		// Hold back a tail that may be the start of a sentinel.
		keep := 0
		if k := bytes.LastIndexByte(pending, 0); k >= 0 && bytes.HasPrefix(sentinel, pending[k:]) {
			keep = len(pending) - k
		}
		if len(pending) > keep {
			sink(name, append([]byte(nil), pending[:len(pending)-keep]...))
			pending = append(pending[:0], pending[len(pending)-keep:]...)
		}
		if err != nil {
			return
		}
	}
}

// Sync waits until what was written to stdout and stderr so far has reached sink.
func (c *captured) Sync() {
	for i, f := range c.files {
		for len(c.synced[i]) > 0 { // forget stale signals
			<-c.synced[i]
		}
		if _, err := f.Write(sentinel); err != nil {
			continue
		}
		select {
		case <-c.synced[i]:
		case <-time.After(500 * time.Millisecond):
		}
	}
}
