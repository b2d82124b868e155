package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/models"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/task"
	"github.com/spf13/cobra"
)

// writeNPY writes a float32 .npy with the given shape and zero pixels.
func writeNPY(t *testing.T, path string, dims ...int) {
	t.Helper()
	shape := ""
	n := 1
	for _, d := range dims {
		shape += fmt.Sprintf("%d, ", d)
		n *= d
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", strings.TrimSuffix(shape, " "))
	header += strings.Repeat(" ", 63-(10+len(header))%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	must(t, binary.Write(&b, binary.LittleEndian, uint16(len(header))))
	b.WriteString(header)
	b.Write(make([]byte, 4*n))
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// sr4With is the sr4 preset's YAML with old replaced by new.
func sr4With(t *testing.T, old, new string) string {
	t.Helper()
	data, err := os.ReadFile("../../nodes/task/presets/sr4.yaml")
	must(t, err)
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("sr4.yaml has no %q", old)
	}
	return strings.Replace(string(data), old, new, 1)
}

// Each class of late failure of issue 18 is now refused before the run folder exists:
// exit 2, a message naming the one culprit, no folder.
func TestRunRefusesEachClassUpFront(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	shipped := string(models.MNISTConfig)
	ckpt := filepath.Join(dir, "model.safetensors")
	must(t, os.WriteFile(ckpt, models.MNISTWeights, 0o644))
	fakePlugin := write("pjrt_plugin_fake.so", "not an ELF file")
	zero := filepath.Join(dir, "zero.npy")
	writeNPY(t, zero, 0, 1, 32, 32)
	for _, c := range []struct {
		name string
		args []string
		want []string // all in the message
		not  []string // none in the message
	}{
		{"scale NaN", []string{"--scale", "NaN"}, []string{"--scale NaN", "finite"}, nil},
		{"scale +Inf", []string{"--scale", "+Inf"}, []string{"--scale +Inf"}, nil},
		{"scale -Inf", []string{"--scale", "-Inf"}, []string{"--scale -Inf"}, nil},
		{"scale negative", []string{"--scale", "-0.5"}, []string{"--scale -0.5"}, nil},
		{"scale zero", []string{"--scale", "0"}, []string{"--scale 0"}, nil},
		{"task yaml scale NaN", []string{"--task-config", write("nan.yaml", sr4With(t, "scale: 4.0", "scale: .nan"))}, []string{"nan.yaml", "conditioning.params.scale NaN"}, nil},
		{"task yaml scale Inf", []string{"--task-config", write("inf.yaml", sr4With(t, "scale: 4.0", "scale: .inf"))}, []string{"inf.yaml", "conditioning.params.scale +Inf"}, nil},
		{"task yaml scale negative", []string{"--task-config", write("neg.yaml", sr4With(t, "scale: 4.0", "scale: -3"))}, []string{"neg.yaml", "conditioning.params.scale -3"}, nil},
		{"steps above the schedule", []string{"--steps", "2000"}, []string{"--steps 2000", "above the schedule's 1000 steps"}, nil},
		{"unknown baseline", []string{"--baseline", "vanila"}, []string{"--baseline", `"vanila"`}, nil},
		{"missing plugin", []string{"--backend", "xla:no-such-plugin"}, []string{"--backend", `"xla:no-such-plugin"`, "not found"}, nil},
		{"fake plugin", []string{"--backend", "xla:" + fakePlugin}, []string{"--backend", "not an ELF shared object"}, nil},
		{"heads do not divide channels", []string{"--model-config", write("heads.yaml", strings.Replace(shipped, "num_heads: 2", "num_heads: 3", 1)), "--checkpoint", ckpt},
			[]string{"heads.yaml", "num_heads 3 does not divide", "64 channels"}, nil},
		{"channels not in 32 groups", []string{"--model-config", write("groups.yaml", strings.Replace(shipped, "num_channels: 32", "num_channels: 48", 1)), "--checkpoint", ckpt},
			[]string{"groups.yaml", "num_channels 48", "32 groups"}, nil},
		{"zero images", []string{"--images", zero}, []string{"zero.npy"}, nil},
		{"--n 0 names only --n", []string{"--n", "0"}, []string{"--n 0"}, []string{"--batch", "--steps", "--restarts"}},
		{"--batch 0 names only --batch", []string{"--batch", "0"}, []string{"--batch 0"}, []string{"--n ", "--steps", "--restarts"}},
		{"--steps 0", []string{"--steps", "0"}, []string{"--steps 0"}, []string{"--batch", "--restarts"}},
		{"--restarts 0", []string{"--restarts", "0"}, []string{"--restarts 0"}, []string{"--batch"}},
		{"--start negative", []string{"--start", "-1"}, []string{"--start -1"}, nil},
		{"flag value that is not a number", []string{"--steps", "abc"}, []string{`--steps "abc": not a whole number`}, []string{"strconv", "ParseInt"}},
		{"negative seed", []string{"--seed", "-1"}, []string{`--seed "-1": not a whole number ≥ 0`}, []string{"strconv"}},
		{"empty task file", []string{"--task-config", write("empty.yaml", "")}, []string{"empty.yaml", "the file is empty"}, []string{"EOF"}},
		{"model config line of a wrong type", []string{"--model-config", write("type.yaml", strings.Replace(shipped, "num_res_blocks: 1", "num_res_blocks: one", 1)), "--checkpoint", ckpt},
			[]string{"type.yaml line 5", `num_res_blocks: "one" is not a whole number`}, []string{"int", "!!str"}},
		{"model config line of an unknown key", []string{"--model-config", write("key.yaml", shipped+"\nwobble: 3\n"), "--checkpoint", ckpt},
			[]string{"key.yaml line " + fmt.Sprint(strings.Count(shipped+"\n", "\n")+1), `unknown key "wobble"`}, nil},
		{"task yaml in words", []string{"--task-config", write("words.yaml", sr4With(t, "sigma: 0.05", "sigma: lots"))}, []string{"words.yaml", "`lots` is not a number"}, []string{"float64", "!!str"}},
		{"task yaml that is a list", []string{"--task-config", write("list.yaml", "- a\n- b\n")}, []string{"list.yaml", "a list is not a map"}, []string{"task.Config", "!!seq"}},
		{"operator param in words", []string{"--task-config", write("op.yaml", sr4With(t, "scale_factor: 4", "scale_factor: {a: 1}"))}, []string{"op.yaml", "scale_factor"}, []string{"interface {}", "map[string]"}},
	} {
		out := filepath.Join(dir, "out-"+strings.NewReplacer(" ", "-", "/", "-").Replace(c.name))
		got, code, err := runCLI(t, append([]string{"run", "--out", out}, c.args...)...)
		if code != 2 || err == nil {
			t.Errorf("%s: exit %d (%v), want 2\n%s", c.name, code, err, got)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q names %q, which is fine", c.name, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the run folder was created", c.name)
		}
	}
}

// writeRunDAG writes the DAG file a small run would write, with edit applied to it.
func writeRunDAG(t *testing.T, dir string, edit func(g *dag.Graph)) string {
	t.Helper()
	tk, err := task.Preset("sr4")
	must(t, err)
	g, err := pipeline.RunGraph(pipeline.RunSpec{Name: "sr4", Task: tk, Builtin: pipeline.BuiltinMNIST, N: 1, Steps: 2, Batch: 1, Restarts: 1, Backend: "embedded", Out: filepath.Join(dir, "results")})
	must(t, err)
	edit(g)
	path := filepath.Join(dir, "run.yaml")
	must(t, g.Save(path))
	return path
}

func nodeOf(g *dag.Graph, id string) *dag.Node {
	for _, n := range g.Nodes {
		if n.ID == id {
			return n
		}
	}
	panic("no node " + id)
}

// A DAG file's bad params are found by the kinds' own checks: 'dag explain' and 'dag run'
// report the same problem, naming node and param, and 'dag run' creates nothing.
func TestDAGParamsAreCheckedByExplainAndRun(t *testing.T) {
	zero := filepath.Join(t.TempDir(), "zero.npy")
	writeNPY(t, zero, 0, 1, 32, 32)
	solverParam := func(name string, v any) func(*dag.Graph) {
		return func(g *dag.Graph) { nodeOf(g, "solver").Params["params"].(map[string]any)[name] = v }
	}
	param := func(node, name string, v any) func(*dag.Graph) {
		return func(g *dag.Graph) { nodeOf(g, node).Params[name] = v }
	}
	for _, c := range []struct {
		name string
		edit func(*dag.Graph)
		want []string
	}{
		{"negative steps", solverParam("steps", -4), []string{`node "solver"`, "param steps: -4"}},
		{"steps above the schedule", solverParam("steps", 5000), []string{`node "solver"`, "5000 is above the schedule's 1000 steps"}},
		{"NaN scale", solverParam("scale", "NaN"), []string{`node "solver"`, "param scale"}},
		{"batch 0", param("sample", "batch", 0), []string{`node "sample" param "batch"`}},
		{"restarts 0", param("sample", "restarts", 0), []string{`node "sample" param "restarts"`}},
		{"missing plugin", param("sample", "backend", "xla:no-such-plugin"), []string{`node "sample"`, `"xla:no-such-plugin"`}},
		{"negative sigma", param("noise", "sigma", -1.0), []string{`node "noise"`, "sigma"}},
		{"mnist n 0", param("truth", "n", 0), []string{`node "truth" param "n"`}},
		{"mnist past the split", param("truth", "start", 10000), []string{`node "truth"`, "outside the test split"}},
		{"zero images", func(g *dag.Graph) {
			n := nodeOf(g, "truth")
			n.Kind, n.Params = "images", map[string]any{"path": zero, "channels": 1, "size": 32}
		}, []string{`node "truth" param "path"`, "zero.npy"}},
		{"unknown builtin prior", param("prior", "builtin", "cifar"), []string{`node "prior"`, `"cifar"`}},
	} {
		dir := t.TempDir()
		path := writeRunDAG(t, dir, c.edit)
		var msgs []string
		for _, sub := range []string{"explain", "run"} {
			got, code, err := runCLI(t, "dag", sub, path)
			if code != 2 || err == nil {
				t.Errorf("%s: dag %s: exit %d (%v), want 2\n%s", c.name, sub, code, err, got)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: dag %s: %q does not say %q", c.name, sub, err, w)
				}
			}
			msgs = append(msgs, err.Error())
		}
		if len(msgs) == 2 && msgs[0] != msgs[1] {
			t.Errorf("%s: explain and run disagree:\n%s\n%s", c.name, msgs[0], msgs[1])
		}
		for _, made := range []string{".dpsflow", "results"} {
			if _, err := os.Stat(filepath.Join(dir, made)); err == nil {
				t.Errorf("%s: dag run created %s", c.name, made)
			}
		}
	}
}

