package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command tree in-process and returns stdout and the exit code main would use.
func runCLI(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	return out.String(), code, err
}

func TestDoctorJSONPassesOnEmbedded(t *testing.T) {
	out, code, err := runCLI(t, "doctor", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	var report struct {
		Backend struct {
			Name    string   `json:"name"`
			Devices []string `json:"devices"`
		} `json:"backend"`
		Checks []struct {
			Name      string   `json:"name"`
			RelError  *float64 `json:"rel_error"`
			Tolerance float64  `json:"tolerance"`
			OK        bool     `json:"ok"`
		} `json:"checks"`
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	if !report.OK || report.Backend.Name != "embedded" || len(report.Backend.Devices) == 0 {
		t.Fatalf("unexpected report: %+v", report)
	}
	// Each block against finite differences in float64, then in float32 against float64.
	blocks := []string{"conv3x3 stride 1", "conv3x3 stride 2", "reflect pad + conv", "mean pool 2x2",
		"strided slice", "group norm", "softmax attention", "nearest upsample 2x"}
	if len(report.Checks) != 2*len(blocks) {
		t.Fatalf("%d checks, want %d", len(report.Checks), 2*len(blocks))
	}
	for i, c := range report.Checks {
		name, tol := blocks[i%len(blocks)], 1e-6
		if i >= len(blocks) {
			name, tol = name+", float32", 1e-5
		}
		if c.Name != name || !c.OK || c.RelError == nil || *c.RelError > tol || c.Tolerance != tol {
			t.Errorf("check %d: %+v, want %q passing within %g", i, c, name, tol)
		}
	}
}

func TestDoctorTextListsEveryCheck(t *testing.T) {
	out, code, err := runCLI(t, "doctor")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	if !strings.Contains(out, "all 16 checks passed") || strings.Count(out, "rel_error") != 16 {
		t.Fatalf("unexpected report:\n%s", out)
	}
}

func TestBadBackendSpecsExitTwoWithOneClearLine(t *testing.T) {
	notPlugin := filepath.Join(t.TempDir(), "plugin.so")
	if err := os.WriteFile(notPlugin, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"cuda-please":              `unknown backend "cuda-please"`,
		"xla:/no/such/plugin.so":   "does not exist",
		"xla:" + notPlugin:         "not an ELF shared object",
		"xla:relative/plugin.so":   "not absolute",
		"xla:no-such-plugin-name":  `PJRT plugin "no-such-plugin-name" not found`,
		"xla:cpu,no_such_option":   "no_such_option",
		"embedded,ops_parallel":    "deadlock",
		"embedded,parallelism=abc": "parallelism",
	}
	for spec, want := range cases {
		_, code, err := runCLI(t, "doctor", "--backend", spec)
		if code != 2 || err == nil {
			t.Errorf("%s: exit %d (%v), want 2", spec, code, err)
			continue
		}
		first, _, _ := strings.Cut(err.Error(), "\n")
		if !strings.Contains(first, want) || !strings.Contains(first, spec) && !strings.Contains(first, strings.Split(spec, ",")[0]) {
			t.Errorf("%s: first line %q does not name the spec and say %q", spec, first, want)
		}
	}
}

func TestUnknownFlagExitsTwo(t *testing.T) {
	if _, code, _ := runCLI(t, "doctor", "--no-such-flag"); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}

// TestBinaryExitCodes builds the real binary: exit codes are what scripts see.
func TestBinaryExitCodes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dpsflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "doctor", "--backend", "bogus")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("bogus backend: %v, want exit 2\n%s", err, out)
	}
	if lines := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; lines != 1 {
		t.Fatalf("bogus backend printed %d lines, want 1:\n%s", lines, out)
	}
	if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "doctor") {
		t.Fatalf("--help: %v\n%s", err, out)
	}
}
