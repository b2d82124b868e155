package kernel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstall(t *testing.T) {
	prefix := t.TempDir()
	dir, err := Install(InstallOptions{Prefix: prefix, Executable: "/opt/bin/dpsflow"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(prefix, "share", "jupyter", "kernels", DefaultKernelName); dir != want {
		t.Errorf("installed in %s, want %s", dir, want)
	}
	var spec KernelSpec
	raw, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	want := []string{"/opt/bin/dpsflow", "kernel", "--connection-file", "{connection_file}"}
	for i := range want {
		if i >= len(spec.Argv) || spec.Argv[i] != want[i] {
			t.Fatalf("argv %v, want %v", spec.Argv, want)
		}
	}
	if spec.DisplayName != "Go (dpsflow)" || spec.Language != "go" || spec.InterruptMode != "message" {
		t.Errorf("spec %+v", spec)
	}
	for _, logo := range []string{"logo-32x32.png", "logo-64x64.png"} {
		if _, err := os.Stat(filepath.Join(dir, logo)); err != nil {
			t.Error(err)
		}
	}

	// --user honours JUPYTER_DATA_DIR; the executable defaults to this one, made absolute.
	data := t.TempDir()
	t.Setenv("JUPYTER_DATA_DIR", data)
	dir, err = Install(InstallOptions{Name: "go-test"})
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(data, "kernels", "go-test") {
		t.Errorf("installed in %s", dir)
	}
	if _, err := Install(InstallOptions{Name: "../escape"}); err == nil {
		t.Error("a name with a path was accepted")
	}

	// --max-memory goes into the kernel's command line, checked first.
	dir, err = Install(InstallOptions{Prefix: prefix, Executable: "/opt/bin/dpsflow", MaxMemory: "4GiB"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(dir, "kernel.json"))
	spec = KernelSpec{}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(spec.Argv, " "); got != "/opt/bin/dpsflow kernel --connection-file {connection_file} --max-memory 4GiB" {
		t.Errorf("argv with --max-memory: %s", got)
	}
	if _, err := Install(InstallOptions{Prefix: prefix, MaxMemory: "lots"}); err == nil || !strings.Contains(err.Error(), "--max-memory") {
		t.Errorf("--max-memory lots: %v", err)
	}
}
