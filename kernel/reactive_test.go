package kernel

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// notebookRunner runs cells with increasing prompt numbers, like a front end.
type notebookRunner struct {
	t     *testing.T
	s     *Session
	count int
}

func (n *notebookRunner) run(id, code string) (string, *recorder, error) {
	n.t.Helper()
	n.count++
	rec := &recorder{}
	res, err := n.s.Execute(context.Background(), ExecRequest{Code: code, CellID: id, Count: n.count}, rec)
	if err != nil {
		return "", rec, err
	}
	text, _ := res.Data["text/plain"].(string)
	return text, rec, nil
}

func (n *notebookRunner) must(id, code string) (string, *recorder) {
	n.t.Helper()
	v, rec, err := n.run(id, code)
	if err != nil {
		n.t.Fatalf("cell %s %q: %v", id, code, err)
	}
	return v, rec
}

// value reads a global without running a cell (which would join the graph).
func (n *notebookRunner) value(name string) string {
	v, ok := n.s.globals()[name]
	if !ok {
		return "<undefined>"
	}
	return fmt.Sprint(v)
}

// reran is the list of cells a run says it re-ran.
func reran(rec *recorder) string {
	for _, line := range strings.Split(rec.stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "re-ran dependents: "); ok {
			return rest
		}
	}
	return ""
}

func TestReactiveWithCellIDs(t *testing.T) {
	n := &notebookRunner{t: t, s: NewSession()}
	n.must("A", "a := 1")                                // [1]
	n.must("B", "b := a * 10")                           // [2]
	n.must("C", "c := b + 1")                            // [3]
	n.must("D", "d := 100")                              // [4]
	n.must("E", "e := a + d")                            // [5]
	n.must("F", "import \"fmt\"\nfmt.Println(\"side\")") // [6]: reads nothing defined by cells

	_, rec := n.must("A", "a := 2") // [7]: B, C and E depend on a; D and F do not
	if got := reran(rec); got != "[2] [3] [5]" {
		t.Errorf("re-ran %q, want [2] [3] [5]", got)
	}
	for name, want := range map[string]string{"b": "20", "c": "21", "e": "102", "d": "100"} {
		if v := n.value(name); v != want {
			t.Errorf("%s = %s, want %s", name, v, want)
		}
	}

	// A new cell redefining d takes over from D: E re-runs, D is superseded.
	_, rec = n.must("G", "d := 7")
	if got := reran(rec); got != "[5]" {
		t.Errorf("re-ran %q, want [5]", got)
	}
	if v := n.value("e"); v != "9" {
		t.Errorf("e = %s, want 9", v)
	}
	// Re-running a leaf re-runs nothing and says nothing.
	if _, rec = n.must("C", "c := b + 2"); reran(rec) != "" {
		t.Errorf("a leaf re-ran %q", reran(rec))
	}

	// Making A read c closes a cycle A -> B -> C -> A: an error naming cells and names.
	_, _, err := n.run("A", "a := c + 1")
	ce := cellErr(t, err)
	if ce.Name != "CycleError" {
		t.Fatalf("got %s: %s", ce.Name, ce.Value)
	}
	for _, want := range []string{"reads a from", "reads b from", "reads c from"} {
		if !strings.Contains(ce.Value, want) {
			t.Errorf("cycle error %q lacks %q", ce.Value, want)
		}
	}
	// The cycle was refused: a is unchanged.
	if v := n.value("a"); v != "2" {
		t.Errorf("a = %s after the refused cycle", v)
	}
}

func TestReactiveWithoutCellIDs(t *testing.T) {
	n := &notebookRunner{t: t, s: NewSession()}
	n.must("", "x := 1")     // [1]
	n.must("", "y := x + 1") // [2]
	n.must("", "z := y * 2") // [3]
	// A new cell redefining x: y and z follow.
	_, rec := n.must("", "x := 5") // [4]
	if got := reran(rec); got != "[2] [3]" {
		t.Errorf("re-ran %q, want [2] [3]", got)
	}
	if v := n.value("z"); v != "12" {
		t.Errorf("z = %s, want 12", v)
	}
	// Running the same source again is the same cell (no duplicate dependents).
	_, rec = n.must("", "y := x + 1")
	if got := reran(rec); got != "[3]" {
		t.Errorf("re-ran %q, want [3]", got)
	}
	// The superseded "x := 1" is never re-run: x stays 5 whatever re-runs.
	if v := n.value("x"); v != "5" {
		t.Errorf("x = %s, want 5", v)
	}
	// A failing dependent makes the run an error that names it.
	n.must("", "den := 1")
	n.must("", "q := 10 / den")
	_, _, err := n.run("", "den := 0")
	if ce := cellErr(t, err); ce.Name != "DependentError" || !strings.Contains(ce.Value, "divide by zero") {
		t.Errorf("got %s: %s", ce.Name, ce.Value)
	}
}

func TestCellGraphAnalysis(t *testing.T) {
	p, err := parseCell(`import "fmt"
type T struct{ A int }
func (t T) Sum(k int) int { return t.A + k + offset }
const c = 3
var v, w = 1, 2
x, _ := f(v)
g := func(y int) int { z := y; return z + x + glob }
for i := 0; i < 2; i++ { fmt.Println(i, T{A: 1}) }`)
	if err != nil {
		t.Fatal(err)
	}
	names := analyze(p)
	if got := strings.Join(names.Defs, " "); got != "T c g v w x" {
		t.Errorf("defs %q", got)
	}
	var uses []string
	for _, u := range names.Uses {
		if !isUniverse(u) {
			uses = append(uses, u)
		}
	}
	if got := strings.Join(uses, " "); got != "f fmt glob offset" {
		t.Errorf("uses %q", got)
	}
}
