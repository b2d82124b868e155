package kernel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an Output that keeps what a cell printed and displayed.
type recorder struct {
	mu       sync.Mutex
	stdout   strings.Builder
	stderr   strings.Builder
	displays []Display
}

func (r *recorder) Stream(name, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "stdout" {
		r.stdout.WriteString(text)
	} else {
		r.stderr.WriteString(text)
	}
}

func (r *recorder) Display(d Display) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.displays = append(r.displays, d)
}

// runCell executes code as cell id (may be "") and returns the result, output and error.
func runCell(t *testing.T, s *Session, id, code string) (*ExecResult, *recorder, error) {
	t.Helper()
	rec := &recorder{}
	res, err := s.Execute(context.Background(), ExecRequest{Code: code, CellID: id, Count: 1}, rec)
	return res, rec, err
}

// mustRun runs a cell that must succeed and returns its text/plain value ("" for none).
func mustRun(t *testing.T, s *Session, id, code string) (string, *recorder) {
	t.Helper()
	res, rec, err := runCell(t, s, id, code)
	if err != nil {
		t.Fatalf("cell %q: %v", code, err)
	}
	text, _ := res.Data["text/plain"].(string)
	return text, rec
}

func cellErr(t *testing.T, err error) *CellError {
	t.Helper()
	var ce *CellError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *CellError, got %v", err)
	}
	return ce
}

func TestPersistenceAcrossCells(t *testing.T) {
	s := NewSession()
	if v, _ := mustRun(t, s, "", "x := 3"); v != "" {
		t.Errorf("an assignment shows %q, want nothing", v)
	}
	if v, _ := mustRun(t, s, "", "x+1"); v != "4" {
		t.Errorf("x+1 = %q, want 4", v)
	}
	mustRun(t, s, "", `import "strings"
func shout(s string) string { return strings.ToUpper(s) + "!" }
type point struct{ X, Y int }
p := point{1, 2}
msg := shout("hi")`)
	if v, _ := mustRun(t, s, "", "msg"); v != "HI!" {
		t.Errorf("msg = %q", v)
	}
	if v, _ := mustRun(t, s, "", "p.X + p.Y"); v != "3" {
		t.Errorf("p.X+p.Y = %q", v)
	}
	_, rec := mustRun(t, s, "", `import "fmt"
fmt.Println("hello, world")`)
	if rec.stdout.String() != "hello, world\n" {
		t.Errorf("stdout = %q", rec.stdout.String())
	}
}

func TestStatementsAndDeclarationsMixed(t *testing.T) {
	s := NewSession()
	v, _ := mustRun(t, s, "", `n := 0
for i := 0; i < 4; i++ {
	n += i
}
func double(x int) int { return 2 * x }
if n > 3 {
	n = double(n)
} else if m := n; m > 100 {
	n = 0
}
n`)
	if v != "12" {
		t.Errorf("n = %q, want 12", v)
	}
	// A func literal at the start of a statement must run once, not after every cell.
	_, rec := mustRun(t, s, "", `import "fmt"
func() { fmt.Println("once") }()`)
	_, rec2 := mustRun(t, s, "", `1+1`)
	if rec.stdout.String() != "once\n" || rec2.stdout.String() != "" {
		t.Errorf("func literal output %q then %q", rec.stdout.String(), rec2.stdout.String())
	}
}

func TestPanicIsAnErrorWithItsLine(t *testing.T) {
	s := NewSession()
	_, _, err := runCell(t, s, "", "a := 1\nvar xs []int\n_ = a\n_ = xs[5]")
	ce := cellErr(t, err)
	if ce.Name != "panic" || !strings.Contains(ce.Value, "line 4") || !strings.Contains(ce.Value, "index out of range") {
		t.Errorf("got %s: %s", ce.Name, ce.Value)
	}
	if tb := strings.Join(ce.Traceback, "\n"); !strings.Contains(tb, "_ = xs[5]") {
		t.Errorf("traceback does not quote the line:\n%s", tb)
	}
	// Inside a function: the frames name the function and the call site.
	_, _, err = runCell(t, s, "", "func boom() {\n\tpanic(\"boom\")\n}\nboom()")
	ce = cellErr(t, err)
	tb := strings.Join(ce.Traceback, "\n")
	if !strings.Contains(ce.Value, "boom") || !strings.Contains(tb, "line 2") || !strings.Contains(tb, "line 4") {
		t.Errorf("got %s\n%s", ce.Value, tb)
	}
	// After a panic in a func literal the session still works.
	if _, _, err := runCell(t, s, "", `func() { panic("lit") }()`); err == nil {
		t.Fatal("no error from a panicking literal")
	}
	if v, _ := mustRun(t, s, "", "2+3"); v != "5" {
		t.Errorf("after a panic, 2+3 = %q", v)
	}
}

