package sweep

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
)

// Files and folders of a plan folder.
const (
	PlanFile   = "sweep.json"
	SpecFile   = "spec.yaml"       // the spec as planned
	GraphFile  = pipeline.TableDAG // the table's DAG
	ShardsDir  = "shards"          // shards/I.json: each shard's status
	UnitsDir   = "units"           // units/ID.json: a record per finished unit
	LogsDir    = "logs"            // the cluster's and local workers' logs
	CacheDir   = ".dpsflow/cache"  // the shared content-addressed cache
	planFormat = 1
)

// Plan is a table spec split into units and dealt to shards.
type Plan struct {
	Format int `json:"format"`
	// Version is the dpsflow that planned it (informative); Kinds the version and code
	// version of every DAG kind the plan uses, which must match the worker's (else the cache
	// keys differ and shards would not meet at merge).
	Version string            `json:"version"`
	Kinds   map[string]string `json:"kinds"`
	// Spec is the spec file as planned (absolute), SpecSHA256 its content's hash;
	// GraphSHA256 the hash of table.yaml.
	Spec        string    `json:"spec"`
	SpecSHA256  string    `json:"spec_sha256"`
	GraphSHA256 string    `json:"graph_sha256"`
	Shards      int       `json:"shards"`
	Block       int       `json:"block"` // images per unit (whole batches)
	Batch       int       `json:"batch"`
	N           int       `json:"n"`
	Units       []Unit    `json:"units"`
	Created     time.Time `json:"created"`
}

// Unit is one work unit: images [Lo, Hi) of one table cell.
type Unit struct {
	ID     string `json:"id"`     // a file name: TASK~LABEL~LO-HI
	Task   string `json:"task"`   // the task's label in the table
	Solver string `json:"solver"` // the solver's label
	Node   string `json:"node"`   // the cell's sample node
	Lo     int    `json:"lo"`
	Hi     int    `json:"hi"`
	Shard  int    `json:"shard"`
}

// Options of NewPlan.
type Options struct {
	Shards  int
	Block   int    // images per unit; 0: one batch
	Version string // of the dpsflow planning it
}

// NewPlan checks a spec and splits it into units over opts.Shards shards. Nothing is
// written.
func NewPlan(specPath string, opts Options) (*Plan, *pipeline.TablePlan, error) {
	if opts.Shards < 1 {
		return nil, nil, fmt.Errorf("--shards %d: must be at least 1", opts.Shards)
	}
	abs, err := filepath.Abs(specPath)
	if err != nil {
		return nil, nil, err
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("spec: %w", err)
	}
	spec, err := pipeline.LoadTableSpec(abs)
	if err != nil {
		return nil, nil, err
	}
	tp, err := pipeline.PlanTable(spec)
	if err != nil {
		return nil, nil, err
	}
	reg, err := pipeline.NewRegistry()
	if err != nil {
		return nil, nil, err
	}
	if err := reg.Validate(tp.Graph); err != nil {
		return nil, nil, err
	}
	block := opts.Block
	if block == 0 {
		block = spec.Batch
	}
	if block < 1 || block%spec.Batch != 0 {
		return nil, nil, fmt.Errorf("--block %d: must be a positive multiple of the spec's batch (%d), so that a block is whole batches", opts.Block, spec.Batch)
	}
	graph, err := tp.Graph.Marshal()
	if err != nil {
		return nil, nil, err
	}
	p := &Plan{Format: planFormat, Version: opts.Version, Kinds: kindVersions(reg, tp.Graph), Spec: abs,
		SpecSHA256: sha(data), GraphSHA256: sha(graph), Shards: opts.Shards, Block: block, Batch: spec.Batch, N: spec.N,
		Created: time.Now().UTC()}
	for _, taskName := range spec.Tasks {
		task := pipeline.TaskLabel(taskName)
		for _, label := range spec.Labels() {
			node := "sample/" + task + "/" + label
			if tp.Graph.Node(node) == nil {
				continue // the solver cannot take the task (the table lists it as not run)
			}
			for lo := 0; lo < spec.N; lo += block {
				hi := min(spec.N, lo+block)
				p.Units = append(p.Units, Unit{ID: unitID(task, label, lo, hi), Task: task, Solver: label, Node: node, Lo: lo, Hi: hi})
			}
		}
	}
	if len(p.Units) == 0 {
		return nil, nil, fmt.Errorf("%s: no solver can take any task, so there is nothing to run", abs)
	}
	// Round-robin: neighbouring units (one cell's blocks, a task's solvers) go to different
	// shards, so each shard gets a mix of cheap and costly solvers.
	for i := range p.Units {
		p.Units[i].Shard = i % p.Shards
	}
	return p, tp, nil
}

