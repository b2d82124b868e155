package dag

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func u64(v uint64) *uint64 { return &v }

func TestYAMLRoundTripGo(t *testing.T) {
	g := &Graph{Name: "round trip", Seed: 1 << 60}
	g.Add("a", "const", map[string]any{"value": 2}, nil)
	n := g.Add("c", "scale", map[string]any{
		"factor": 3.0, // integral float: must come back a float
		"steps":  -7,
		"label":  "true", // a string that looks like a bool
		"tags":   []string{"x", "1", "null", "yes", "~", ""},
		"ints":   []int{1, 2, 3},
		"floats": []float64{1, 2.5, math.Inf(1)},
		"mixed":  []any{1, "two", 3.5, true},
		"m":      map[string]any{"k": 1.0, "n": map[string]any{"deep": []string{"y"}}, "s": "a: b"},
		"on":     false,
		"tiny":   1e-300,
		"big":    1e300,
	}, map[string]string{"x": "a.out"})
	n.Seed = u64(42)
	g.Add("empty-params", "show", nil, map[string]string{"x": "c.out"})

	data, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, "mem.yaml")
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(g, back) {
		t.Fatalf("round trip differs:\n%s\ngot %#v\nwant %#v", data, back.Nodes[1].Params, g.Nodes[1].Params)
	}
	again, _ := back.Marshal()
	if string(again) != string(data) {
		t.Fatalf("Marshal not stable:\n%s\n---\n%s", data, again)
	}
}

func TestYAMLRoundTripText(t *testing.T) {
	src := `name: demo
seed: 3
nodes:
  - id: a
    kind: const
    params:
      value: 2
  - id: c
    kind: scale
    seed: 9
    params:
      factor: 2      # an int for a float param
      tags: [p, q]
      ratio: 0.5
    inputs:
      x: a.out
`
	g, err := Parse([]byte(src), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "demo" || g.Seed != 3 || len(g.Nodes) != 2 || *g.Nodes[1].Seed != 9 {
		t.Fatalf("parsed %+v", g)
	}
	c := g.Node("c")
	if c.Params["factor"] != 2 || !reflect.DeepEqual(c.Params["tags"], []string{"p", "q"}) || c.Params["ratio"] != 0.5 {
		t.Fatalf("params %#v", c.Params)
	}
	data, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, "again.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, back) {
		t.Fatalf("round trip differs:\n%s", data)
	}
}

func TestYAMLErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, src, want string }{
		{"unknown node key", "nodes:\n  - id: a\n    kind: const\n    kindd: x\n", `line 4: unknown key "kindd"`},
		{"unknown top key", "nodes: []\nseeds: 3\n", `line 2: unknown key "seeds"`},
		{"bad seed", "seed: -1\nnodes: []\n", "line 1"},
		{"bad syntax", "nodes:\n  - id: [a\n", "line"},
		{"empty", "", "empty graph file"},
		{"two docs", "nodes: []\n---\nnodes: []\n", "second YAML document"},
		{"null node", "nodes:\n  -\n", "nodes[0] is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q should name %s and say %q", err, path, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("Load missing: %v", err)
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.yaml")
	g := chainGraph()
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	g.Node("a").Params["value"] = 5
	if err := g.Save(path); err != nil { // overwrite
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, back) {
		t.Fatalf("Load(Save(g)) differs")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("Save left temp files: %v", entries)
	}
	if err := testRegistry(t, &counts{}).Validate(back); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("name: x\nseed: 1\nnodes:\n  - id: a\n    kind: const\n    params: {value: 2, l: [1, 2.5, x], m: {k: [a]}}\n    inputs: {x: b.out}\n"))
	f.Add([]byte("nodes: [{id: a, kind: b, seed: 3, params: {t: 2001-12-14, big: 18446744073709551616, bin: !!binary aGk=}}]"))
	f.Add([]byte("nodes:\n  - &x {id: a, kind: b}\n  - *x\n"))
	reg := testRegistry(f, &counts{})
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		reg.Validate(g)
		g.Order()
		DOT(g, reg)
		if _, err := SVG(g, reg); err != nil {
			t.Fatal(err)
		}
		m1, err := g.Marshal()
		if err != nil {
			return // e.g. a value yaml.v3 cannot encode back
		}
		g2, err := Parse(m1, "again.yaml")
		if err != nil {
			t.Fatalf("Parse(Marshal(g)): %v\n%s", err, m1)
		}
		m2, err := g2.Marshal()
		if err != nil || string(m1) != string(m2) {
			t.Fatalf("Marshal not stable (%v):\n%s\n---\n%s", err, m1, m2)
		}
	})
}
