package dag

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/dpsflow/dpsflow/internal/yamlerr"
	"gopkg.in/yaml.v3"
)

// Load reads a graph from a YAML file. Errors name the file (and the line where yaml.v3
// gives one); unknown keys are errors.
func Load(path string) (*Graph, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dag: %w", err)
	}
	return Parse(data, path)
}

// Parse reads a graph from YAML; name (usually the file name) prefixes every error.
// Unknown keys are errors. Lists whose elements all have one type come back as []string,
// []int or []float64 (other lists as []any); maps as map[string]any.
func Parse(data []byte, name string) (g *Graph, err error) {
	if name == "" {
		name = "<input>"
	}
	defer func() {
		if v := recover(); v != nil { // the YAML library should not panic; if it does, say so
			g, err = nil, fmt.Errorf("%s: YAML parser failed: %v", name, v)
		}
	}()
	return parse(data, name)
}

func parse(data []byte, name string) (*Graph, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var g Graph
	if err := dec.Decode(&g); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty graph file", name)
		}
		return nil, fmt.Errorf("%s: %w", name, yamlerr.Plain(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return nil, fmt.Errorf("%s: line %d: a second YAML document; a graph file holds one", name, extra.Line)
	}
	for i, n := range g.Nodes {
		if n == nil {
			return nil, fmt.Errorf("%s: nodes[%d] is empty", name, i)
		}
		for k, v := range n.Params {
			n.Params[k] = fromYAML(v)
		}
	}
	return &g, nil
}

// fromYAML turns homogeneous []any lists into typed slices, recursively.
func fromYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = fromYAML(e)
		}
		return x
	case []any:
		if len(x) == 0 {
			return x
		}
		allStr, allInt, allFloat := true, true, true
		for i, e := range x {
			e = fromYAML(e)
			x[i] = e
			switch e.(type) {
			case string:
				allInt, allFloat = false, false
			case int:
				allStr, allFloat = false, false
			case float64:
				allStr, allInt = false, false
			default:
				allStr, allInt, allFloat = false, false, false
			}
		}
		switch {
		case allStr:
			out := make([]string, len(x))
			for i, e := range x {
				out[i] = e.(string)
			}
			return out
		case allInt:
			out := make([]int, len(x))
			for i, e := range x {
				out[i] = e.(int)
			}
			return out
		case allFloat:
			out := make([]float64, len(x))
			for i, e := range x {
				out[i] = e.(float64)
			}
			return out
		}
		return x
	}
	return v
}

// Marshal writes the graph as YAML with keys in a fixed order and parameters sorted, so
// that Parse(Marshal(g)) equals g for graphs whose parameter values are normalised
// (see NormalizeParam); floats keep a decimal point so they come back as floats.
func (g *Graph) Marshal() ([]byte, error) {
	if g == nil {
		return nil, errors.New("dag: Marshal: nil graph")
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	if g.Name != "" {
		addPair(root, "name", strNode(g.Name))
	}
	addPair(root, "seed", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(g.Seed, 10)})
	nodes := &yaml.Node{Kind: yaml.SequenceNode}
	for i, n := range g.Nodes {
		if n == nil {
			return nil, fmt.Errorf("dag: Marshal: nodes[%d] is nil", i)
		}
		m := &yaml.Node{Kind: yaml.MappingNode}
		addPair(m, "id", strNode(n.ID))
		addPair(m, "kind", strNode(n.Kind))
		if n.Seed != nil {
			addPair(m, "seed", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(*n.Seed, 10)})
		}
		if len(n.Params) > 0 {
			pm := &yaml.Node{Kind: yaml.MappingNode}
			for _, k := range sortedKeys(n.Params) {
				vn, err := valueNode(n.Params[k])
				if err != nil {
					return nil, fmt.Errorf("dag: Marshal: node %q param %q: %w", n.ID, k, err)
				}
				addPair(pm, k, vn)
			}
			addPair(m, "params", pm)
		}
		if len(n.Inputs) > 0 {
			im := &yaml.Node{Kind: yaml.MappingNode}
			for _, k := range sortedKeys(n.Inputs) {
				addPair(im, k, strNode(n.Inputs[k]))
			}
			addPair(m, "inputs", im)
		}
		nodes.Content = append(nodes.Content, m)
	}
	addPair(root, "nodes", nodes)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("dag: Marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("dag: Marshal: %w", err)
	}
	return buf.Bytes(), nil
}

func strNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func addPair(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, strNode(key), v)
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return ".inf"
	case math.IsInf(f, -1):
		return "-.inf"
	case math.IsNaN(f):
		return ".nan"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

func valueNode(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case float64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(x)}, nil
	case float32:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: formatFloat(float64(x))}, nil
	case string:
		return strNode(x), nil
	case []byte:
		n := &yaml.Node{}
		err := n.Encode(x)
		return n, err
	}
	rv := reflect.ValueOf(v)
	if v != nil {
		switch rv.Kind() {
		case reflect.Map:
			m := &yaml.Node{Kind: yaml.MappingNode}
			type kv struct {
				k string
				v reflect.Value
			}
			var pairs []kv
			iter := rv.MapRange()
			for iter.Next() {
				pairs = append(pairs, kv{fmt.Sprint(iter.Key().Interface()), iter.Value()})
			}
			sort.Slice(pairs, func(i, j int) bool { return pairs[i].k < pairs[j].k })
			for _, p := range pairs {
				vn, err := valueNode(p.v.Interface())
				if err != nil {
					return nil, fmt.Errorf("key %q: %w", p.k, err)
				}
				addPair(m, p.k, vn)
			}
			return m, nil
		case reflect.Slice, reflect.Array:
			s := &yaml.Node{Kind: yaml.SequenceNode}
			flow := true
			for i := range rv.Len() {
				vn, err := valueNode(rv.Index(i).Interface())
				if err != nil {
					return nil, fmt.Errorf("element %d: %w", i, err)
				}
				if vn.Kind != yaml.ScalarNode {
					flow = false
				}
				s.Content = append(s.Content, vn)
			}
			if flow {
				s.Style = yaml.FlowStyle
			}
			return s, nil
		}
	}
	n := &yaml.Node{}
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	return n, nil
}

// Save writes the graph as YAML atomically: a temporary file in the same directory,
// synced, then renamed over path.
func (g *Graph) Save(path string) error {
	data, err := g.Marshal()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("dag: Save %s: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a directory so a rename inside it is durable. Errors are ignored: some
// systems cannot sync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