// A run folder left by a run that did not finish (its save never wrote metrics.json)
// accepts the corrected command, which replaces it; a finished run of another DAG is
// still refused.
func TestUnfinishedRunFolderAcceptsTheCorrectedRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"run", "--n", "1", "--steps", "2", "--out", out}
	if got, code, err := runCLI(t, args...); code != 0 {
		t.Fatalf("first run: exit %d (%v)\n%s", code, err, got)
	}
	// What a late failure leaves: run.yaml, the cache, outputs without metrics.json.
	must(t, os.Remove(filepath.Join(out, pipeline.MetricsFile)))
	stale := filepath.Join(out, "recon", "00007.png")
	must(t, os.WriteFile(stale, []byte("from the failed run"), 0o644))
	got, code, err := runCLI(t, append(args, "--seed", "3")...)
	if code != 0 {
		t.Fatalf("corrected run into the failed run's folder: exit %d (%v)\n%s", code, err, got)
	}
	if !strings.Contains(got, "replacing the unfinished run") {
		t.Errorf("the replacement was not said:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(out, pipeline.MetricsFile)); err != nil {
		t.Errorf("no metrics.json after the corrected run: %v", err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a file of the failed run was left among the new outputs")
	}
	// Finished now: another DAG is refused, the same command resumes (everything cached).
	if _, code, err := runCLI(t, append(args, "--seed", "4")...); code != 2 || !strings.Contains(fmt.Sprint(err), "holds another, finished run") {
		t.Errorf("a finished run's folder: exit %d (%v), want 2", code, err)
	}
	if _, code, err := runCLI(t, append(args, "--seed", "3")...); code != 0 {
		t.Errorf("rerun of the finished run: exit %d (%v)", code, err)
	}
	// A folder holding only dpsflow's own state (a run stopped before run.yaml) is taken.
	bare := filepath.Join(t.TempDir(), "bare")
	must(t, os.MkdirAll(filepath.Join(bare, ".dpsflow", "cache"), 0o755))
	if _, code, err := runCLI(t, "run", "--n", "1", "--steps", "1", "--out", bare); code != 0 {
		t.Errorf("folder with only .dpsflow: exit %d (%v)", code, err)
	}
}

// The folder lock: a second taker is refused naming the holder; a released or dead
// holder's lock is taken over.
func TestLockDirNamesTheHolderAndIsTakenOver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	release, err := lockDir(dir)
	must(t, err)
	_, err = lockDir(dir)
	var le *lockedError
	if !errors.As(err, &le) || exitCode(err) != 2 {
		t.Fatalf("second lock: %v, want a lockedError (exit 2)", err)
	}
	host, _ := os.Hostname()
	for _, w := range []string{fmt.Sprintf("pid %d", os.Getpid()), host, dir, "since "} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	release()
	again, err := lockDir(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
	// A lock file left by a process that died (no flock held) is taken over.
	dead := filepath.Join(t.TempDir(), "dead")
	must(t, os.MkdirAll(filepath.Join(dead, ".dpsflow"), 0o755))
	must(t, os.WriteFile(filepath.Join(dead, ".dpsflow", lockFile), []byte(`{"pid": 999999, "host": "gone", "command": "dpsflow run", "since": "2020-01-01T00:00:00Z"}`), 0o644))
	rel, err := lockDir(dead)
	if err != nil {
		t.Fatalf("stale lock: %v", err)
	}
	var h lockHolder
	must(t, json.Unmarshal(must2(os.ReadFile(filepath.Join(dead, ".dpsflow", lockFile))), &h))
	if h.PID != os.Getpid() {
		t.Errorf("the lock file names pid %d after the takeover, want %d", h.PID, os.Getpid())
	}
	rel()
}

// A panic that reaches main is a bug: exit 3, a request for a report, the panic and its
// stack on stderr; never exit 2. The panicking command exists only in this test's tree.
func TestPanicIsACrashWithItsOwnExitCode(t *testing.T) {
	for name, run := range map[string]func(*cobra.Command, []string) error{
		"panic in a command": func(*cobra.Command, []string) error { panic("boom in the test command") },
		"panic in a DAG node": func(*cobra.Command, []string) error {
			return fmt.Errorf("node %q: %w", "sample", &dag.PanicError{Value: "boom in the test command", Stack: []byte("goroutine 1 [running]:\nfake.frame()")})
		},
	} {
		root := newRootCmd()
		root.AddCommand(&cobra.Command{Use: "crash-for-test", RunE: run})
		var stderr bytes.Buffer
		code := execute(root, []string{"crash-for-test"}, &stderr)
		if code != exitCrash {
			t.Errorf("%s: exit %d, want %d", name, code, exitCrash)
		}
		for _, w := range []string{"internal error (a bug in dpsflow", "Please report it", "boom in the test command", "goroutine"} {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%s: stderr does not say %q:\n%s", name, w, stderr.String())
			}
		}
	}
	// And the codes of the other classes, through the same path as main.
	for args, want := range map[string]int{"run --out x --n 0": exitUsage, "no-such-command": exitUsage, "dag no-such-sub": exitUsage, "run --no-such-flag": exitUsage, "version": 0} {
		var stderr bytes.Buffer
		dir := t.TempDir()
		a := strings.Fields(strings.ReplaceAll(args, "--out x", "--out "+filepath.Join(dir, "x")))
		if code := execute(newRootCmd(), a, &stderr); code != want {
			t.Errorf("%s: exit %d, want %d\n%s", args, code, want, stderr.String())
		}
	}
}

