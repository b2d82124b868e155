package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/kernel"
)

// writeNotebook writes an nbformat 4 notebook of the Go kernel; cells starting with "#md "
// are markdown.
func writeNotebook(t *testing.T, path string, cells ...string) {
	t.Helper()
	var list []map[string]any
	for _, src := range cells {
		c := map[string]any{"cell_type": "code", "metadata": map[string]any{}, "source": src, "outputs": []any{}, "execution_count": nil}
		if md, ok := strings.CutPrefix(src, "#md "); ok {
			c = map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": md}
		}
		list = append(list, c)
	}
	data, err := json.MarshalIndent(map[string]any{
		"cells": list, "nbformat": 4, "nbformat_minor": 5,
		"metadata": map[string]any{
			"kernelspec":    map[string]any{"name": kernel.DefaultKernelName, "display_name": "Go (dpsflow)", "language": "go"},
			"language_info": map[string]any{"name": "go"},
		},
	}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// export runs 'dag export' (the command alone, as 'dpsflow dag export' runs it).
func export(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newDAGExportCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

// A notebook becomes one go-cell node per code cell, numbered by notebook position, with
// the names it reads as inputs; the file is written atomically and loads back.
func TestDAGExportWritesTheCellGraph(t *testing.T) {
	dir := t.TempDir()
	nbPath, out := filepath.Join(dir, "nb.ipynb"), filepath.Join(dir, "run.yaml")
	writeNotebook(t, nbPath, "#md # title", "a := 2", "", "b := a * 3", "#md text", "fmt.Println(a + b)")
	msg, err := export(t, nbPath, "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	g, err := dag.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range g.Nodes {
		ids = append(ids, n.ID)
		if n.Kind != kernel.CellKind {
			t.Errorf("node %s is a %s", n.ID, n.Kind)
		}
	}
	if !slices.Equal(ids, []string{"c2", "c4", "c6"}) || g.Name != "nb" {
		t.Errorf("graph %q, nodes %v; want nb with c2 c4 c6 (the code cells, empty ones left out)", g.Name, ids)
	}
	if in := g.Node("c6").Inputs; in["a"] != "c2.a" || in["b"] != "c4.b" {
		t.Errorf("c6 inputs %v", in)
	}
	if src := g.Node("c4").Params["source"]; src != "b := a * 3" {
		t.Errorf("c4 source %q", src)
	}
	reg, err := registryFor(g, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Validate(g); err != nil {
		t.Errorf("the exported graph does not validate: %v", err)
	}
	if _, ok := reg.Kind("sample"); !ok {
		t.Error("registryFor lacks the DPS kinds")
	}
}

// Bad notebooks are refused with errors that name the file and the cell.
func TestDAGExportRefusesBadNotebooks(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cyc := filepath.Join(dir, "cycle.ipynb")
	writeNotebook(t, cyc, "#md cells that need each other", "x := 1", "a := b + x", "b := a * 2")
	syntax := filepath.Join(dir, "syntax.ipynb")
	writeNotebook(t, syntax, "#md intro", "x := 1", "y := (x")
	for _, c := range []struct {
		path string
		want []string
	}{
		{write("junk.ipynb", "{not json"), []string{"junk.ipynb", "not a Jupyter notebook"}},
		{write("old.ipynb", `{"nbformat": 3, "worksheets": []}`), []string{"old.ipynb", "nbformat 3"}},
		{write("py.ipynb", `{"nbformat": 4, "metadata": {"kernelspec": {"language": "python"}}, "cells": []}`), []string{"py.ipynb", "python notebook"}},
		{write("src.ipynb", `{"nbformat": 4, "cells": [{"cell_type": "markdown", "source": ""}, {"cell_type": "code", "source": 7}]}`), []string{"src.ipynb", "cell 2", "source"}},
		{write("empty.ipynb", `{"nbformat": 4, "cells": [{"cell_type": "markdown", "source": "# only text"}]}`), []string{"empty.ipynb", "no code cells"}},
		{syntax, []string{"syntax.ipynb", "cell 3"}},
		{cyc, []string{"cycle.ipynb", "cycle", "cell 4 reads a from cell 3", "cell 3 reads b from cell 4"}},
	} {
		out := filepath.Join(dir, "out.yaml")
		msg, err := export(t, c.path, "--out", out)
		if err == nil {
			t.Errorf("%s: exported (%s)", filepath.Base(c.path), msg)
			continue
		}
		if code := exitCode(err); code != 2 {
			t.Errorf("%s: exit code %d, want 2 (bad input)", filepath.Base(c.path), code)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", filepath.Base(c.path), err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: wrote %s anyway", filepath.Base(c.path), out)
		}
	}
}

// checksumNotebook computes a tensor with a compiled graph and a short DPS run, printing
// checksums of both and writing the reconstruction's bytes to $DPSFLOW_TEST_OUT.
var checksumNotebook = []string{
	"#md A notebook whose results can be compared across runs.",
	`import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/task"
	"github.com/gomlx/gomlx/pkg/core/graph"
)`,
	`func digest(v []float32) string {
	buf := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(f))
	}
	return fmt.Sprintf("%x", sha256.Sum256(buf))[:16]
}`,
	"scale := 3.0",
	"x := nb.Tensor([]float32{0.5, -1, 2, 0.25}, 2, 2)",
	"y := nb.Run(func(v *graph.Node) *graph.Node { return graph.MulScalar(graph.Tanh(v), scale) }, x)",
	"fmt.Println(\"checksum y\", digest(nb.Floats(y)))",
	`box, err := task.Preset("inpaint-box")
if err != nil {
	panic(err)
}
run := nb.Execute(pipeline.RunSpec{Name: "inpaint-box", Task: box, Builtin: pipeline.BuiltinMNIST, N: 1, Steps: 3, Batch: 1, Seed: 7, Backend: "embedded"})
fmt.Println("checksum recon", digest(run.Recon.Pixels))`,
	`raw := make([]byte, 4*len(run.Recon.Pixels))
for i, f := range run.Recon.Pixels {
	binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
}
if err := os.WriteFile(os.Getenv("DPSFLOW_TEST_OUT"), raw, 0o644); err != nil {
	panic(err)
}
len(raw)`,
}

var checksumLine = regexp.MustCompile(`(?m)^checksum \w+ [0-9a-f]{16}$`)

// A notebook exported with 'dag export' and run as a DAG computes what Jupyter computes
// when it executes the notebook with our kernel (nbconvert): the same checksums of a
// compiled graph's output and of a DPS reconstruction, and the same bytes in the file a
// cell writes. Each run has its own result cache, so neither reads the other's results.
func TestExportedNotebookRunsLikeJupyter(t *testing.T) {
	requireJupyter(t)
	dir := t.TempDir()
	nbPath, yamlPath := filepath.Join(dir, "checks.ipynb"), filepath.Join(dir, "run.yaml")
	writeNotebook(t, nbPath, checksumNotebook...)
	if msg, err := export(t, nbPath, "--out", yamlPath); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}

	// The DAG run, in this process.
	t.Setenv("DPSFLOW_CACHE", filepath.Join(dir, "cache-dag"))
	t.Setenv("DPSFLOW_TEST_OUT", filepath.Join(dir, "dag.bin"))
	dagOut := runExported(t, yamlPath)

	// Jupyter, with the kernel binary built from this tree.
	env := jupyterEnv(t, dir)
	env = append(env, "DPSFLOW_CACHE="+filepath.Join(dir, "cache-jupyter"), "DPSFLOW_TEST_OUT="+filepath.Join(dir, "jupyter.bin"))
	executed := executeNotebook(t, env, nbPath, filepath.Join(dir, "executed"))
	var jupyterOut strings.Builder
	for _, c := range executed.Cells {
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				t.Fatalf("nbconvert: cell error %s: %s", o.EName, o.EValue)
			}
			jupyterOut.WriteString(strings.Join(o.Text, ""))
		}
	}

	want, got := checksumLine.FindAllString(jupyterOut.String(), -1), checksumLine.FindAllString(dagOut, -1)
	slices.Sort(want)
	slices.Sort(got)
	t.Logf("jupyter and dag run print %q", got)
	if len(want) != 2 || !slices.Equal(got, want) {
		t.Errorf("checksums differ:\n  jupyter: %q\n  dag run: %q\n--- dag run output:\n%s", want, got, dagOut)
	}
	a, errA := os.ReadFile(filepath.Join(dir, "dag.bin"))
	b, errB := os.ReadFile(filepath.Join(dir, "jupyter.bin"))
	if errA != nil || errB != nil || len(a) != 4*32*32 || !bytes.Equal(a, b) {
		t.Errorf("written files: dag run %d bytes (%v), jupyter %d bytes (%v), equal %v", len(a), errA, len(b), errB, bytes.Equal(a, b))
	}
	if !strings.Contains(dagOut, "4096\n") {
		t.Errorf("the dag run does not show the last cell's value (4096):\n%s", dagOut)
	}
}

