package kernel

import (
	"context"
	"fmt"
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
