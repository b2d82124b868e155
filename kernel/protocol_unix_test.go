//go:build unix

package kernel

import (
	"syscall"
	"testing"
	"time"
)

// With interrupt_mode "signal" Jupyter interrupts by SIGINT: it stops the cell, not
// the kernel.
func TestSIGINTInterruptsTheCell(t *testing.T) {
	c := startKernel(t)
	id := c.request(c.shell, "execute_request", map[string]any{"code": "for {\n}"}, nil)
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	r := content(t, c.recv(c.shell, 5*time.Second))
	if r["status"] != "error" || r["ename"] != "Interrupted" {
		t.Errorf("execute_reply %v", r)
	}
	c.outputs(id, 5*time.Second)
	if r, _ := c.execute("1+1", nil); r["status"] != "ok" {
		t.Errorf("after SIGINT: %v", r)
	}
}