// runExported runs a DAG file with 'dpsflow dag run' and returns what the cells printed.
func runExported(t *testing.T, path string) string {
	t.Helper()
	out, code, err := runCLI(t, "dag", "run", path)
	if code != 0 {
		t.Fatalf("dag run: exit %d: %v\n%s", code, err, out)
	}
	return out
}

// requireJupyter fails (never skips) when Debian's Jupyter is missing.
func requireJupyter(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import nbconvert, nbclient, jupyter_client, zmq").CombinedOutput(); err != nil {
		t.Fatalf("this test executes notebooks with Debian's Jupyter, which is missing:\n"+
			"  apt-get update && apt-get install -y --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client python3-zmq\n%s", out)
	}
}

// jupyterEnv builds the dpsflow binary, installs its kernel spec into a private Jupyter
// data folder under dir and returns the environment to run Jupyter with.
func jupyterEnv(t *testing.T, dir string) []string {
	t.Helper()
	bin := filepath.Join(dir, "dpsflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dpsflow: %v\n%s", err, out)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8",
		"JUPYTER_DATA_DIR=" + filepath.Join(dir, "jupyter-data"),
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(dir, "jupyter-runtime"),
		"JUPYTER_CONFIG_DIR=" + filepath.Join(dir, "jupyter-config"),
		"IPYTHONDIR=" + filepath.Join(dir, "ipython"),
		"PYTHONDONTWRITEBYTECODE=1", "DPSFLOW_BACKEND=embedded",
	}
	for _, k := range []string{"HOME", "GOCACHE", "GOPATH", "GOMODCACHE", "GOTOOLCHAIN", "GOMLX_NO_AUTO_INSTALL"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	install := exec.Command(bin, "kernel", "install", "--user")
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("kernel install: %v\n%s", err, out)
	}
	return env
}

