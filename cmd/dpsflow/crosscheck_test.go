package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/npy"
)

// The cross-check runs an independent PyTorch implementation of guided-diffusion's
// UNetModel and of one reference DPS step (testdata/adm/reference.py) on random weights
// (every weight random, the zero_module layers included), then the same computation
// through `dpsflow model eval` and `dpsflow step`, and compares the outputs. Nothing
// binary is committed: the script writes the checkpoint, the YAML configs and the arrays
// into a temporary folder on every run.
//
// Tolerances, float32 on both sides, measured on the embedded backend:
//   - eval: max|Go − PyTorch| ≤ 1e-5·(1 + max|PyTorch|). Measured 1.9e-6 … 4.9e-6 for
//     outputs up to ~1.6 (relative 0.8e-6 … 1.9e-6), independent of t; PyTorch's own
//     float32 error against a float64 run of the same script (reference.py --f64) is
//     1.0e-6 … 2.3e-6, and Go's against that float64 run 1.2e-6 … 4.0e-6.
//   - step: x_{t−1} = x' − scale·∇_{x_t}‖y − A(x̂0)‖ is checked whole and in its two parts.
//     x' (the ancestral step; Go's from a second `dpsflow step` with method "vanilla") and
//     x_{t−1} use the eval bound. Measured 1.2e-7 (one float32 ulp) at t = 60 and 120, but
//     1.3e-6 at t = 0: the sampler forms √(1−ᾱ_t) in float32 from a float32 ᾱ_t
//     (tweedie.Estimate), 8e-5 relative error at t = 0 where the reference gathers float64
//     tables (sqrt_recipm1_alphas_cumprod) rounded once. Inside the bound, but ten times
//     PyTorch's own 1.2e-7; x' could be held to 5e-7·(1 + max|ref|) once that is fixed.
//     The guidance term scale·∇ (0.013 … 0.05 here, small next to x' ≈ 1) gets its own
//     bound, 1e-4·max|scale·∇|: measured ≤ 7e-6 relative (the float32 output rounding). A
//     squared norm, a per-sample norm, a missing clip or replicate padding changes it by
//     0.3 … 1 relative.
const (
	referenceScript = "../../testdata/adm/reference.py"
	python          = "/usr/bin/python3" // Debian's python3-torch lives here, not in pyenv
	evalTol         = 1e-5               // relative to 1 + max|ref|, for eval, x' and x_{t−1}
	guidanceTol     = 1e-4               // relative to max|scale·∇|
)

var pythonCheck struct {
	once sync.Once
	err  error
}

// requireTorch fails (never skips) when the reference cannot run: CI installs python3-torch.
func requireTorch(t *testing.T) {
	t.Helper()
	pythonCheck.once.Do(func() {
		if _, err := os.Stat(python); err != nil {
			pythonCheck.err = fmt.Errorf("%s not found (%v): the PyTorch cross-check needs Debian's python3 with python3-torch and python3-numpy (apt-get install python3-torch)", python, err)
			return
		}
		out, err := exec.Command(python, "-c", "import torch, numpy").CombinedOutput()
		if err != nil {
			pythonCheck.err = fmt.Errorf("%s cannot import torch and numpy (%v): install python3-torch and python3-numpy (apt-get install python3-torch)\n%s", python, err, out)
		}
	})
	if pythonCheck.err != nil {
		t.Fatal(pythonCheck.err)
	}
}

// crossCase is one reference config of reference.py and what it must exercise.
type crossCase struct {
	config   string
	operator string // "" for eval only
}

