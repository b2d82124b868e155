package notebooks

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// maxNotebookSize bounds a committed notebook (the inline ECharts script alone is ~1 MB).
const maxNotebookSize = 1_600_000

// notebook is what the test reads of an .ipynb file.
type notebook struct {
	Metadata struct {
		Kernelspec struct {
			Name string `json:"name"`
		} `json:"kernelspec"`
	} `json:"metadata"`
	Cells []struct {
		CellType string `json:"cell_type"`
		Outputs  []struct {
			OutputType string         `json:"output_type"`
			Name       string         `json:"name"`
			Data       map[string]any `json:"data"`
			EName      string         `json:"ename"`
			EValue     string         `json:"evalue"`
		} `json:"outputs"`
	} `json:"cells"`
}

func readNotebook(t *testing.T, path string) *notebook {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nb notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &nb
}

// mimeTypes lists the output types of a code cell: "stream", "error", or the MIME types
// of displays and results.
func (nb *notebook) mimeTypes(cell int) []string {
	var out []string
	for _, o := range nb.Cells[cell].Outputs {
		switch o.OutputType {
		case "stream", "error":
			out = append(out, o.OutputType)
		default:
			for mime := range o.Data {
				out = append(out, mime)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestNotebooksExecute executes every notebook of this folder with Jupyter (nbconvert)
// and the Go kernel built from this tree, installed into a private prefix, with an empty
// result cache shared by the notebooks of the run. It fails on an error output, on a
// code cell that no longer produces an output type its committed version shows (an image
// that became text, say), and on a notebook without any PNG figure; and it checks the
// committed notebooks: executed (with outputs), a markdown cell first, small enough.
func TestNotebooksExecute(t *testing.T) {
	const jupyter = "/usr/bin/jupyter"
	if out, err := exec.Command("/usr/bin/python3", "-c", "import nbconvert, nbclient, jupyter_client, zmq").CombinedOutput(); err != nil {
		t.Fatalf("executing the notebooks needs Debian's Jupyter, which is missing:\n"+
			"  apt-get update && apt-get install -y --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client python3-zmq\n%s", out)
	}
	if _, err := os.Stat(jupyter); err != nil {
		t.Fatalf("%v: install Jupyter with apt-get install -y --no-install-recommends jupyter-nbconvert jupyter-notebook", err)
	}
	paths, err := filepath.Glob("*.ipynb")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no notebooks here (%v)", err)
	}
	tmp := t.TempDir()

	bin := filepath.Join(tmp, "dpsflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/dpsflow")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dpsflow: %v\n%s", err, out)
	}
	// The kernel finds the MNIST digits in the module cache: name it, for runs without HOME.
	modCache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	prefix := filepath.Join(tmp, "prefix")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"JUPYTER_PATH=" + filepath.Join(prefix, "share", "jupyter"),
		"JUPYTER_DATA_DIR=" + filepath.Join(tmp, "data"),
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(tmp, "runtime"),
		"JUPYTER_CONFIG_DIR=" + filepath.Join(tmp, "config"),
		"IPYTHONDIR=" + filepath.Join(tmp, "ipython"),
		"PYTHONDONTWRITEBYTECODE=1",
		"GOMODCACHE=" + strings.TrimSpace(string(modCache)),
		"DPSFLOW_CACHE=" + filepath.Join(tmp, "cache"),
	}
	for _, k := range []string{"HOME", "GOCACHE", "GOPATH", "GOTOOLCHAIN", "GOMLX_NO_AUTO_INSTALL", "DPSFLOW_BACKEND"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	install := exec.Command(bin, "kernel", "install", "--prefix", prefix)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("dpsflow kernel install --prefix: %v\n%s", err, out)
	}

	// $DPSFLOW_NOTEBOOKS_OUT keeps the executed notebooks (to refresh the committed ones).
	outDir := os.Getenv("DPSFLOW_NOTEBOOKS_OUT")
	if outDir == "" {
		outDir = filepath.Join(tmp, "executed")
	}
	for _, path := range paths {
		committed := readNotebook(t, path)
		if info, err := os.Stat(path); err == nil && info.Size() > maxNotebookSize {
			t.Errorf("%s: %d bytes committed, want at most %d", path, info.Size(), maxNotebookSize)
		}
		if len(committed.Cells) == 0 || committed.Cells[0].CellType != "markdown" {
			t.Errorf("%s: the first cell should be markdown saying what the notebook shows", path)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		start := time.Now()
		cmd := exec.CommandContext(ctx, jupyter, "nbconvert", "--to", "notebook", "--execute",
			"--ExecutePreprocessor.timeout=600", "--output-dir", outDir, path)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("jupyter nbconvert --execute %s: %v\n%s", path, err, out)
			continue
		}
		t.Logf("%-20s executed in %.0f s", path, time.Since(start).Seconds())

		executed := readNotebook(t, filepath.Join(outDir, filepath.Base(path)))
		if len(executed.Cells) != len(committed.Cells) {
			t.Errorf("%s: %d cells executed, %d committed", path, len(executed.Cells), len(committed.Cells))
			continue
		}
		pngs, committedOutputs := 0, 0
		for i, c := range executed.Cells {
			for _, o := range c.Outputs {
				if o.OutputType == "error" {
					t.Errorf("%s: cell %d: %s: %s", path, i+1, o.EName, o.EValue)
				}
				if o.OutputType == "stream" && o.Name == "stderr" {
					t.Logf("%s: cell %d wrote to stderr", path, i+1)
				}
				if _, ok := o.Data["image/png"]; ok {
					pngs++
				}
				if html, ok := o.Data["text/html"].(string); ok && strings.Contains(html, "<script src=\"http") {
					t.Errorf("%s: cell %d: HTML output loads a script from the network", path, i+1)
				}
			}
			committedOutputs += len(committed.Cells[i].Outputs)
			got := executed.mimeTypes(i)
			for _, want := range committed.mimeTypes(i) {
				if want != "error" && !slices.Contains(got, want) {
					t.Errorf("%s: cell %d: the committed notebook shows %s output, the executed one does not (it has %v)", path, i+1, want, got)
				}
			}
		}
		if pngs == 0 {
			t.Errorf("%s: no image/png output", path)
		}
		if committedOutputs == 0 {
			t.Errorf("%s: committed without outputs; commit the executed notebook (see the package doc)", path)
		}
		for i := range committed.Cells {
			if slices.Contains(committed.mimeTypes(i), "error") {
				t.Errorf("%s: cell %d: the committed notebook holds an error output", path, i+1)
			}
		}
	}
}