func unitID(task, label string, lo, hi int) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '+' {
				return r
			}
			return '_'
		}, s)
	}
	return fmt.Sprintf("%s~%s~%05d-%05d", clean(task), clean(label), lo, hi)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// kindVersions is "version code" of each kind the graph uses.
func kindVersions(reg *dag.Registry, g *dag.Graph) map[string]string {
	out := map[string]string{}
	for _, n := range g.Nodes {
		if k, ok := reg.Kind(n.Kind); ok {
			out[n.Kind] = strings.TrimSpace(k.Version + " " + k.CodeVersion)
		}
	}
	return out
}

// ShardUnits are the units of shard i, in plan order.
func (p *Plan) ShardUnits(i int) []Unit {
	var out []Unit
	for _, u := range p.Units {
		if u.Shard == i {
			out = append(out, u)
		}
	}
	return out
}

// Write makes dir a plan folder: the plan, the spec as planned, the DAG, and empty
// folders for shards, units, logs and the cache. dir must be new or empty, or already hold
// this very plan (same spec, graph, shards and block: planning again is harmless).
func (p *Plan) Write(dir string, tp *pipeline.TablePlan) error {
	if old, err := ReadPlan(dir); err == nil {
		if old.SpecSHA256 == p.SpecSHA256 && old.GraphSHA256 == p.GraphSHA256 && old.Shards == p.Shards && old.Block == p.Block {
			return nil
		}
		return fmt.Errorf("%s already holds a plan of another spec or split (%s, %d shards, block %d); give a new folder", dir, old.Spec, old.Shards, old.Block)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("--out %s exists and is not empty; give a new or empty folder", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, sub := range []string{ShardsDir, UnitsDir, LogsDir, CacheDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	spec, err := os.ReadFile(p.Spec)
	if err != nil {
		return err
	}
	if sha(spec) != p.SpecSHA256 {
		return fmt.Errorf("%s changed while it was being planned; plan again", p.Spec)
	}
	if err := atomicfile.Write(filepath.Join(dir, SpecFile), spec, 0o644); err != nil {
		return err
	}
	if err := tp.Graph.Save(filepath.Join(dir, GraphFile)); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	// The plan last: a folder with sweep.json is complete.
	return atomicfile.Write(filepath.Join(dir, PlanFile), append(b, '\n'), 0o644)
}

// ReadPlan reads dir's plan. A missing folder, a folder without a plan and a damaged plan
// are errors that say which.
func ReadPlan(dir string) (*Plan, error) {
	if st, err := os.Stat(dir); err != nil {
		host, _ := os.Hostname()
		return nil, fmt.Errorf("sweep folder %s: %w (on %s: is the shared filesystem mounted here?)", dir, errors.Unwrap(err), host)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("sweep folder %s is a file, not a folder", dir)
	}
	path := filepath.Join(dir, PlanFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no sweep plan (no %s): make one with `dpsflow sweep plan SPEC --out %s`", dir, PlanFile, dir)
	} else if err != nil {
		return nil, err
	}
	return parsePlan(b, path)
}

// parsePlan reads a plan file's content; path names it in errors.
func parsePlan(b []byte, path string) (*Plan, error) {
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if p.Format != planFormat {
		return nil, fmt.Errorf("%s: plan format %d, this dpsflow reads format %d; plan again with this version", path, p.Format, planFormat)
	}
	if p.Shards < 1 || p.Block < 1 || len(p.Units) == 0 {
		return nil, fmt.Errorf("%s: damaged plan (%d shards, block %d, %d units)", path, p.Shards, p.Block, len(p.Units))
	}
	for _, u := range p.Units {
		if u.Shard < 0 || u.Shard >= p.Shards || u.Lo < 0 || u.Hi <= u.Lo || u.ID != unitID(u.Task, u.Solver, u.Lo, u.Hi) {
			return nil, fmt.Errorf("%s: damaged plan (unit %q)", path, u.ID)
		}
	}
	return &p, nil
}

// Open reads dir's plan and its DAG and checks that this dpsflow can run it: the DAG is
// the one planned, every kind has the version it was planned with, and the spec (when this
// machine sees it) has not changed since in a way that changes the DAG.
func Open(dir string, reg *dag.Registry) (*Plan, *dag.Graph, error) {
	p, err := ReadPlan(dir)
	if err != nil {
		return nil, nil, err
	}
	graphPath := filepath.Join(dir, GraphFile)
	data, err := os.ReadFile(graphPath)
	if err != nil {
		return nil, nil, fmt.Errorf("sweep folder %s: %w", dir, err)
	}
	if sha(data) != p.GraphSHA256 {
		return nil, nil, fmt.Errorf("%s was changed after planning (its sha256 is not the plan's); plan again into a new folder", graphPath)
	}
	g, err := dag.Parse(data, graphPath)
	if err != nil {
		return nil, nil, err
	}
	if diff := diffKinds(p.Kinds, kindVersions(reg, g)); diff != "" {
		return nil, nil, fmt.Errorf("%s was planned by another version of dpsflow (%s), whose nodes differ from this one's: %s; plan again into a new folder, or run the dpsflow that planned it", dir, p.Version, diff)
	}
	if err := reg.Validate(g); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", graphPath, err)
	}
	if err := p.checkSpec(g); err != nil {
		return nil, nil, err
	}
	return p, g, nil
}

func diffKinds(planned, now map[string]string) string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(planned)) {
		if now[k] != planned[k] {
			diffs = append(diffs, fmt.Sprintf("kind %s planned at %q, here %q", k, planned[k], now[k]))
		}
	}
	return strings.Join(diffs, "; ")
}

