package dag

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// drawEdge is an edge between two drawn nodes, with its port labels.
type drawEdge struct {
	src, dst int
	labels   []string
}

// drawGraph collects what both DOT and SVG draw: the nodes (plus placeholders for
// references to missing nodes) and the edges, merged per node pair.
type drawGraph struct {
	ids     []string
	kinds   []string
	missing []bool // a placeholder for an unknown referenced node, or a node of unknown kind
	ghost   []bool // a placeholder
	titles  []string
	edges   []drawEdge
}

func edgeLabel(out, in string) string {
	if out == in {
		return in
	}
	return out + " → " + in
}

func buildDraw(g *Graph, reg *Registry) *drawGraph {
	d := &drawGraph{}
	index := map[string]int{}
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		if _, dup := index[n.ID]; dup {
			continue
		}
		index[n.ID] = len(d.ids)
		d.ids = append(d.ids, n.ID)
		d.kinds = append(d.kinds, n.Kind)
		unknown := false
		var title strings.Builder
		fmt.Fprintf(&title, "%s (%s)", n.ID, n.Kind)
		if reg != nil {
			if k, ok := reg.Kind(n.Kind); ok {
				if k.Doc != "" {
					fmt.Fprintf(&title, "\n%s", k.Doc)
				}
			} else {
				unknown = true
				title.WriteString("\nunknown kind")
			}
		}
		for _, p := range sortedKeys(n.Params) {
			fmt.Fprintf(&title, "\n%s = %v", p, n.Params[p])
		}
		d.missing = append(d.missing, unknown)
		d.ghost = append(d.ghost, false)
		d.titles = append(d.titles, title.String())
	}
	pair := map[[2]int]int{}
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		dst := index[n.ID]
		for _, port := range sortedKeys(n.Inputs) {
			ref := n.Inputs[port]
			src, out, err := SplitRef(ref)
			if err != nil {
				src, out = ref, "?"
			}
			s, ok := index[src]
			if !ok {
				s = len(d.ids)
				index[src] = s
				d.ids = append(d.ids, src)
				d.kinds = append(d.kinds, "missing")
				d.missing = append(d.missing, true)
				d.ghost = append(d.ghost, true)
				d.titles = append(d.titles, src+": no such node")
			}
			k := [2]int{s, dst}
			if e, ok := pair[k]; ok {
				d.edges[e].labels = append(d.edges[e].labels, edgeLabel(out, port))
				continue
			}
			pair[k] = len(d.edges)
			d.edges = append(d.edges, drawEdge{src: s, dst: dst, labels: []string{edgeLabel(out, port)}})
		}
	}
	return d
}

func dotQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	return `"` + s + `"`
}

// DOT renders the graph in graphviz's DOT language: a box per node (id and kind), an
// edge per wired input labelled "outport → inport" (one name when they agree). With a
// registry, nodes of unknown kinds are drawn red; references to missing nodes always are.
func DOT(g *Graph, reg *Registry) string {
	if g == nil {
		return "digraph {}\n"
	}
	d := buildDraw(g, reg)
	var b strings.Builder
	name := g.Name
	if name == "" {
		name = "dag"
	}
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(name))
	b.WriteString("  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n")
	for i, id := range d.ids {
		attrs := fmt.Sprintf("label=%s, tooltip=%s", dotQuote(id+"\n"+d.kinds[i]), dotQuote(d.titles[i]))
		if d.ghost[i] {
			attrs += `, style="dashed", color="red", fillcolor="white"`
		} else if d.missing[i] {
			attrs += `, color="red", fillcolor="#fde8e8"`
		}
		fmt.Fprintf(&b, "  %s [%s];\n", dotQuote(id), attrs)
	}
	for _, e := range d.edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", dotQuote(d.ids[e.src]), dotQuote(d.ids[e.dst]), dotQuote(strings.Join(e.labels, "\n")))
	}
	b.WriteString("}\n")
	return b.String()
}

// SVG layout constants, in pixels. Text is monospace so that widths are predictable.
const (
	svgFont     = 12.0
	svgCharW    = 7.3
	svgBoxH     = 42.0
	svgPadX     = 12.0
	svgGapX     = 36.0
	svgGapY     = 70.0
	svgMargin   = 20.0
	svgLabelPad = 4.0
)