// executedNotebook is what the tests read of a notebook nbconvert executed.
type executedNotebook struct {
	Cells []struct {
		CellType string `json:"cell_type"`
		Outputs  []struct {
			OutputType string         `json:"output_type"`
			Text       jsonLines      `json:"text"`
			Data       map[string]any `json:"data"`
			EName      string         `json:"ename"`
			EValue     string         `json:"evalue"`
		} `json:"outputs"`
	} `json:"cells"`
}

// jsonLines is a notebook string field: a string or a list of strings.
type jsonLines []string

func (l *jsonLines) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = []string{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

// executeNotebook runs nbconvert --execute on path with env, writing into outDir.
func executeNotebook(t *testing.T, env []string, path, outDir string) *executedNotebook {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/jupyter", "nbconvert", "--to", "notebook", "--execute",
		"--ExecutePreprocessor.timeout=600", "--ExecutePreprocessor.kernel_name="+kernel.DefaultKernelName, "--output-dir", outDir, path)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("jupyter nbconvert --execute %s: %v\n%s", filepath.Base(path), err, out)
	}
	data, err := os.ReadFile(filepath.Join(outDir, filepath.Base(path)))
	if err != nil {
		t.Fatal(err)
	}
	var nb executedNotebook
	if err := json.Unmarshal(data, &nb); err != nil {
		t.Fatal(err)
	}
	return &nb
}
