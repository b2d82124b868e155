package pipeline

import (
	"path/filepath"
	"strings"

	"github.com/dpsflow/dpsflow/dag"
)

// A run.yaml names the folder its save node writes relative to the file's own folder
// (usually "."), so a run folder can be moved or copied and still rerun into itself.
// RelativizeSaveDirs makes g so before it is written to a file in yamlDir; ResolveSaveDirs
// undoes it after the file is read. Graphs written before this rule name the folder
// absolutely, and ResolveSaveDirs leaves such paths alone.

// RelativizeSaveDirs rewrites each save node's absolute dir inside yamlDir (or equal to
// it) as a path relative to yamlDir. Dirs outside yamlDir stay absolute: moving the file
// must not move where such a graph writes.
func RelativizeSaveDirs(g *dag.Graph, yamlDir string) {
	base, err := filepath.Abs(yamlDir)
	if err != nil {
		return
	}
	for _, n := range g.Nodes {
		dir, ok := saveDir(n)
		if !ok || !filepath.IsAbs(dir) {
			continue
		}
		rel, err := filepath.Rel(base, dir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		n.Params["dir"] = filepath.ToSlash(rel)
	}
}

// ResolveSaveDirs makes each save node's relative dir absolute, relative to yamlDir (the
// folder of the file g was read from).
func ResolveSaveDirs(g *dag.Graph, yamlDir string) error {
	base, err := filepath.Abs(yamlDir)
	if err != nil {
		return err
	}
	for _, n := range g.Nodes {
		if dir, ok := saveDir(n); ok && !filepath.IsAbs(dir) {
			n.Params["dir"] = filepath.Join(base, filepath.FromSlash(dir))
		}
	}
	return nil
}

// SaveDirs are the (resolved) folders g's save nodes write, by node id.
func SaveDirs(g *dag.Graph) map[string]string {
	out := map[string]string{}
	for _, n := range g.Nodes {
		if dir, ok := saveDir(n); ok {
			out[n.ID] = dir
		}
	}
	return out
}

func saveDir(n *dag.Node) (string, bool) {
	if n == nil || n.Kind != "save" {
		return "", false
	}
	dir, ok := n.Params["dir"].(string)
	return dir, ok && dir != ""
}