// SVG draws the graph as a standalone SVG document with a layered layout (sources at
// the top, each node one layer below its deepest input, a few barycentre sweeps to reduce
// crossings). Nodes are boxes with id and kind; edges are labelled with their ports;
// hovering a node shows its parameters. No graphviz is needed.
func SVG(g *Graph, reg *Registry) ([]byte, error) {
	if g == nil {
		return nil, errors.New("dag: SVG: nil graph")
	}
	d := buildDraw(g, reg)
	n := len(d.ids)
	preds := make([][]int, n)
	succs := make([][]int, n)
	for _, e := range d.edges {
		preds[e.dst] = append(preds[e.dst], e.src)
		succs[e.src] = append(succs[e.src], e.dst)
	}
	// A processing order: topological where possible (placeholders first), the rest of a
	// cyclic graph by position. Layers only follow edges that go forward in this order.
	order := drawOrder(n, preds)
	pos := make([]int, n)
	for k, i := range order {
		pos[i] = k
	}
	layer := make([]int, n)
	maxLayer := 0
	for _, i := range order {
		for _, s := range preds[i] {
			if pos[s] < pos[i] && layer[s]+1 > layer[i] {
				layer[i] = layer[s] + 1
			}
		}
		maxLayer = max(maxLayer, layer[i])
	}
	layers := make([][]int, maxLayer+1)
	for _, i := range order {
		layers[layer[i]] = append(layers[layer[i]], i)
	}
	// Barycentre sweeps.
	slot := make([]float64, n)
	setSlots := func() {
		for _, l := range layers {
			for k, i := range l {
				slot[i] = float64(k)
			}
		}
	}
	setSlots()
	sweep := func(l []int, nb [][]int) {
		bc := make(map[int]float64, len(l))
		for _, i := range l {
			if len(nb[i]) == 0 {
				bc[i] = slot[i]
				continue
			}
			sum := 0.0
			for _, j := range nb[i] {
				sum += slot[j]
			}
			bc[i] = sum / float64(len(nb[i]))
		}
		sort.SliceStable(l, func(a, b int) bool { return bc[l[a]] < bc[l[b]] })
		for k, i := range l {
			slot[i] = float64(k)
		}
	}
	for range 4 {
		for li := 1; li < len(layers); li++ {
			sweep(layers[li], preds)
		}
		for li := len(layers) - 2; li >= 0; li-- {
			sweep(layers[li], succs)
		}
	}
	// Sizes and coordinates.
	w := make([]float64, n)
	for i := range d.ids {
		chars := max(textLen(d.ids[i]), textLen(d.kinds[i]))
		w[i] = max(float64(chars)*svgCharW+2*svgPadX, 64)
	}
	layerW := make([]float64, len(layers))
	width := 0.0
	for li, l := range layers {
		for k, i := range l {
			if k > 0 {
				layerW[li] += svgGapX
			}
			layerW[li] += w[i]
		}
		width = max(width, layerW[li])
	}
	x := make([]float64, n) // left edge
	y := make([]float64, n) // top edge
	for li, l := range layers {
		cx := svgMargin + (width-layerW[li])/2
		for _, i := range l {
			x[i] = cx
			y[i] = svgMargin + float64(li)*(svgBoxH+svgGapY)
			cx += w[i] + svgGapX
		}
	}
	totalW := width + 2*svgMargin
	totalH := float64(len(layers))*(svgBoxH+svgGapY) - svgGapY + 2*svgMargin
	// Edge labels may stick out sideways; widen the canvas for them.
	type lbl struct {
		x, y float64
		text string
	}
	var labels []lbl
	var paths []string
	// Edges into one node arrive at points spread along its top, in the order of their
	// sources from left to right, and their labels sit at staggered heights so that
	// they do not overlap.
	incoming := make([][]int, n)
	for k, e := range d.edges {
		incoming[e.dst] = append(incoming[e.dst], k)
	}
	slotOf := make([]int, len(d.edges))
	for i := range incoming {
		in := incoming[i]
		sort.SliceStable(in, func(a, b int) bool { return x[d.edges[in[a]].src] < x[d.edges[in[b]].src] })
		for k, e := range in {
			slotOf[e] = k
		}
	}
	for k, e := range d.edges {
		nIn := len(incoming[e.dst])
		x1, y1 := x[e.src]+w[e.src]/2, y[e.src]+svgBoxH
		x2, y2 := x[e.dst]+w[e.dst]*float64(slotOf[k]+1)/float64(nIn+1), y[e.dst]
		var path string
		var mx, my float64
		if y2 > y1 {
			cy := (y2 - y1) / 2
			path = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, y1, x1, y1+cy, x2, y2-cy, x2, y2)
			t := 0.5
			if nIn > 1 {
				t = 0.3 + 0.45*float64(slotOf[k])/float64(nIn-1)
			}
			mx = bezier(t, x1, x1, x2, x2)
			my = bezier(t, y1, y1+cy, y2-cy, y2)
		} else {
			// A back edge (cycle) or an edge within a layer: loop round the right side.
			x1, y1 = x[e.src]+w[e.src], y[e.src]+svgBoxH/2
			x2, y2 = x[e.dst]+w[e.dst], y[e.dst]+svgBoxH/2
			bulge := max(x1, x2) + 40
			path = fmt.Sprintf("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f", x1, y1, bulge, y1, bulge, y2, x2+2, y2)
			mx, my = bulge-10, (y1+y2)/2
			totalW = max(totalW, bulge+svgMargin)
		}
		paths = append(paths, path)
		text := strings.Join(e.labels, ", ")
		labels = append(labels, lbl{mx, my, text})
		half := float64(textLen(text)) * svgCharW * 0.85 / 2
		totalW = max(totalW, mx+half+svgMargin)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="monospace" font-size="%.0f">`+"\n",
		totalW, totalH, totalW, totalH, svgFont)
	title := g.Name
	if title == "" {
		title = "dag"
	}
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#556"/></marker></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="white"/>`+"\n", totalW, totalH)
	for k, e := range d.edges {
		fmt.Fprintf(&b, `<path class="edge" data-from="%s" data-to="%s" d="%s" fill="none" stroke="#556" stroke-width="1.3" marker-end="url(#arrow)"/>`+"\n",
			esc(d.ids[e.src]), esc(d.ids[e.dst]), paths[k])
	}
	for _, l := range labels {
		fmt.Fprintf(&b, `<text class="port" x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="middle" font-size="%.0f" fill="#335" stroke="white" stroke-width="3" paint-order="stroke">%s</text>`+"\n",
			l.x, l.y, svgFont-2, esc(l.text))
	}
	for i := range d.ids {
		fill, stroke, dash := "#eef3fb", "#4a5a78", ""
		if d.ghost[i] {
			fill, stroke, dash = "white", "#c0392b", ` stroke-dasharray="4,3"`
		} else if d.missing[i] {
			fill, stroke = "#fde8e8", "#c0392b"
		}
		fmt.Fprintf(&b, `<g class="node" id="node-%s"><title>%s</title>`, esc(d.ids[i]), esc(d.titles[i]))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="6" fill="%s" stroke="%s" stroke-width="1.5"%s/>`,
			x[i], y[i], w[i], svgBoxH, fill, stroke, dash)
		cx := x[i] + w[i]/2
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`, cx, y[i]+17, esc(d.ids[i]))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#556">%s</text></g>`+"\n", cx, y[i]+33, esc(d.kinds[i]))
	}
	b.WriteString("</svg>\n")
	return b.Bytes(), nil
}

// drawOrder is Kahn's algorithm by position; nodes left on cycles follow by position.
func drawOrder(n int, preds [][]int) []int {
	indeg := make([]int, n)
	succs := make([][]int, n)
	for i, ps := range preds {
		indeg[i] = len(ps)
		for _, p := range ps {
			succs[p] = append(succs[p], i)
		}
	}
	done := make([]bool, n)
	var out []int
	for len(out) < n {
		progress := false
		for i := range n {
			if done[i] || indeg[i] > 0 {
				continue
			}
			done[i] = true
			out = append(out, i)
			for _, s := range succs[i] {
				indeg[s]--
			}
			progress = true
			break
		}
		if !progress {
			// A cycle: take the first node not done.
			for i := range n {
				if !done[i] {
					done[i] = true
					out = append(out, i)
					for _, s := range succs[i] {
						indeg[s]--
					}
					break
				}
			}
		}
	}
	return out
}

// bezier evaluates one coordinate of a cubic Bézier curve at t.
func bezier(t, p0, p1, p2, p3 float64) float64 {
	u := 1 - t
	return u*u*u*p0 + 3*u*u*t*p1 + 3*u*t*t*p2 + t*t*t*p3
}

func textLen(s string) int { return len([]rune(s)) }

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
