package dag

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Decision is what Run would do with a node: Action "reuse" (read the outputs stored
// under Key) or "run", with the Reason. Key is set whenever it can be computed before
// running.
type Decision struct{ Node, Kind, Action, Key, Reason string }

// Explain says, without running anything, what Run would do with each node and why
// (in topological order): "reuse" with the cached key, or "run" with the reason: never
// run, kind version changed, code changed (Kind.CodeVersion), params changed (naming them, old -> new), seed changed,
// input X changed (upstream will rerun / differs), not cacheable, forced.
//
// Reasons compare with the node's last key, recorded in the cache per graph name and
// node id. A node downstream of one that will run is reported as "run" ("input x may
// change (upstream a will run)"): its key is only known once its inputs are, and if they
// come out unchanged Run will reuse it after all.
func (r *Runner) Explain(ctx context.Context, g *Graph) ([]Decision, error) {
	p, err := r.plan(g)
	if err != nil {
		return nil, err
	}
	n := len(p.nodes)
	hashes := make([]map[string]string, n) // known output hashes; nil if the node will run
	out := make([]Decision, 0, n)
	for i, nd := range p.nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := p.kinds[i]
		d := Decision{Node: nd.ID, Kind: k.Name, Action: "run"}
		if r.Cache == nil {
			d.Reason = "no cache"
			out = append(out, d)
			continue
		}
		ki := r.keyFor(p, i, func(src int, port string) (string, bool) {
			h, ok := hashes[src][port]
			return h, ok
		}, r.memOnly(p))
		d.Key = ki.key
		switch {
		case ki.why != "":
			d.Reason = ki.why
		case p.forced[i]:
			d.Reason = "forced"
		default:
			if ki.key != "" {
				if hs, ok := r.Cache.peek(ki.key, k); ok {
					d.Action, d.Reason = "reuse", "cached"
					hashes[i] = hs
					break
				}
			}
			d.Reason = r.Cache.diffReason(p.g.Name, nd.ID, ki)
		}
		out = append(out, d)
	}
	return out, nil
}

// peek checks that an entry looks complete for kind k (manifest with every output of
// the right type), without reading the outputs, and returns their hashes.
func (c *Cache) peek(key string, k *Kind) (map[string]string, bool) {
	m, err := c.readManifest(key)
	if err != nil {
		return nil, false
	}
	hs := make(map[string]string, len(k.Outputs))
	for _, o := range k.Outputs {
		mo, ok := m.Outputs[o.Name]
		if !ok || mo.Type != o.Type {
			return nil, false
		}
		hs[o.Name] = mo.SHA256
	}
	return hs, true
}

