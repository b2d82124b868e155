package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/dag"
)

func TestCellGraphRunsAsDAG(t *testing.T) {
	srcs := []string{
		"a := 2",
		"b := a * 3",
		"import \"fmt\"\nfmt.Println(b)",
		"c := a + b",
		"a := 100 // redefines a: cells above still read the first a",
	}
	g, err := CellGraph(srcs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"c1": {}, "c2": {"a": "c1.a"}, "c3": {"b": "c2.b"}, "c4": {"a": "c1.a", "b": "c2.b"}, "c5": {"after_c2_": "c2.done_", "after_c4_": "c4.done_"},
	}
	for id, in := range want {
		n := g.Node(id)
		if n == nil || n.Kind != CellKind || fmt.Sprint(n.Inputs) != fmt.Sprint(in) {
			t.Errorf("node %s: %+v, want inputs %v", id, n, in)
		}
	}
	if down, _ := g.Downstream("c1"); fmt.Sprint(down) != "[c2 c3 c4 c5]" {
		t.Errorf("downstream of c1: %v", down)
	}

	s := NewSession()
	reg := dag.NewRegistry()
	reg.MustRegister(NewCellKind(g, s, nil))
	if err := reg.Validate(g); err != nil {
		t.Fatal(err)
	}
	res, err := (&dag.Runner{Registry: reg, Parallel: 4}).Run(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := res.Value("c2.b"); err != nil || v != 6 {
		t.Errorf("c2.b = %v (%v), want 6", v, err)
	}
	if c := s.Globals()["c"]; fmt.Sprint(c) != "8" {
		t.Errorf("c = %v, want 8", c)
	}

	if _, err := CellGraph([]string{"x := 1", "y := (x"}); err == nil {
		t.Error("a syntax error in a cell is not reported")
	}
}

// Cells that read each other's names in a cycle are refused with the cells and the names.
func TestCellGraphNamesTheCellsOfACycle(t *testing.T) {
	_, err := CellGraph([]string{"x := 1", "a := b + x", "b := a * 2"})
	var ce *dag.CycleError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *dag.CycleError", err)
	}
	for _, want := range []string{"cell 3 reads a from cell 2", "cell 2 reads b from cell 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// A dag run shows each cell's value, as the notebook does.
func TestCellKindShowsTheCellValue(t *testing.T) {
	g, err := CellGraph([]string{"x := 20", "x + 1"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	reg := dag.NewRegistry()
	reg.MustRegister(NewCellKind(g, NewSession(), rec))
	if _, err := (&dag.Runner{Registry: reg}).Run(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	if len(rec.displays) != 1 || rec.displays[0].Data["text/plain"] != "21" {
		t.Errorf("displays %+v, want the value 21", rec.displays)
	}
}

// A cell that uses a package runs after the cell that imports it, though no variable
// links them (a parallel run would otherwise use the package before its import).
func TestCellGraphOrdersImportsFirst(t *testing.T) {
	g, err := CellGraph([]string{`import "fmt"`, `import m "math"`, "x := 2.0", `fmt.Println(m.Sqrt(x))`, `import "strings"`, `strings.ToUpper("a")`})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"x": "c3.x", "after_c1_": "c1.done_", "after_c2_": "c2.done_"}
	if got := g.Node("c4").Inputs; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("c4 inputs %v, want %v", got, want)
	}
	if got := g.Node("c6").Inputs; fmt.Sprint(got) != fmt.Sprint(map[string]string{"after_c5_": "c5.done_"}) {
		t.Errorf("c6 inputs %v", got)
	}
	rec := &recorder{}
	reg := dag.NewRegistry()
	reg.MustRegister(NewCellKind(g, NewSession(), rec))
	if _, err := (&dag.Runner{Registry: reg, Parallel: 4}).Run(context.Background(), g); err != nil {
		t.Fatal(err)
	}
	if got := rec.stdout.String(); got != "1.4142135623730951\n" {
		t.Errorf("printed %q", got)
	}
}