func TestCrossCheckAgainstPyTorch(t *testing.T) {
	requireTorch(t)
	cases := []crossCase{
		{"resnet", ""},                      // 2 res-blocks a level, conv resampling, no scale-shift, 3 outputs
		{"legacy_inpaint", "inpainting"},    // legacy attention (num_heads), res-block up/down, learned sigma
		{"new_blur", "gaussian_blur"},       // new attention order (num_head_channels), conv resampling
		{"legacy_blur_t0", "gaussian_blur"}, // legacy + num_head_channels, up/down, no scale-shift, t = 0, batch 2
		{"new_default_mult", ""},            // channel_mult "" (64 px default 1,2,3,4), new order, num_heads_upsample ≠ num_heads, up/down
	}
	for _, c := range cases {
		t.Run(c.config, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cmd := exec.Command(python, referenceScript, dir, c.config)
			cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "PYTHONDONTWRITEBYTECODE=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", referenceScript, c.config, err, out)
			}
			var meta struct {
				Operator string  `json:"operator"`
				StepT    int     `json:"step_t"`
				Scale    float64 `json:"scale"`
			}
			readJSON(t, filepath.Join(dir, "meta.json"), &meta)
			if meta.Operator != c.operator {
				t.Fatalf("reference.py %s ran operator %q, the test expects %q", c.config, meta.Operator, c.operator)
			}
			p := func(name string) string { return filepath.Join(dir, name) }
			model := []string{"--model-config", p("model_config.yaml"), "--checkpoint", p("model.pt")}

			mustRun(t, append([]string{"model", "eval", "--x", p("x.npy"), "--t", p("t.npy"), "--out", p("eval_go.npy")}, model...)...)
			ref, got := readFloats(t, p("eval_out.npy")), readFloats(t, p("eval_go.npy"))
			d, m := compare(t, "eval", ref, got)
			if bound := evalTol * (1 + m); d > bound {
				t.Errorf("model eval: max|Go − PyTorch| = %.3g > %.3g (max|ref| %.3g)", d, bound, m)
			}
			t.Logf("eval: max|diff| %.3g, max|ref| %.3g, relative %.3g", d, m, d/(1+m))
			if c.operator == "" {
				return
			}

			step := func(task, out string) {
				args := []string{"step", "--task-config", task, "--xt", p("xt.npy"), "--t", strconv.Itoa(meta.StepT),
					"--y", p("y.npy"), "--noise", p("z.npy"), "--out", out}
				if c.operator == "inpainting" {
					args = append(args, "--mask", p("mask.npy"))
				}
				mustRun(t, append(args, model...)...)
			}
			step(p("task.yaml"), p("step_go.npy"))
			// The same step without guidance: method "vanilla" returns x' as it is.
			task, err := os.ReadFile(p("task.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			vanilla := strings.Replace(string(task), "method: ps", "method: vanilla", 1)
			if vanilla == string(task) {
				t.Fatal("task.yaml has no \"method: ps\"")
			}
			if err := os.WriteFile(p("vanilla.yaml"), []byte(vanilla), 0o644); err != nil {
				t.Fatal(err)
			}
			step(p("vanilla.yaml"), p("prior_go.npy"))

			refOut, gotOut := readFloats(t, p("step_out.npy")), readFloats(t, p("step_go.npy"))
			refPrior, gotPrior := readFloats(t, p("step_prior.npy")), readFloats(t, p("prior_go.npy"))
			d, m = compare(t, "step", refOut, gotOut)
			dp, mp := compare(t, "x'", refPrior, gotPrior)
			refG, gotG := make([]float64, len(refOut)), make([]float64, len(refOut))
			for i := range refOut {
				refG[i], gotG[i] = refOut[i]-refPrior[i], gotOut[i]-gotPrior[i]
			}
			dg, mg := compare(t, "guidance term", refG, gotG)
			if mg < 1e-3 {
				t.Fatalf("the reference guidance term is only %.3g: the step would not test the gradient", mg)
			}
			if bound := evalTol * (1 + m); d > bound {
				t.Errorf("step: max|Go − PyTorch| of x_{t−1} = %.3g > %.3g (max|ref| %.3g)", d, bound, m)
			}
			if bound := evalTol * (1 + mp); dp > bound {
				t.Errorf("step: max|Go − PyTorch| of x' = %.3g > %.3g (max|ref| %.3g)", dp, bound, mp)
			}
			if bound := guidanceTol * mg; dg > bound {
				t.Errorf("step: max|Go − PyTorch| of the guidance term scale·∇ = %.3g > %.3g (max|ref| %.3g)", dg, bound, mg)
			}
			t.Logf("step t=%d %s: x_{t−1} max|diff| %.3g (max|ref| %.3g); x' %.3g; guidance term %.3g of max %.3g (relative %.3g)",
				meta.StepT, c.operator, d, m, dp, dg, mg, dg/mg)
		})
	}
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	out, code, err := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("dpsflow %s: exit %d: %v\n%s", strings.Join(args[:2], " "), code, err, out)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readFloats(t *testing.T, path string) []float64 {
	t.Helper()
	a, err := npy.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return floats(a)
}

// compare returns max|ref − got| and max|ref|; lengths and finiteness must agree.
func compare(t *testing.T, what string, ref, got []float64) (maxDiff, maxRef float64) {
	t.Helper()
	if len(ref) != len(got) {
		t.Fatalf("%s: %d values from Go, %d from PyTorch", what, len(got), len(ref))
	}
	for i := range ref {
		if math.IsNaN(got[i]) || math.IsInf(got[i], 0) {
			t.Fatalf("%s: Go value %d is %v", what, i, got[i])
		}
		maxDiff = math.Max(maxDiff, math.Abs(ref[i]-got[i]))
		maxRef = math.Max(maxRef, math.Abs(ref[i]))
	}
	return maxDiff, maxRef
}
