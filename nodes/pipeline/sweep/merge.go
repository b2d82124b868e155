package sweep

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
)

// Merge runs the whole table DAG of the plan in dir on the shared cache — every sample
// node finds its batches done by the shards and assembles them; the metrics run here —
// and writes the table (table.md, table.csv, table.json, the grids) into dir. Every unit
// must be finished.
func Merge(ctx context.Context, dir string, reg *dag.Registry, events func(dag.Event)) (*pipeline.Table, error) {
	p, g, err := Open(dir, reg)
	if err != nil {
		return nil, err
	}
	missing := map[int]int{}
	left := 0
	for _, u := range p.Units {
		if _, err := ReadUnit(dir, u.ID); err != nil {
			missing[u.Shard]++
			left++
		}
	}
	if left > 0 {
		var shards []int
		for s := range missing {
			shards = append(shards, s)
		}
		sort.Ints(shards)
		var parts []string
		for _, s := range shards {
			parts = append(parts, fmt.Sprintf("shard %d: %d", s, missing[s]))
		}
		return nil, fmt.Errorf("%d of %d units of %s are not finished (%s); run those shards (see `dpsflow sweep status %s`), then merge again",
			left, len(p.Units), dir, strings.Join(parts, ", "), dir)
	}
	tp, err := tablePlan(dir, p, g)
	if err != nil {
		return nil, err
	}
	cache, err := dag.OpenCache(filepath.Join(dir, CacheDir))
	if err != nil {
		return nil, err
	}
	runner := &dag.Runner{Registry: reg, Cache: cache, Events: events}
	res, err := runner.Run(ctx, g)
	if res == nil || ctx.Err() != nil {
		return nil, err
	}
	table, err := pipeline.CollectTable(tp, res)
	if err != nil {
		return nil, err
	}
	if _, err := table.Write(dir); err != nil {
		return nil, err
	}
	return table, nil
}

// tablePlan is the table plan behind the DAG: the spec as planned (its relative paths
// anchored where the original was), planned again by this dpsflow, which must give the
// same DAG.
func tablePlan(dir string, p *Plan, g *dag.Graph) (*pipeline.TablePlan, error) {
	data, err := os.ReadFile(filepath.Join(dir, SpecFile))
	if err != nil {
		return nil, fmt.Errorf("sweep folder %s: %w", dir, err)
	}
	if sha(data) != p.SpecSHA256 {
		return nil, fmt.Errorf("%s was changed after planning; plan again into a new folder", filepath.Join(dir, SpecFile))
	}
	spec, err := pipeline.ParseTableSpec(data, p.Spec)
	if err != nil {
		return nil, err
	}
	tp, err := pipeline.PlanTable(spec)
	if err != nil {
		return nil, err
	}
	if d := graphDiff(g, tp.Graph); d != "" {
		return nil, fmt.Errorf("the spec of %s plans to another DAG here than when it was planned (%s); plan again into a new folder", dir, d)
	}
	tp.Graph = g
	return tp, nil
}
