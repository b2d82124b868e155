package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
)

// A run folder records the graph whose results it holds in .dpsflow/graph.yaml (its save
// dir relative to the folder), written before the graph runs. `dag run` compares the
// graph it is given with that record, so an edited run.yaml does not silently overwrite
// the results of the original one.
const graphRecord = ".dpsflow/graph.yaml"

// runYAMLFor is g as DIR/run.yaml holds it: save dirs relative to DIR, so the folder can
// move. If DIR/run.yaml is an older file of the same graph that names DIR absolutely, its
// bytes are kept, so rerunning an older run folder is still "the same run".
func runYAMLFor(g *dag.Graph, dir string) ([]byte, error) {
	data, err := canonicalGraph(g, dir)
	if err != nil {
		return nil, err
	}
	old, err := os.ReadFile(filepath.Join(dir, "run.yaml"))
	if err != nil || bytes.Equal(old, data) {
		return data, nil
	}
	if og, err := dag.Parse(old, filepath.Join(dir, "run.yaml")); err == nil {
		if err := pipeline.ResolveSaveDirs(og, dir); err == nil {
			if b, err := canonicalGraph(og, dir); err == nil && bytes.Equal(b, data) {
				return old, nil
			}
		}
	}
	return data, nil
}

// writeRunYAML writes DIR/run.yaml (data from runYAMLFor) and the record of the graph.
func writeRunYAML(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return writeGraphRecord(filepath.Dir(path), data)
}

func writeGraphRecord(dir string, data []byte) error {
	path := filepath.Join(dir, filepath.FromSlash(graphRecord))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// canonicalGraph is g marshalled with its save dirs relative to dir (g is not changed).
func canonicalGraph(g *dag.Graph, dir string) ([]byte, error) {
	c := g.Clone()
	pipeline.RelativizeSaveDirs(c, dir)
	return c.Marshal()
}

// prepareDAGOut checks, before `dag run FILE` starts, the folders g's save nodes write
// (dirs already resolved against FILE's folder): a new or empty folder, or one holding
// the results of this same graph (a rerun resumes), is used; one holding another graph's
// results is refused unless overwrite. out, when given, replaces the save node's folder.
// The accepted folders get the graph's record and, when they are not FILE's own folder,
// a run.yaml of their own.
func prepareDAGOut(g *dag.Graph, file, out string, overwrite bool) error {
	file, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	dirs := pipeline.SaveDirs(g)
	if out != "" {
		if len(dirs) != 1 {
			return usageError{fmt.Errorf("--out %s: %s has %d save nodes; --out replaces the folder of exactly one", out, file, len(dirs))}
		}
		if out, err = filepath.Abs(out); err != nil {
			return usageError{fmt.Errorf("--out: %w", err)}
		}
		for id := range dirs {
			g.Node(id).Params["dir"] = out
			dirs[id] = out
		}
	}
	ids := make([]string, 0, len(dirs))
	for id := range dirs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		dir := dirs[id]
		want, err := canonicalGraph(g, dir)
		if err != nil {
			return err
		}
		if err := checkRunFolder(id, dir, file, want, overwrite); err != nil {
			return err
		}
		if overwrite {
			// Another graph's results must not stay beside this one's (extra images,
			// masks, progress frames); the cache is kept, its entries are content-addressed.
			if rec, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(graphRecord))); err != nil || !bytes.Equal(rec, want) {
				if err := removeRunOutputs(dir); err != nil {
					return fmt.Errorf("save node %q: %w", id, err)
				}
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("save node %q: %w", id, err)
		}
		if filepath.Dir(file) != dir {
			if err := writeRunYAML(filepath.Join(dir, "run.yaml"), want); err != nil {
				return err
			}
		} else if err := writeGraphRecord(dir, want); err != nil {
			return err
		}
	}
	return nil
}

// checkRunFolder says whether save node id may write dir for the graph want (canonical
// bytes, relative to dir).
func checkRunFolder(id, dir, file string, want []byte, overwrite bool) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) || (err == nil && len(entries) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("save node %q: %w", id, err)
	}
	if overwrite {
		return nil
	}
	recPath := filepath.Join(dir, filepath.FromSlash(graphRecord))
	rec, err := os.ReadFile(recPath)
	if err != nil && len(entries) == 1 && entries[0].Name() == ".dpsflow" {
		return nil // only a cache or lock, no results
	}
	if err != nil {
		// A folder from before records: its run.yaml is the record. FILE itself as that
		// run.yaml cannot be told from an edit of it, so it is accepted.
		recPath = filepath.Join(dir, "run.yaml")
		if recPath == file {
			return nil
		}
		if rec, err = os.ReadFile(recPath); err != nil {
			return usageError{fmt.Errorf("save node %q: %s exists and holds other files (no run.yaml); give --out NEWDIR for a new or empty folder", id, dir)}
		}
	}
	og, err := dag.Parse(rec, recPath)
	if err == nil {
		err = pipeline.ResolveSaveDirs(og, dir)
	}
	var have []byte
	if err == nil {
		have, err = canonicalGraph(og, dir)
	}
	if err == nil && bytes.Equal(have, want) {
		return nil
	}
	what := fmt.Sprintf("it could not be read: %v", err)
	if err == nil {
		a, errA := dag.Parse(have, recPath)
		b, errB := dag.Parse(want, file)
		if errA == nil && errB == nil {
			what = "nodes that differ: " + strings.Join(differingNodes(a, b), ", ")
		} else {
			what = "it differs"
		}
	}
	return usageError{fmt.Errorf("save node %q would overwrite %s, which holds the results of another graph (%s; %s); "+
		"give --out NEWDIR to write this graph's results to a new folder (the cache is still reused), or --overwrite to replace them",
		id, dir, recPath, what)}
}

// differingNodes lists the ids of nodes that are in only one graph or differ.
func differingNodes(a, b *dag.Graph) []string {
	one := func(g *dag.Graph, id string) []byte {
		n := g.Node(id)
		if n == nil {
			return nil
		}
		data, _ := (&dag.Graph{Nodes: []*dag.Node{n}}).Marshal()
		return data
	}
	seen := map[string]bool{}
	var out []string
	for _, g := range []*dag.Graph{a, b} {
		for _, n := range g.Nodes {
			if n == nil || seen[n.ID] {
				continue
			}
			seen[n.ID] = true
			if !bytes.Equal(one(a, n.ID), one(b, n.ID)) {
				out = append(out, n.ID)
			}
		}
	}
	if a.Seed != b.Seed {
		out = append(out, fmt.Sprintf("graph seed %d vs %d", a.Seed, b.Seed))
	}
	if len(out) == 0 {
		out = append(out, "graph settings")
	}
	return out
}