// diffReason explains why a node's key is not in the cache, comparing with the last key
// recorded for that graph node.
func (c *Cache) diffReason(graph, node string, ki keyInfo) string {
	last, err := c.readLast(graph, node)
	if err != nil {
		return "never run"
	}
	comps, old := ki.comps, &last.Components
	var reasons []string
	if old.Kind != comps.Kind {
		reasons = append(reasons, fmt.Sprintf("kind changed %s → %s", old.Kind, comps.Kind))
	} else if old.Version != comps.Version {
		reasons = append(reasons, fmt.Sprintf("kind version changed %s → %s", orNone(old.Version), orNone(comps.Version)))
	}
	if old.Kind == comps.Kind && old.Code != comps.Code {
		reasons = append(reasons, fmt.Sprintf("code changed %s → %s", orNone(old.Code), orNone(comps.Code)))
	}
	if old.External != comps.External {
		reasons = append(reasons, "what it reads outside the graph changed")
	}
	// Params.
	var pch []string
	names := map[string]bool{}
	for k := range comps.Params {
		names[k] = true
	}
	for k := range old.Params {
		names[k] = true
	}
	for _, name := range sortedKeys(names) {
		oldRaw, hadOld := old.Params[name]
		newV, hasNew := comps.Params[name]
		var newJSON string
		if hasNew {
			b, err := json.Marshal(newV)
			if err != nil {
				newJSON = fmt.Sprint(newV)
			} else {
				newJSON = string(b)
			}
		}
		var oldJSON string
		if hadOld {
			var buf bytes.Buffer
			if json.Compact(&buf, oldRaw) == nil {
				oldJSON = buf.String()
			} else {
				oldJSON = string(oldRaw)
			}
		}
		switch {
		case hadOld && hasNew && oldJSON != newJSON:
			pch = append(pch, diffJSON(name, oldJSON, newJSON)...)
		case hadOld && !hasNew:
			pch = append(pch, fmt.Sprintf("%s %s → (unset)", name, shorten(oldJSON)))
		case !hadOld && hasNew:
			pch = append(pch, fmt.Sprintf("%s (unset) → %s", name, shorten(newJSON)))
		}
	}
	if len(pch) > 0 {
		reasons = append(reasons, "params changed: "+strings.Join(pch, ", "))
	}
	if old.Seed != comps.Seed {
		reasons = append(reasons, fmt.Sprintf("seed changed %d → %d", old.Seed, comps.Seed))
	}
	// Inputs.
	unknown := map[string]string{}
	for j, port := range ki.unknown {
		unknown[port] = ki.unknownF[j]
	}
	ports := map[string]bool{}
	for p := range comps.Inputs {
		ports[p] = true
	}
	for p := range unknown {
		ports[p] = true
	}
	for p := range old.Inputs {
		ports[p] = true
	}
	for _, port := range sortedKeys(ports) {
		oldH, hadOld := old.Inputs[port]
		newH, hasNew := comps.Inputs[port]
		src, isUnknown := unknown[port]
		switch {
		case isUnknown:
			reasons = append(reasons, fmt.Sprintf("input %s may change (upstream %s will run)", port, src))
		case hadOld && !hasNew:
			reasons = append(reasons, fmt.Sprintf("input %s disconnected", port))
		case !hadOld && hasNew:
			reasons = append(reasons, fmt.Sprintf("input %s connected", port))
		case oldH != newH:
			reasons = append(reasons, fmt.Sprintf("input %s changed", port))
		}
	}
	if len(reasons) == 0 {
		if ki.key != "" && ki.key == last.Key {
			return "cache entry missing or incomplete"
		}
		return "cache entry missing"
	}
	return strings.Join(reasons, "; ")
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func shorten(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max-1] + "…"
}

// diffJSON names what changed between two JSON values: for two objects (a map param such
// as a solver's params), each changed key as "name.key old → new"; else "name old → new".
func diffJSON(name, oldJSON, newJSON string) []string {
	var a, b any
	if json.Unmarshal([]byte(oldJSON), &a) != nil || json.Unmarshal([]byte(newJSON), &b) != nil {
		return []string{fmt.Sprintf("%s %s → %s", name, shorten(oldJSON), shorten(newJSON))}
	}
	am, aObj := a.(map[string]any)
	bm, bObj := b.(map[string]any)
	if !aObj || !bObj {
		return []string{fmt.Sprintf("%s %s → %s", name, shorten(oldJSON), shorten(newJSON))}
	}
	keys := map[string]bool{}
	for k := range am {
		keys[k] = true
	}
	for k := range bm {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		av, inA := am[k]
		bv, inB := bm[k]
		aj, _ := json.Marshal(av)
		bj, _ := json.Marshal(bv)
		switch {
		case inA && inB && string(aj) != string(bj):
			out = append(out, diffJSON(name+"."+k, string(aj), string(bj))...)
		case inA && !inB:
			out = append(out, fmt.Sprintf("%s.%s %s → (unset)", name, k, shorten(string(aj))))
		case !inA && inB:
			out = append(out, fmt.Sprintf("%s.%s (unset) → %s", name, k, shorten(string(bj))))
		}
	}
	return out
}
