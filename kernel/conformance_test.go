package kernel

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const python = "/usr/bin/python3"

// TestConformance runs the jupyter_kernel_test suite (testdata/test_kernel.py) against
// the kernel built as a binary and registered with Jupyter through `kernel install`,
// in a private Jupyter data directory.
func TestConformance(t *testing.T) {
	if out, err := exec.Command(python, "-c", "import jupyter_kernel_test, jupyter_client, zmq").CombinedOutput(); err != nil {
		t.Fatalf("the conformance suite needs Debian's Jupyter and jupyter_kernel_test:\n"+
			"  apt-get update && apt-get install -y --no-install-recommends jupyter-client python3-zmq python3-jupyter-kernel-test\n%s", out)
	}
	tmp := t.TempDir()
	bin := buildKernelBinary(t, tmp)

	data := filepath.Join(tmp, "data")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"JUPYTER_DATA_DIR=" + data,
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(tmp, "runtime"),
		"JUPYTER_CONFIG_DIR=" + filepath.Join(tmp, "config"),
		"IPYTHONDIR=" + filepath.Join(tmp, "ipython"),
		"PYTHONDONTWRITEBYTECODE=1",
		"DPSFLOW_KERNEL_NAME=dpsflow-go-test",
	}
	for _, k := range []string{"GOCACHE", "GOPATH", "GOMODCACHE", "GOTOOLCHAIN", "DPSFLOW_BACKEND"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}

	install := exec.Command(bin, "kernel", "install", "--user", "--name", "dpsflow-go-test")
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("kernel install: %v\n%s", err, out)
	}
	var spec KernelSpec
	raw, err := os.ReadFile(filepath.Join(data, "kernels", "dpsflow-go-test", "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Argv[0] != bin || strings.Join(spec.Argv[1:], " ") != "kernel --connection-file {connection_file}" ||
		spec.Language != "go" || spec.InterruptMode != "message" || spec.DisplayName != "Go (dpsflow)" {
		t.Errorf("kernel.json: %s", raw)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "testdata/test_kernel.py")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	results := regexp.MustCompile(`(?m)^(test_\w+) \([^)]*\)[^\n]*? \.\.\. (\w+.*)$`).FindAllStringSubmatch(string(out), -1)
	for _, r := range results {
		t.Logf("%-40s %s", r[1], r[2])
	}
	if err != nil || len(results) == 0 {
		t.Fatalf("conformance suite failed (%v):\n%s", err, out)
	}
}

// buildKernelBinary builds the dpsflow CLI, whose kernel command is under test.
func buildKernelBinary(t *testing.T, dir string) string {
	bin := filepath.Join(dir, "dpsflow")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/dpsflow")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/dpsflow: %v\n%s", err, out)
	}
	return bin
}
