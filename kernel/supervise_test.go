package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets this test binary be the interpreter process that the supervisor
// starts (it runs itself, as dpsflow kernel does).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		if err := serveChild(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startSupervised runs the kernel as dpsflow kernel does: a supervisor in this
// process and the cells in a child process.
func startSupervised(t *testing.T, opts Options) *testClient {
	if runtime.GOOS != "linux" {
		t.Skip("the supervisor's tests read /proc")
	}
	p := freePorts(t, 5)
	info := &ConnectionInfo{Transport: "tcp", IP: "127.0.0.1", ShellPort: p[0], ControlPort: p[1],
		StdinPort: p[2], IOPubPort: p[3], HBPort: p[4], SignatureScheme: "hmac-sha256", Key: "test-key"}
	file := filepath.Join(t.TempDir(), "kernel.json")
	raw, _ := json.Marshal(info)
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s, err := newSupervisor(info, file, opts, logs)
	if err != nil {
		t.Fatal(err)
	}
	return connect(t, info, logs, s.run, 2*time.Minute)
}

// mustRun executes code and fails unless it succeeds; it returns the text/plain result.
func (c *testClient) mustRun(code string) string {
	c.t.Helper()
	r, out := c.execute(code, nil)
	if r["status"] != "ok" {
		c.t.Fatalf("%q: %v", code, r)
	}
	for _, m := range ofType(out, "execute_result") {
		data, _ := content(c.t, m)["data"].(map[string]any)
		s, _ := data["text/plain"].(string)
		return s
	}
	return ""
}

// wantError executes code and checks its reply is an error named ename whose value
// contains each of values; the iopub error must say the same. It returns the reply.
func (c *testClient) wantError(code, ename string, values ...string) map[string]any {
	c.t.Helper()
	r, out := c.execute(code, nil)
	if r["status"] != "error" || r["ename"] != ename {
		c.t.Fatalf("%q: reply %v, want an error %s", code, r, ename)
	}
	ev, _ := r["evalue"].(string)
	for _, v := range values {
		if !strings.Contains(ev, v) {
			c.t.Errorf("%q: evalue %q does not contain %q", code, ev, v)
		}
	}
	errs := ofType(out, "error")
	if len(errs) != 1 || content(c.t, errs[0])["evalue"] != ev {
		c.t.Errorf("%q: %d iopub errors, want 1 with the reply's evalue", code, len(errs))
	}
	return r
}

