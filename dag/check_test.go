package dag

import (
	"errors"
	"strings"
	"testing"
)

// A kind's Check sees its params with defaults applied, and what it refuses is a problem of
// Validate naming the node and (with a *ParamError) the param; it is not called on params
// of the wrong type, which Validate reports itself.
func TestValidateRunsTheKindsCheck(t *testing.T) {
	var seen []map[string]any
	r := NewRegistry()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.Register(Kind{Name: "steps", Run: func(*Call) error { return nil },
		Params: []Param{{Name: "n", Type: "int", Default: 10}, {Name: "name", Type: "string", Default: "a"}},
		Check: func(p map[string]any) error {
			seen = append(seen, p)
			if p["n"].(int) < 1 {
				return &ParamError{Param: "n", Msg: "-4; must be at least 1"}
			}
			if p["name"] == "bad" {
				return errors.New("name and n do not go together")
			}
			return nil
		}}))
	for _, c := range []struct {
		params map[string]any
		want   string // "" for no problem
	}{
		{nil, ""},
		{map[string]any{"n": -4}, `node "x" param "n": -4; must be at least 1`},
		{map[string]any{"name": "bad"}, `node "x": name and n do not go together`},
		{map[string]any{"n": "many"}, `node "x" param "n"`},
	} {
		seen = nil
		g := &Graph{Nodes: []*Node{{ID: "x", Kind: "steps", Params: c.params}}}
		err := r.Validate(g)
		if c.want == "" {
			if err != nil {
				t.Errorf("%v: %v", c.params, err)
			}
			if len(seen) != 1 || seen[0]["n"] != 10 || seen[0]["name"] != "a" {
				t.Errorf("Check saw %v, want the defaults", seen)
			}
			continue
		}
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want one problem %q", c.params, err, c.want)
		}
		if c.params["n"] == "many" && len(seen) != 0 {
			t.Errorf("Check was called with a param of the wrong type: %v", seen)
		}
	}
}