// checkSpec refuses a spec that changed after planning in a way that changes the table (a
// comment or reordering that plans to the same DAG is fine). A spec this machine cannot
// read is not checked: workers need only the plan folder.
func (p *Plan) checkSpec(planned *dag.Graph) error {
	data, err := os.ReadFile(p.Spec)
	if err != nil || sha(data) == p.SpecSHA256 {
		return nil
	}
	spec, err := pipeline.LoadTableSpec(p.Spec)
	if err != nil {
		return fmt.Errorf("the spec %s changed after planning and no longer loads (%v); plan again into a new folder", p.Spec, err)
	}
	tp, err := pipeline.PlanTable(spec)
	if err != nil {
		return fmt.Errorf("the spec %s changed after planning and no longer plans (%v); plan again into a new folder", p.Spec, err)
	}
	if d := graphDiff(planned, tp.Graph); d != "" || spec.N != p.N || spec.Batch != p.Batch {
		if d == "" {
			d = fmt.Sprintf("n %d → %d, batch %d → %d", p.N, spec.N, p.Batch, spec.Batch)
		}
		return fmt.Errorf("the spec %s changed after planning: %s; plan the new spec into a new folder (or undo the change)", p.Spec, d)
	}
	return nil
}

// graphDiff says which nodes a graph added, removed or changed against another, or "".
func graphDiff(old, now *dag.Graph) string {
	enc := func(n *dag.Node) string {
		b, _ := json.Marshal(struct {
			K string
			P map[string]any
			I map[string]string
			S *uint64
		}{n.Kind, n.Params, n.Inputs, n.Seed})
		return string(b)
	}
	was := map[string]string{}
	for _, n := range old.Nodes {
		was[n.ID] = enc(n)
	}
	var added, changed, removed []string
	for _, n := range now.Nodes {
		e, ok := was[n.ID]
		switch {
		case !ok:
			added = append(added, n.ID)
		case e != enc(n):
			changed = append(changed, n.ID)
		}
		delete(was, n.ID)
	}
	for id := range was {
		removed = append(removed, id)
	}
	sort.Strings(removed)
	var parts []string
	for _, x := range []struct {
		what string
		ids  []string
	}{{"adds", added}, {"changes", changed}, {"removes", removed}} {
		if len(x.ids) > 0 {
			if len(x.ids) > 6 {
				x.ids = append(x.ids[:6:6], fmt.Sprintf("… (%d in all)", len(x.ids)))
			}
			parts = append(parts, x.what+" "+strings.Join(x.ids, ", "))
		}
	}
	if len(parts) == 0 && old.Seed != now.Seed {
		parts = append(parts, fmt.Sprintf("seed %d → %d", old.Seed, now.Seed))
	}
	return strings.Join(parts, "; ")
}