func traceback(r map[string]any) string {
	tb, _ := r["traceback"].([]any)
	var lines []string
	for _, l := range tb {
		s, _ := l.(string)
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}

// A cell's own panic is its error and keeps the interpreter; a panic in a goroutine it
// started kills the interpreter process, and the supervisor answers the cell with the
// panic's value and cell line, then serves later cells from a fresh interpreter.
func TestSupervisedGoroutinePanic(t *testing.T) {
	c := startSupervised(t, Options{})
	c.mustRun("x := 41")
	r := c.wantError(`panic("in the cell")`, "panic", "in the cell")
	if got := c.mustRun("x + 1"); got != "42" {
		t.Fatalf("after a cell's panic x + 1 = %q, want 42 (same interpreter)", got)
	}

	r = c.wantError("import \"time\"\ngo func() {\n\tpanic(\"boom in a goroutine\")\n}()\ntime.Sleep(20 * time.Second)",
		"GoroutinePanic", "a goroutine panicked: boom in a goroutine", "the kernel restarted")
	tb := traceback(r)
	if !strings.Contains(tb, "at cell line 3:") || !strings.Contains(tb, "variables") {
		t.Errorf("traceback does not point at line 3 or say that variables were lost:\n%s", tb)
	}
	if got := c.mustRun("1 + 1"); got != "2" {
		t.Fatalf("after the restart 1 + 1 = %q", got)
	}
	c.wantError("x", "CompileError", "undefined: x") // a fresh interpreter
	c.mustRun("y := 5")
	if got := c.mustRun("y * 2"); got != "10" {
		t.Fatalf("y * 2 = %q, want 10", got)
	}
}

// A goroutine that panics after its cell has answered restarts the interpreter too:
// the next cell says so in its output, and runs.
func TestSupervisedLatePanic(t *testing.T) {
	c := startSupervised(t, Options{})
	c.mustRun("import \"time\"\ngo func() {\n\ttime.Sleep(300 * time.Millisecond)\n\tpanic(\"late\")\n}()")
	time.Sleep(3 * time.Second)
	r, out := c.execute("1 + 1", nil)
	if r["status"] != "ok" {
		t.Fatalf("after the late panic: %v", r)
	}
	var stderr string
	for _, m := range ofType(out, "stream") {
		if cm := content(t, m); cm["name"] == "stderr" {
			stderr += cm["text"].(string)
		}
	}
	if !strings.Contains(stderr, "a goroutine panicked: late") || !strings.Contains(stderr, "kernel restarted") {
		t.Errorf("the next cell's stderr does not tell the restart: %q", stderr)
	}
	if res := ofType(out, "execute_result"); len(res) != 1 {
		t.Errorf("1 + 1 has %d results", len(res))
	}
}

// A cell that grows past --max-memory, by appending or by one huge slice, is stopped:
// the interpreter is restarted and the reply names the bound.
func TestSupervisedMaxMemory(t *testing.T) {
	const limit = 512 << 20
	c := startSupervised(t, Options{MaxMemory: limit})
	for _, code := range []string{
		"b := make([]byte, 0)\nfor {\n\tb = append(b, make([]byte, 1<<26)...)\n}",
		"import \"bytes\"\nb := bytes.Repeat([]byte{1}, 3<<30)\nlen(b)",
	} {
		start := time.Now()
		c.wantError(code, "MemoryLimit", "--max-memory of 512 MiB", "the kernel restarted")
		t.Logf("%q stopped after %v", code, time.Since(start).Round(time.Millisecond))
		if got := c.mustRun("z := 1 + 1\nz"); got != "2" {
			t.Fatalf("after the restart: %q", got)
		}
	}
	// Below the bound a cell runs as usual.
	if got := c.mustRun("s := make([]byte, 64<<20)\nfor i := range s {\n\ts[i] = 1\n}\nlen(s)"); got != "67108864" {
		t.Errorf("64MiB cell: %q", got)
	}
}

// os.Exit and log.Fatal in a cell end the cell, not the kernel: the variables stay.
// log.Default().Fatal is compiled code that really exits: the supervisor restarts the
// interpreter and says with which status.
func TestSupervisedExit(t *testing.T) {
	c := startSupervised(t, Options{})
	c.mustRun("import (\n\t\"log\"\n\t\"os\"\n)\nv := 7")
	r := c.wantError("v++\nos.Exit(3)", "Exit", "line 2:", "os.Exit(3)", "not the kernel")
	if !strings.Contains(traceback(r), "os.Exit(3)") {
		t.Errorf("traceback: %s", traceback(r))
	}
	if got := c.mustRun("v"); got != "8" {
		t.Fatalf("after os.Exit v = %q, want 8 (the same interpreter)", got)
	}
	c.wantError(`log.Fatalf("bad input %d", v)`, "Fatal", `log.Fatalf("bad input 8")`)
	c.wantError(`log.Fatal("no", " way")`, "Fatal", `log.Fatal("no way")`)
	if got := c.mustRun("v"); got != "8" {
		t.Fatalf("after log.Fatal v = %q, want 8", got)
	}

	c.wantError(`log.Default().Fatal("really")`, "Exit", "exited with status 1", "the kernel restarted")
	if got := c.mustRun("2 * 21"); got != "42" {
		t.Fatalf("after the restart 2 * 21 = %q", got)
	}
}

func TestParseMemory(t *testing.T) {
	total, err := SystemMemory()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4GiB", 4 << 30}, {"512MiB", 512 << 20}, {"512 mib", 512 << 20}, {"1.5GB", 1_500_000_000},
		{"2g", 2 << 30}, {"100", 100}, {"64KiB", 64 << 10}, {"1TiB", 1 << 40},
		{"0", 0}, {"off", 0}, {"OFF", 0}, {"50%", total / 2}, {"100%", total},
	} {
		got, err := ParseMemory(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"abc", "-1", "-1GiB", "101%", "x%", "4 parsecs", "NaN", "1e30TiB"} {
		if got, err := ParseMemory(bad); err == nil {
			t.Errorf("ParseMemory(%q) = %d, want an error", bad, got)
		}
	}
	for b, want := range map[int64]string{512 << 20: "512 MiB", 3 << 29: "1.5 GiB", 100: "100 B", 1<<30 + 1<<20: "1 GiB"} {
		if got := FormatMemory(b); got != want {
			t.Errorf("FormatMemory(%d) = %q, want %q", b, got, want)
		}
	}
}

// Cells queued behind the one that crashed are aborted, as after any error with
// stop_on_error; the fresh interpreter then runs cells and obeys interrupt_request.
func TestSupervisedQueueAndInterrupt(t *testing.T) {
	c := startSupervised(t, Options{})
	c.mustRun(`import "time"`)
	crash := c.request(c.shell, "execute_request", map[string]any{"code": "go func() {\n\ttime.Sleep(500 * time.Millisecond)\n\tpanic(\"queued\")\n}()\ntime.Sleep(10 * time.Second)"}, nil)
	queued := c.request(c.shell, "execute_request", map[string]any{"code": "1 + 1"}, nil)
	r1, r2 := content(t, c.recv(c.shell, 30*time.Second)), content(t, c.recv(c.shell, 30*time.Second))
	if r1["status"] != "error" || r1["ename"] != "GoroutinePanic" || !strings.Contains(r1["evalue"].(string), "queued") {
		t.Errorf("crashing cell: %v", r1)
	}
	if r2["status"] != "aborted" {
		t.Errorf("queued cell: %v, want aborted", r2)
	}
	c.outputs(crash, 10*time.Second)
	c.outputs(queued, 10*time.Second)

	id := c.request(c.shell, "execute_request", map[string]any{"code": "for {\n}"}, nil)
	time.Sleep(500 * time.Millisecond)
	c.request(c.control, "interrupt_request", map[string]any{}, nil)
	if ir := c.recv(c.control, 10*time.Second); ir.Header.MsgType != "interrupt_reply" {
		t.Errorf("got %s, want interrupt_reply", ir.Header.MsgType)
	}
	if r := content(t, c.recv(c.shell, 10*time.Second)); r["status"] != "error" || r["ename"] != "Interrupted" {
		t.Errorf("interrupted loop: %v", r)
	}
	c.outputs(id, 10*time.Second)
	if got := c.mustRun("3 * 3"); got != "9" {
		t.Errorf("3 * 3 = %q", got)
	}
}

// cause reads the child's end from its exit status and last lines as the Go runtime
// and yaegi write them.
func TestCrashCause(t *testing.T) {
	exitErr := func(script string) error {
		return exec.Command("/bin/sh", "-c", script).Run()
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name   string
		lines  []string
		wait   error
		mem    int64
		ename  string
		values []string // in evalue
		detail string   // in details
	}{
		{name: "memory", mem: 600 << 20, wait: exitErr("kill -9 $$"), ename: "MemoryLimit",
			values: []string{"--max-memory of 512 MiB", "600 MiB resident"}},
		{name: "goroutine panic", wait: exitErr("exit 2"), ename: "GoroutinePanic",
			lines:  []string{"_.go:3:2: panic: main.func(...)\n", "panic: boom [recovered, repanicked]\n", "\n", "goroutine 7 [running]:\n", "github.com/traefik/yaegi/interp.runCfg.func1()\n"},
			values: []string{"a goroutine panicked: boom"}, detail: "at cell line 3:2 in func"},
		{name: "compiled goroutine panic", wait: exitErr("exit 2"), ename: "GoroutinePanic",
			lines: []string{"panic: index out of range [5] with length 3\n", "\n", "goroutine 9 [running]:\n",
				"github.com/dpsflow/dpsflow/dag.(*Runner).work(...)\n", "\t/src/dag/runner.go:120 +0x1d\n", "created by github.com/dpsflow/dpsflow/dag.Run in goroutine 1\n"},
			values: []string{"index out of range [5] with length 3"}, detail: "dag.(*Runner).work"},
		{name: "exit in a goroutine", wait: exitErr("exit 2"), ename: "Exit",
			lines: []string{"panic: os.Exit(4)\n", "goroutine 16 [running]:\n"}, values: []string{"called os.Exit(4)"}},
		{name: "fatal", wait: exitErr("exit 2"), ename: "FatalError",
			lines: []string{"fatal error: concurrent map writes\n", "\n", "goroutine 5 [running]:\n", "main.f()\n"}, values: []string{"concurrent map writes"}},
		{name: "out of memory", wait: exitErr("exit 2"), ename: "OutOfMemory",
			lines:  []string{"runtime: out of memory: cannot allocate 1099511627776-byte block (3997696 in use)\n", "fatal error: out of memory\n"},
			values: []string{"out of memory"}, detail: "cannot allocate 1099511627776-byte block"},
		{name: "compiled os.Exit", wait: exitErr("exit 3"), ename: "Exit",
			lines: []string{"2026/12/02 04:43:59 really\n"}, values: []string{"exited with status 3"}, detail: "really"},
		{name: "killed", wait: exitErr("kill -9 $$"), ename: "Killed", values: []string{"signal", "out-of-memory killer"}},
		{name: "exit 0", ename: "Exit", values: []string{"status 0"}},
	} {
		c := &child{tail: &tail{}, waitErr: tc.wait}
		c.memKilled.Store(tc.mem)
		for _, l := range tc.lines {
			c.tail.add(l)
		}
		ename, evalue, details := c.cause(512 << 20)
		if ename != tc.ename {
			t.Errorf("%s: ename %q (%s), want %q", tc.name, ename, evalue, tc.ename)
		}
		for _, v := range tc.values {
			if !strings.Contains(evalue, v) {
				t.Errorf("%s: evalue %q does not contain %q", tc.name, evalue, v)
			}
		}
		if d := strings.Join(details, "\n"); !strings.Contains(d, tc.detail) || strings.Contains(d, "yaegi/interp.runCfg") {
			t.Errorf("%s: details %q, want %q and no interpreter frames", tc.name, d, tc.detail)
		}
	}
	// A reset (a cell ended) forgets what came before.
	c := &child{tail: &tail{}, waitErr: exitErr("exit 5")}
	c.tail.add("panic: old\n")
	c.tail.reset()
	if ename, evalue, _ := c.cause(0); ename != "Exit" || !strings.Contains(evalue, "status 5") {
		t.Errorf("after reset: %s: %s", ename, evalue)
	}
}