func TestParseAndCompileErrorsHaveLines(t *testing.T) {
	s := NewSession()
	_, _, err := runCell(t, s, "", "x := 1\ny := (x +\nz := 3")
	ce := cellErr(t, err)
	if ce.Name != "SyntaxError" || !strings.HasPrefix(ce.Value, "line 3:") {
		t.Errorf("got %s: %s", ce.Name, ce.Value)
	}
	_, _, err = runCell(t, s, "", "a := 1\nb := a + undefinedName")
	ce = cellErr(t, err)
	if ce.Name != "CompileError" || !strings.Contains(ce.Value, "line 2:") || !strings.Contains(ce.Value, "undefinedName") {
		t.Errorf("got %s: %s", ce.Name, ce.Value)
	}
	_, _, err = runCell(t, s, "", `import "no/such/pkg"`)
	if ce = cellErr(t, err); ce.Name != "ImportError" {
		t.Errorf("got %s: %s", ce.Name, ce.Value)
	}
	_, _, err = runCell(t, s, "", "func main() {}")
	if ce = cellErr(t, err); !strings.Contains(ce.Value, "func main") {
		t.Errorf("got %s: %s", ce.Name, ce.Value)
	}
}

func TestInterruptInfiniteLoop(t *testing.T) {
	s := NewSession()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Execute(ctx, ExecRequest{Code: "n := 0\nfor {\n\tn++\n}"}, &recorder{})
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if ce := cellErr(t, err); ce.Name != "Interrupted" {
			t.Errorf("got %s: %s", ce.Name, ce.Value)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("interrupt took %v", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the loop was not interrupted within 3s")
	}
	if v, _ := mustRun(t, s, "", "1+1"); v != "2" {
		t.Errorf("after an interrupt 1+1 = %q", v)
	}
}

func TestStreamsWhileRunning(t *testing.T) {
	s := NewSession()
	rec := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, err := s.Execute(context.Background(), ExecRequest{Code: `import ("fmt"; "time"; "log")
fmt.Println("first")
log.SetFlags(0)
log.Print("to stderr")
time.Sleep(400 * time.Millisecond)
fmt.Println("second")`}, rec)
		if err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(250 * time.Millisecond)
	rec.mu.Lock()
	early := rec.stdout.String()
	rec.mu.Unlock()
	<-done
	if early != "first\n" {
		t.Errorf("while running, stdout = %q, want the first line already", early)
	}
	if rec.stdout.String() != "first\nsecond\n" || rec.stderr.String() != "to stderr\n" {
		t.Errorf("stdout %q stderr %q", rec.stdout.String(), rec.stderr.String())
	}
}

// A cell ending with a call that returns nothing shows nothing, not an earlier value.
func TestCallWithoutResultsShowsNothing(t *testing.T) {
	s := NewSession()
	if v, _ := mustRun(t, s, "a", "x := 41\nx + 1"); v != "42" {
		t.Fatalf("x + 1 shows %q", v)
	}
	mustRun(t, s, "b", "func noop() {}")
	for _, code := range []string{"noop()", `display.Markdown("*hi*")`, "y := 2\nnoop()"} {
		if v, _ := mustRun(t, s, "", code); v != "" {
			t.Errorf("cell %q shows %q, want nothing", code, v)
		}
	}
	if v, _ := mustRun(t, s, "c", "import \"strings\"\nstrings.ToUpper(\"ok\")"); v != "OK" {
		t.Errorf("a call with a result shows %q", v)
	}
}
