package pipeline

import (
	"path/filepath"
	"testing"

	"github.com/dpsflow/dpsflow/dag"
)

func TestSaveDirsAreRelativeToTheYAML(t *testing.T) {
	root := t.TempDir()
	run := filepath.Join(root, "run1")
	g := &dag.Graph{}
	g.Add("save", "save", map[string]any{"dir": run}, nil)
	g.Add("sub", "save", map[string]any{"dir": filepath.Join(run, "more")}, nil)
	g.Add("elsewhere", "save", map[string]any{"dir": filepath.Join(root, "other")}, nil)
	g.Add("truth", "images", map[string]any{"path": filepath.Join(root, "pics")}, nil)

	RelativizeSaveDirs(g, run)
	for id, want := range map[string]string{"save": ".", "sub": "more", "elsewhere": filepath.Join(root, "other")} {
		if got := g.Node(id).Params["dir"]; got != want {
			t.Errorf("relativized %s: dir %v, want %v", id, got, want)
		}
	}
	if got := g.Node("truth").Params["path"]; got != filepath.Join(root, "pics") {
		t.Errorf("an input path changed: %v", got)
	}
	// Read back from a moved folder: the dirs follow the file.
	moved := filepath.Join(root, "moved")
	if err := ResolveSaveDirs(g, moved); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"save": moved, "sub": filepath.Join(moved, "more"), "elsewhere": filepath.Join(root, "other")}
	for id, dir := range SaveDirs(g) {
		if dir != want[id] {
			t.Errorf("resolved %s: dir %v, want %v", id, dir, want[id])
		}
	}
}
