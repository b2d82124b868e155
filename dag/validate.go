package dag

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one thing wrong with a graph. Node, Port (an input port) and Param are set
// when the problem concerns them.
type Problem struct{ Node, Port, Param, Msg string }

// String renders the problem as `node "measure" input "x": ...`.
func (p Problem) String() string {
	var b strings.Builder
	if p.Node != "" {
		fmt.Fprintf(&b, "node %q", p.Node)
	}
	if p.Port != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "input %q", p.Port)
	}
	if p.Param != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "param %q", p.Param)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ParamError is what a Kind's Check returns to say which parameter is wrong.
type ParamError struct{ Param, Msg string }

func (e *ParamError) Error() string { return fmt.Sprintf("param %q: %s", e.Param, e.Msg) }

// ValidationError lists every problem found in a graph.
type ValidationError struct{ Problems []Problem }

// Error joins the problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Validate checks everything before anything runs: duplicate/empty ids, unknown kinds,
// unknown input ports, references to unknown nodes/ports, unconnected required inputs,
// type mismatches, cycles (the error lists the cycle), unknown params, params of the wrong
// type, missing required params, and what each kind's Check refuses. It reports ALL
// problems at once as *ValidationError.
func (r *Registry) Validate(g *Graph) error {
	var probs []Problem
	add := func(node, port, param, format string, args ...any) {
		probs = append(probs, Problem{Node: node, Port: port, Param: param, Msg: fmt.Sprintf(format, args...)})
	}
	if g == nil {
		return &ValidationError{Problems: []Problem{{Msg: "nil graph"}}}
	}
	byID := map[string]*Node{}
	for i, n := range g.Nodes {
		switch {
		case n == nil:
			add("", "", "", "nodes[%d] is nil", i)
			continue
		case n.ID == "":
			add("", "", "", "nodes[%d] (kind %q) has an empty id", i, n.Kind)
		case strings.ContainsAny(n.ID, ". \t\n\"'"):
			add(n.ID, "", "", "id may not contain '.', quotes or spaces")
		}
		if n.ID != "" {
			if _, dup := byID[n.ID]; dup {
				add(n.ID, "", "", "duplicate id (nodes[%d])", i)
			} else {
				byID[n.ID] = n
			}
		}
	}
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		if n.Kind == "" {
			add(n.ID, "", "", "no kind")
			continue
		}
		k, ok := r.Kind(n.Kind)
		if !ok {
			add(n.ID, "", "", "unknown kind %q%s", n.Kind, suggest(n.Kind, r.Kinds()))
			continue
		}
		// Inputs.
		for _, port := range sortedKeys(n.Inputs) {
			ref := n.Inputs[port]
			in := k.input(port)
			if in == nil {
				add(n.ID, port, "", "kind %q has no input %q%s", k.Name, port, portList("inputs", k.Inputs))
				continue
			}
			src, outPort, err := SplitRef(ref)
			if err != nil {
				add(n.ID, port, "", "%v", err)
				continue
			}
			sn, ok := byID[src]
			if !ok {
				add(n.ID, port, "", "reference %q: unknown node %q", ref, src)
				continue
			}
			sk, ok := r.Kind(sn.Kind)
			if !ok {
				continue // reported on the source node
			}
			out := sk.output(outPort)
			if out == nil {
				add(n.ID, port, "", "reference %q: node %q (kind %q) has no output %q%s", ref, src, sk.Name, outPort, portList("outputs", sk.Outputs))
				continue
			}
			if !Compatible(out.Type, in.Type) {
				add(n.ID, port, "", "type mismatch: %q is %q, input wants %q", ref, out.Type, in.Type)
			}
		}
		for _, in := range k.Inputs {
			if _, ok := n.Inputs[in.Name]; !ok && !in.Optional {
				add(n.ID, in.Name, "", "required input (type %q) is not connected", in.Type)
			}
		}
		// Params.
		before := len(probs)
		for _, name := range sortedKeys(n.Params) {
			p := k.param(name)
			if p == nil {
				add(n.ID, "", name, "kind %q has no param %q%s", k.Name, name, paramList(k.Params))
				continue
			}
			if _, err := normalizeParam(p.Type, n.Params[name]); err != nil {
				add(n.ID, "", name, "%v", err)
			}
		}
		for _, p := range k.Params {
			if _, ok := n.Params[p.Name]; !ok && p.Required {
				add(n.ID, "", p.Name, "required param (type %q) is missing", p.Type)
			}
		}
		// The kind's own check, on params of the right types only (it may assume them).
		if k.Check != nil && len(probs) == before {
			if err := k.Check(effectiveParams(k, n)); err != nil {
				var pe *ParamError
				if errors.As(err, &pe) {
					add(n.ID, "", pe.Param, "%s", pe.Msg)
				} else {
					add(n.ID, "", "", "%v", err)
				}
			}
		}
	}
	// Cycles, over the edges that resolve.
	if _, cycles := g.order(); len(cycles) > 0 {
		ce := g.cycleError(cycles)
		for _, c := range ce.Cycles {
			add(c[0], "", "", "cycle: %s", strings.Join(append(append([]string(nil), c...), c[0]), " -> "))
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

func portList(what string, ports []Port) string {
	if len(ports) == 0 {
		return " (it has no " + what + ")"
	}
	names := make([]string, len(ports))
	for i, p := range ports {
		names[i] = p.Name
	}
	return " (" + what + ": " + strings.Join(names, ", ") + ")"
}

func paramList(ps []Param) string {
	if len(ps) == 0 {
		return " (it has no params)"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	return " (params: " + strings.Join(names, ", ") + ")"
}

// suggest proposes the closest known name when one is near.
func suggest(name string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k)); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
