package dag

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestDOT(t *testing.T) {
	reg := testRegistry(t, &counts{})
	g := chainGraph()
	g.Add("q", "nokind", nil, map[string]string{"x": "ghost.out"})
	dot := DOT(g, reg)
	for _, want := range []string{
		`digraph "chain" {`,
		`"a" [label="a\nconst"`,
		`"a" -> "b" [label="out → a"];`,
		`"c" -> "d" [label="out → x"];`,
		`"ghost" [label="ghost\nmissing"`,
		`"q" [label="q\nnokind", tooltip="q (nokind)\nunknown kind", color="red"`,
	} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot)
		}
	}
	if strings.Count(dot, "->") != 4 {
		t.Errorf("want 4 edges:\n%s", dot)
	}
}

// checkSVG parses the document and returns the ids of the node groups and the number
// of edges.
func checkSVG(t *testing.T, svg []byte) (nodes []string, edges int) {
	t.Helper()
	if !bytes.HasPrefix(svg, []byte("<?xml")) {
		t.Fatal("no XML declaration")
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	root := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid XML: %v\n%s", err, svg)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root {
			if se.Name.Local != "svg" || se.Name.Space != "http://www.w3.org/2000/svg" {
				t.Fatalf("root element %v", se.Name)
			}
			root = false
		}
		for _, a := range se.Attr {
			if a.Name.Local == "class" && a.Value == "node" {
				for _, b := range se.Attr {
					if b.Name.Local == "id" {
						nodes = append(nodes, strings.TrimPrefix(b.Value, "node-"))
					}
				}
			}
			if a.Name.Local == "class" && a.Value == "edge" {
				edges++
			}
		}
	}
	return nodes, edges
}

func TestSVG(t *testing.T) {
	reg := testRegistry(t, &counts{})
	g := chainGraph()
	g.Name = `a <"weird"> & name`
	g.Add("f", "add", map[string]any{"plus": 1}, map[string]string{"a": "e.out", "b": "b.out"})
	svg, err := SVG(g, reg)
	if err != nil {
		t.Fatal(err)
	}
	nodes, edges := checkSVG(t, svg)
	if strings.Join(nodes, ",") == "" || len(nodes) != 6 || edges != 5 {
		t.Fatalf("nodes %v edges %d\n%s", nodes, edges, svg)
	}
	for _, want := range []string{">out → x<", ">const<", "&lt;&#34;weird&#34;&gt; &amp; name"} {
		if !strings.Contains(string(svg), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	// Layers: a above b above c above d.
	y := func(id string) float64 {
		s := string(svg)
		i := strings.Index(s, `id="node-`+id+`"`)
		j := i + strings.Index(s[i:], ` y="`) + 4
		k := j + strings.IndexByte(s[j:], '"')
		v, err := strconv.ParseFloat(s[j:k], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !(y("a") < y("b") && y("b") < y("c") && y("c") < y("d")) {
		t.Errorf("layers not top to bottom: %v %v %v %v", y("a"), y("b"), y("c"), y("d"))
	}

	// A cyclic graph with a dangling reference still draws.
	cyc := &Graph{}
	cyc.Add("p", "add", nil, map[string]string{"a": "q.out"})
	cyc.Add("q", "add", nil, map[string]string{"a": "p.out", "b": "nowhere.out"})
	svg, err = SVG(cyc, nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes, edges = checkSVG(t, svg)
	if len(nodes) != 3 || edges != 3 {
		t.Fatalf("cyclic: nodes %v edges %d", nodes, edges)
	}
	if _, err := SVG(&Graph{}, nil); err != nil {
		t.Fatal(err)
	}
}