// --help shows every default, 'dag kinds' no "<nil>", and --backend has one wording.
func TestHelpShowsDefaultsAndOneBackendWording(t *testing.T) {
	for _, args := range [][]string{{"run", "--help"}, {"table", "--help"}, {"step", "--help"}} {
		out, code, _ := runCLI(t, args...)
		if code != 0 || strings.Contains(out, "(required) (default") {
			t.Errorf("%v: exit %d or a required flag with a default:\n%s", args, code, out)
		}
	}
	out, _, _ := runCLI(t, "run", "--help")
	for _, w := range []string{"--seed uint                 seed of every random draw (mask, noise, sampler) (default 0)",
		"(default: the task's, 4; phase-retrieval 1)", "(default: the task's, gaussian:0.05 for every preset)",
		"(default: the task's conditioning method, dps for the presets)", "--n int                     number of images (default 8)"} {
		if !strings.Contains(out, w) {
			t.Errorf("run --help lacks %q", w)
		}
	}
	kinds, code, _ := runCLI(t, "dag", "kinds")
	if code != 0 || strings.Contains(kinds, "<nil>") || !strings.Contains(kinds, "param path       string (required)") {
		t.Errorf("dag kinds (exit %d) shows <nil> or no required param:\n%s", code, kinds)
	}
	root := newRootCmd()
	var seen []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if f := c.Flags().Lookup("backend"); f != nil {
			seen = append(seen, c.CommandPath())
			if !strings.Contains(f.Usage, backendFlagUsage) {
				t.Errorf("%s --backend: %q does not use the one wording", c.CommandPath(), f.Usage)
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	if len(seen) < 5 {
		t.Errorf("only %v have --backend", seen)
	}
}

// The real binary: exit codes as scripts see them. Bad input 2 with no folder; a failure
// while running 1; Ctrl-C 130, after which the corrected command works in that folder;
// two runs into one folder: the second is refused at once naming the first, which finishes.
func TestBinaryExitCodesAndConcurrentRuns(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dpsflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	codeOf := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			return -1
		}
		return 0
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "--scale", "NaN"}, 2, "--scale NaN"},
		{[]string{"run", "--steps", "1001"}, 2, "--steps 1001"},
		{[]string{"run", "--backend", "xla:no-such-plugin"}, 2, "--backend"},
		{[]string{"run", "--baseline", "nope"}, 2, "--baseline"},
		{[]string{"run", "--bogus-flag"}, 2, "--bogus-flag"},
		{[]string{"no-such-command"}, 2, "no-such-command"},
	} {
		out := filepath.Join(dir, "bad")
		got, err := exec.Command(bin, append(c.args, "--out", out)...).CombinedOutput()
		if codeOf(err) != c.code || !strings.Contains(string(got), c.want) {
			t.Errorf("%v: exit %d, want %d saying %q:\n%s", c.args, codeOf(err), c.code, c.want, got)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: created %s", c.args, out)
		}
	}
	notDir := filepath.Join(dir, "file")
	must(t, os.WriteFile(notDir, nil, 0o644))
	if got, err := exec.Command(bin, "run", "--n", "1", "--steps", "1", "--out", filepath.Join(notDir, "run")).CombinedOutput(); codeOf(err) != 2 {
		t.Errorf("--out under a file: exit %d, want 2:\n%s", codeOf(err), got)
	}
	// A failure while running: the save node cannot write recon/ (a file took its place
	// in an unfinished run's folder): exit 1, and the rerun after the fix works.
	broken := filepath.Join(dir, "broken")
	small := []string{"run", "--n", "1", "--steps", "1", "--out", broken}
	if got, err := exec.Command(bin, small...).CombinedOutput(); err != nil {
		t.Fatalf("small run: %v\n%s", err, got)
	}
	must(t, os.Remove(filepath.Join(broken, pipeline.MetricsFile)))
	must(t, os.RemoveAll(filepath.Join(broken, "recon")))
	must(t, os.WriteFile(filepath.Join(broken, "recon"), nil, 0o644))
	if got, err := exec.Command(bin, small...).CombinedOutput(); codeOf(err) != 1 || !strings.Contains(string(got), "recon") {
		t.Errorf("save failing while running: exit %d, want 1 naming recon:\n%s", codeOf(err), got)
	}
	must(t, os.Remove(filepath.Join(broken, "recon")))
	if got, err := exec.Command(bin, small...).CombinedOutput(); err != nil {
		t.Errorf("rerun after the fix: %v\n%s", err, got)
	}

	// Ctrl-C in the middle of sampling: 130; then a corrected command into that folder.
	stopped := filepath.Join(dir, "stopped")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "run", "--n", "2", "--steps", "400", "--out", stopped)
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	waitFor(t, cmd, func() bool { return findFile(stopped, "batch-00000-run-0.gob") != "" })
	must(t, cmd.Process.Signal(syscall.SIGINT))
	if err := cmd.Wait(); codeOf(err) != 130 || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("after SIGINT: exit %d, want 130:\n%s", codeOf(err), stderr.String())
	}
	if got, err := exec.Command(bin, "run", "--n", "1", "--steps", "2", "--out", stopped).CombinedOutput(); err != nil {
		t.Fatalf("a different command into the interrupted run's folder: %v\n%s", err, got)
	}

	// Two runs into one folder at once.
	shared := filepath.Join(dir, "shared")
	args := []string{"run", "--n", "2", "--steps", "40", "--out", shared}
	first := exec.Command(bin, args...)
	var firstOut bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstOut
	must(t, first.Start())
	waitFor(t, first, func() bool {
		data, err := os.ReadFile(filepath.Join(shared, ".dpsflow", lockFile))
		return err == nil && bytes.Contains(data, []byte(fmt.Sprintf(`"pid":%d`, first.Process.Pid)))
	})
	start := time.Now()
	got, err := exec.Command(bin, args...).CombinedOutput()
	if codeOf(err) != 2 || !strings.Contains(string(got), fmt.Sprintf("in use by pid %d", first.Process.Pid)) {
		t.Errorf("second run: exit %d, want 2 naming pid %d:\n%s", codeOf(err), first.Process.Pid, got)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the second run took %s to be refused", d)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstOut.String())
	}
	if _, err := os.Stat(filepath.Join(shared, pipeline.MetricsFile)); err != nil {
		t.Errorf("the first run did not finish: %v", err)
	}
}

