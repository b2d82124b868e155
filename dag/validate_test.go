package dag

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidateOK(t *testing.T) {
	r := testRegistry(t, &counts{})
	if err := r.Validate(chainGraph()); err != nil {
		t.Fatal(err)
	}
}

// wantProblem checks that err is a *ValidationError with a problem on that node, port
// and param whose message contains msg, and that its String names them.
func wantProblem(t *testing.T, err error, node, port, param, msg string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T %v", err, err)
	}
	for _, p := range ve.Problems {
		if p.Node == node && p.Port == port && p.Param == param && strings.Contains(p.Msg, msg) {
			s := p.String()
			if node != "" && !strings.Contains(s, `node "`+node+`"`) {
				t.Errorf("problem %q does not name node %q", s, node)
			}
			if port != "" && !strings.Contains(s, `input "`+port+`"`) {
				t.Errorf("problem %q does not name input %q", s, port)
			}
			if param != "" && !strings.Contains(s, `param "`+param+`"`) {
				t.Errorf("problem %q does not name param %q", s, param)
			}
			if !strings.Contains(err.Error(), s) {
				t.Errorf("Error() does not contain %q", s)
			}
			return
		}
	}
	t.Fatalf("no problem (node %q, port %q, param %q, msg ~ %q) in:\n%v", node, port, param, msg, err)
}

func TestValidateProblems(t *testing.T) {
	r := testRegistry(t, &counts{})
	cases := []struct {
		name                   string
		edit                   func(g *Graph)
		node, port, param, msg string
	}{
		{"unknown kind", func(g *Graph) { g.Node("e").Kind = "cnst" }, "e", "", "", `unknown kind "cnst" (did you mean "const"?)`},
		{"unknown input port", func(g *Graph) { g.Node("d").Inputs["y"] = "c.out" }, "d", "y", "", `has no input "y"`},
		{"unknown node", func(g *Graph) { g.Node("b").Inputs["a"] = "zz.out" }, "b", "a", "", `unknown node "zz"`},
		{"unknown output port", func(g *Graph) { g.Node("b").Inputs["a"] = "a.value" }, "b", "a", "", `has no output "value"`},
		{"bad reference", func(g *Graph) { g.Node("b").Inputs["a"] = "a" }, "b", "a", "", `bad reference`},
		{"type mismatch", func(g *Graph) { g.Node("d").Inputs["x"] = "b.out" }, "d", "x", "", `type mismatch: "b.out" is "int", input wants "float"`},
		{"missing required input", func(g *Graph) { delete(g.Node("c").Inputs, "x") }, "c", "x", "", "required input"},
		{"unknown param", func(g *Graph) { g.Node("c").Params["stpes"] = 3 }, "c", "", "stpes", `has no param "stpes"`},
		{"wrong param type string for int", func(g *Graph) { g.Node("c").Params["steps"] = "100" }, "c", "", "steps", `got string "100", want int`},
		{"wrong param type float for int", func(g *Graph) { g.Node("c").Params["steps"] = 2.5 }, "c", "", "steps", `got float 2.5, want int`},
		{"wrong param type bool", func(g *Graph) { g.Node("c").Params["on"] = "yes" }, "c", "", "on", `want bool`},
		{"wrong list element", func(g *Graph) { g.Node("c").Params["tags"] = []any{"a", 3} }, "c", "", "tags", `element 1 is int 3, want string`},
		{"missing required param", func(g *Graph) { delete(g.Node("a").Params, "value") }, "a", "", "value", "required param"},
		{"duplicate id", func(g *Graph) { g.Add("a", "const", map[string]any{"value": 1}, nil) }, "a", "", "", "duplicate id"},
		{"empty id", func(g *Graph) { g.Add("", "const", map[string]any{"value": 1}, nil) }, "", "", "", "empty id"},
		{"dot in id", func(g *Graph) { g.Add("x.y", "const", map[string]any{"value": 1}, nil) }, "x.y", "", "", "may not contain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := chainGraph()
			tc.edit(g)
			wantProblem(t, r.Validate(g), tc.node, tc.port, tc.param, tc.msg)
		})
	}
}

func TestValidateReportsAllAtOnce(t *testing.T) {
	r := testRegistry(t, &counts{})
	g := chainGraph()
	g.Node("c").Params["steps"] = "many"
	g.Node("d").Inputs["x"] = "b.out"
	g.Node("e").Kind = "nope"
	err := r.Validate(g)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
	if n := strings.Count(err.Error(), "\n"); n != 2 {
		t.Errorf("want one problem per line, got:\n%v", err)
	}
}

func TestParamsAccepted(t *testing.T) {
	r := testRegistry(t, &counts{})
	g := chainGraph()
	c := g.Node("c").Params
	c["factor"] = 3             // an int for a float
	c["steps"] = int64(50)      // any Go integer type
	c["tags"] = []any{"x", "y"} // YAML-style list
	c["label"] = "hi"           // no default
	delete(g.Node("b").Params, "plus")
	if err := r.Validate(g); err != nil {
		t.Fatal(err)
	}
	v, err := NormalizeParam("floats", []any{1, 2.5})
	if err != nil || !reflect.DeepEqual(v, []float64{1, 2.5}) {
		t.Fatalf("NormalizeParam floats: %v %v", v, err)
	}
	v, err = NormalizeParam("map", map[string]any{"a": []any{int64(1)}, "b": float32(0.5)})
	if err != nil || !reflect.DeepEqual(v, map[string]any{"a": []any{1}, "b": 0.5}) {
		t.Fatalf("NormalizeParam map: %#v %v", v, err)
	}
}

func TestValidateCycle(t *testing.T) {
	r := testRegistry(t, &counts{})
	g := &Graph{}
	g.Add("src", "const", map[string]any{"value": 1}, nil)
	g.Add("p", "add", nil, map[string]string{"a": "src.out", "b": "r.out"})
	g.Add("q", "add", nil, map[string]string{"a": "p.out"})
	g.Add("r", "add", nil, map[string]string{"a": "q.out"})
	g.Add("self", "add", nil, map[string]string{"a": "self.out"})
	g.Add("after", "add", nil, map[string]string{"a": "r.out"})
	err := r.Validate(g)
	wantProblem(t, err, "p", "", "", "cycle: p -> q -> r -> p")
	wantProblem(t, err, "self", "", "", "cycle: self -> self")
	var ve *ValidationError
	errors.As(err, &ve)
	if len(ve.Problems) != 2 {
		t.Errorf("want exactly the 2 cycles, got:\n%v", err)
	}
	_, err = g.Order()
	var ce *CycleError
	if !errors.As(err, &ce) || len(ce.Cycles) != 2 {
		t.Fatalf("Order: want *CycleError with 2 cycles, got %v", err)
	}
	if !strings.Contains(err.Error(), "p -> q -> r -> p") {
		t.Errorf("Order error does not list the cycle: %v", err)
	}
	if _, err := g.Downstream("src"); err == nil {
		t.Error("Downstream on a cyclic graph: no error")
	}
}

func TestOrderTiesByPosition(t *testing.T) {
	g := &Graph{}
	g.Add("z", "add", nil, map[string]string{"a": "y.out"})
	g.Add("c", "const", nil, nil)
	g.Add("y", "const", nil, nil)
	g.Add("b", "add", nil, map[string]string{"a": "c.out", "b": "y.out"})
	g.Add("a", "const", nil, nil)
	order, err := g.Order()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range order {
		ids = append(ids, n.ID)
	}
	// c, y, a are ready at once: position order; z becomes ready after y and precedes b
	// because it comes first in g.Nodes.
	want := []string{"c", "y", "z", "b", "a"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("Order = %v, want %v", ids, want)
	}
}

func TestDownstreamUpstream(t *testing.T) {
	g := chainGraph()
	g.Add("f", "add", nil, map[string]string{"a": "e.out", "b": "b.out"})
	got, err := g.Downstream("b")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c", "d", "f"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Downstream(b) = %v, want %v", got, want)
	}
	got, _ = g.Downstream("a", "c")
	if want := []string{"b", "d", "f"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Downstream(a, c) = %v, want %v", got, want)
	}
	got, _ = g.Downstream("d")
	if len(got) != 0 {
		t.Fatalf("Downstream(d) = %v, want none", got)
	}
	got, _ = g.Upstream("f")
	if want := []string{"a", "b", "e"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Upstream(f) = %v, want %v", got, want)
	}
	if _, err := g.Downstream("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("Downstream(nope): %v", err)
	}
}

func TestRegisterErrors(t *testing.T) {
	r := NewRegistry()
	run := func(*Call) error { return nil }
	cases := []struct {
		k   Kind
		msg string
	}{
		{Kind{Name: "", Run: run}, "empty kind name"},
		{Kind{Name: "x"}, "Run is nil"},
		{Kind{Name: "x", Run: run, Inputs: []Port{{Name: "a", Type: "tensor"}}}, `input "a": unknown port type "tensor"`},
		{Kind{Name: "x", Run: run, Outputs: []Port{{Name: "a", Type: "int"}, {Name: "a", Type: "int"}}}, `output "a" declared twice`},
		{Kind{Name: "x", Run: run, Params: []Param{{Name: "p", Type: "integer"}}}, `param "p": unknown param type "integer"`},
		{Kind{Name: "x", Run: run, Params: []Param{{Name: "p", Type: "int", Default: "3"}}}, `param "p": default`},
	}
	for _, tc := range cases {
		err := r.Register(tc.k)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Register(%+v): got %v, want %q", tc.k.Name, err, tc.msg)
		}
	}
	r.MustRegister(Kind{Name: "ok", Run: run})
	if err := r.Register(Kind{Name: "ok", Run: run}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("duplicate: %v", err)
	}
	if err := r.RegisterType("int", nil); err == nil {
		t.Error("RegisterType duplicate: no error")
	}
	if got := r.Kinds(); !reflect.DeepEqual(got, []string{"ok"}) {
		t.Errorf("Kinds = %v", got)
	}
	for _, typ := range BuiltinTypes {
		c, ok := r.Type(typ)
		if !ok || (c == nil) != (typ == "any") {
			t.Errorf("built-in type %q: codec %v, ok %v", typ, c, ok)
		}
	}
}