// waitFor polls cond for up to three minutes while cmd runs.
func waitFor(t *testing.T, cmd *exec.Cmd, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// `dpsflow table` refuses the same classes before its folder exists.
func TestTableRefusesBadSpecsUpFront(t *testing.T) {
	dir := t.TempDir()
	nanTask := filepath.Join(dir, "nan.yaml")
	must(t, os.WriteFile(nanTask, []byte(sr4With(t, "scale: 4.0", "scale: .nan")), 0o644))
	for _, c := range []struct{ name, spec, want string }{
		{"steps above the schedule", "tasks: [sr4]\nsolvers:\n  - {name: dps, params: {steps: 5000}}\n", "5000 is above the schedule's 1000 steps"},
		{"missing plugin", "tasks: [sr4]\nsolvers: [dps]\nbackend: xla:no-such-plugin\n", `"xla:no-such-plugin"`},
		{"task with NaN scale", "tasks: [" + nanTask + "]\nsolvers: [dps]\n", "scale: NaN"},
		{"one image with FD", "tasks: [sr4]\nsolvers: [pinv]\nn: 1\n", "line 3: n: 1 image: FD and KID need at least 2"},
		{"negative steps names steps only", "tasks: [sr4]\nsolvers: [pinv]\nsteps: -4\n", "line 3: steps: -4: must not be negative"},
	} {
		spec := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
		must(t, os.WriteFile(spec, []byte(c.spec), 0o644))
		out := filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))
		got, code, err := runCLI(t, "table", spec, "--out", out)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: exit %d (%v), want 2 saying %q\n%s", c.name, code, err, c.want, got)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the table folder was created", c.name)
		}
	}
}
