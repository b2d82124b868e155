package pipeline

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/metrics/fid"
	"github.com/dpsflow/dpsflow/nodes/metrics/lpips"
	"github.com/dpsflow/dpsflow/nodes/task"
	"github.com/dpsflow/dpsflow/xla"
)

// A spec that is wrong anywhere is refused with the file, the line and the key.
func TestTableSpecErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, spec, want string }{
		{"unknown key", "tasks: [sr4]\nsolvers: [dps]\nwobble: 3\n", `line 3: unknown key "wobble"`},
		{"unknown solver key", "tasks: [sr4]\nsolvers:\n  - dps\n  - {name: ddrm, parms: {steps: 3}}\n", `line 4: solver key "parms"`},
		{"unknown solver", "tasks: [sr4]\nsolvers: [dps, nosuch]\n", "line 2: solvers[1]"},
		{"bad param", "tasks: [sr4]\nsolvers:\n  - {name: ddrm, params: {eta: lots}}\n", "line 3: solvers[0]"},
		{"duplicate", "tasks: [sr4]\nsolvers: [dps, dps]\n", "give the second a label"},
		{"unknown task", "tasks: [sr4, sr5]\nsolvers: [dps]\n", "line 1: tasks[1]"},
		{"no solvers", "tasks: [sr4]\n", "solvers: no solvers"},
		{"bad noise", "tasks: [sr4]\nsolvers: [dps]\nnoise: laplace:1\n", "line 3: noise"},
		{"inception without weights", "tasks: [sr4]\nsolvers: [dps]\nmetrics: {fid: inception}\n", "line 3: metrics.fid"},
		{"missing lpips file", "tasks: [sr4]\nsolvers: [dps]\nmetrics:\n  lpips: {net: alex, backbone: nope.pth, lin: alex.pth}\n", "metrics.lpips.backbone"},
		{"bad lpips net", "tasks: [sr4]\nsolvers: [dps]\nmetrics:\n  lpips: {net: resnet, backbone: a, lin: b}\n", `line 4: metrics.lpips.net`},
		{"negative n", "tasks: [sr4]\nsolvers: [dps]\nn: -1\n", "line 3: n"},
		{"empty", "", "empty file"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
		if err := os.WriteFile(path, []byte(c.spec), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTableSpec(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming %s and %q", c.name, err, path, c.want)
		}
	}
}

// Defaults are filled in, labels default to names, and task files are found relative to
// the spec.
func TestTableSpecDefaultsAndRelativePaths(t *testing.T) {
	dir := t.TempDir()
	data, err := task.PresetYAML("sr4")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mine.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(path, []byte("tasks: [mine.yaml, inpaint-box]\nsolvers: [dps, {name: dps, label: dps-s2, params: {scale: 2}}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadTableSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != DefaultTableN || s.Batch != DefaultTableN || s.Restarts != 1 || s.Metrics.KIDSubsets != DefaultKIDSubsets || s.Metrics.KIDSubsetSize != DefaultKIDSubsetSize {
		t.Errorf("defaults: %+v", s)
	}
	if got := strings.Join(s.Labels(), ","); got != "dps,dps-s2" {
		t.Errorf("labels %s", got)
	}
	if s.Tasks[0] != filepath.Join(dir, "mine.yaml") || TaskLabel(s.Tasks[0]) != "mine" {
		t.Errorf("task file %s (label %s)", s.Tasks[0], TaskLabel(s.Tasks[0]))
	}
}

// A table runs every solver that can take a task, lists the others with the reason,
// gives each cell what a plain run of the same settings gives, writes its files, and a
// second run comes from the cache.
func TestTableAgreesWithRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spec.yaml")
	spec := "tasks: [sr4, deblur-motion]\nsolvers:\n  - {name: dps, params: {steps: 3}}\n  - pinv\nn: 2\nseed: 3\nmetrics: {fid: none}\n"
	if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := LoadTableSpec(path)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanTable(s)
	if err != nil {
		t.Fatal(err)
	}
	if why := plan.Skipped[[2]string{"deblur-motion", "pinv"}]; !strings.Contains(why, "pseudo-inverse") {
		t.Errorf("pinv on motion blur: skipped %q, want the missing capability", why)
	}
	cache := filepath.Join(dir, "cache")
	var started []string
	events := func(e dag.Event) {
		if e.Type == dag.EventStart {
			started = append(started, e.Node)
		}
	}
	tab, err := RunTable(context.Background(), plan, cache, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Rows) != 4 {
		t.Fatalf("%d rows, want 4", len(tab.Rows))
	}

	// The dps cell is what `dpsflow run` computes for the same settings.
	tk, _ := task.Preset("sr4")
	o, err := Execute(context.Background(), RunSpec{Name: "sr4", Task: tk, Builtin: BuiltinMNIST, N: 2, Batch: 2, Seed: 3,
		Backend: "embedded", Solver: "dps", Params: map[string]any{"steps": 3}}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	row := tab.Rows[0]
	if row.Task != "sr4" || row.Solver != "dps" || row.NFE != 3 || row.N != 2 {
		t.Errorf("first row %+v", row)
	}
	for _, k := range []string{"psnr", "ssim", "residual"} {
		if row.Metrics[k] != o.Metrics.Summary[k] {
			t.Errorf("%s: table %v, run %v", k, row.Metrics[k], o.Metrics.Summary[k])
		}
	}
	if r := tab.Rows[3]; r.Task != "deblur-motion" || r.Solver != "pinv" || r.Skipped == "" {
		t.Errorf("last row %+v, want pinv skipped on deblur-motion", r)
	}

	out := filepath.Join(dir, "out")
	if _, err := tab.Write(out); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	data, err := os.ReadFile(filepath.Join(out, TableJSON))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rows); err != nil || len(rows) != 4 {
		t.Fatalf("table.json: %v, %d rows", err, len(rows))
	}
	for _, k := range []string{"task", "solver", "params", "n", "nfe", "seconds_per_image", "metrics"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("table.json rows lack %q", k)
		}
	}
	f, err := os.Open(filepath.Join(out, TableCSV))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(lines) != 5 {
		t.Errorf("table.csv: %v, %d lines, want a header and 4", err, len(lines))
	}
	md, _ := os.ReadFile(filepath.Join(out, TableMarkdown))
	if !strings.Contains(string(md), "### deblur-motion") || !strings.Contains(string(md), "pinv on deblur-motion") {
		t.Errorf("table.md:\n%s", md)
	}
	g, err := os.Open(filepath.Join(out, TableGridFile("deblur-motion")))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(g)
	g.Close()
	if err != nil || cfg.Width < 3*32 || cfg.Height < 2*32 {
		t.Errorf("grid: %v, %d×%d", err, cfg.Width, cfg.Height)
	}

	// Again: everything from the cache.
	started = nil
	again, err := RunTable(context.Background(), plan, cache, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(started) != 0 {
		t.Errorf("second run started %v, want everything cached", started)
	}
	if again.Rows[0].Metrics["psnr"] != row.Metrics["psnr"] {
		t.Errorf("cached psnr %v, first %v", again.Rows[0].Metrics["psnr"], row.Metrics["psnr"])
	}
}

// Accuracy compares each prediction's class with its reference's label, or without labels
// with the class the network gives the reference.
func TestCompareFeaturesAccuracy(t *testing.T) {
	feat := func(classes, labels []int) *Features {
		f := &Features{Net: FIDMNIST, N: len(classes), D: 2, Classes: classes, Labels: labels}
		for i := range classes {
			f.Values = append(f.Values, float64(i), float64(i*i%3))
		}
		return f
	}
	o := fid.KIDOptions{Subsets: 2, SubsetSize: 4}
	s, err := CompareFeatures(feat([]int{1, 2, 3, 4}, nil), feat([]int{9, 9, 9, 9}, []int{1, 2, 0, 4}), o)
	if err != nil {
		t.Fatal(err)
	}
	if a := s.Accuracy(); a.Mean != 0.75 {
		t.Errorf("accuracy with labels %v, want 0.75", a)
	}
	if s.FD > 1e-9 || s.FD < -1e-9 {
		t.Errorf("FD of identical features %v, want 0", s.FD)
	}
	s, err = CompareFeatures(feat([]int{1, 2, 3, 4}, nil), feat([]int{1, 0, 0, 4}, nil), o)
	if err != nil || s.Accuracy().Mean != 0.5 {
		t.Errorf("accuracy without labels: %v, %v, want 0.5", s, err)
	}
	if _, err := CompareFeatures(feat([]int{1}, nil), &Features{Net: FIDInception, D: 3}, o); err == nil {
		t.Error("features of two networks compared")
	}
}

// runTableText plans and runs a spec given as text, uncached.
func runTableText(t *testing.T, spec string) *Table {
	t.Helper()
	s, err := ParseTableSpec([]byte(spec), "")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := PlanTable(s)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := RunTable(context.Background(), plan, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// A solver that diverges is a row marked diverged, and the rest of the table is made.
func TestTableMarksDivergedCells(t *testing.T) {
	tab := runTableText(t, "tasks: [sr4]\nsolvers:\n  - pinv\n  - {name: daps, label: boom, params: {annealing_steps: 3, ode_steps: 1, langevin_steps: 5, lr: 1e10}}\nn: 2\nmetrics: {fid: none}\n")
	if r := tab.Rows[0]; r.Failed != "" || r.Metrics["psnr"].Mean == 0 {
		t.Errorf("pinv row %+v", r)
	}
	if r := tab.Rows[1]; !r.Diverged || !strings.Contains(r.Failed, "NaN") || len(r.Metrics) != 0 {
		t.Errorf("diverging row %+v", r)
	}
	if len(tab.Failures()) != 0 {
		t.Errorf("a divergence counted as a failure: %+v", tab.Failures())
	}
	if md := tab.Markdown(); !strings.Contains(md, "| boom | diverged |") {
		t.Errorf("table.md:\n%s", md)
	}
}

// An LPIPS column is LPIPS of each clipped reconstruction against its truth, with the
// weight files the spec names (random ones in the real layouts, written by
// testdata/lpips/reference.py).
func TestTableLPIPSColumn(t *testing.T) {
	dir := t.TempDir()
	script, err := filepath.Abs("../../testdata/lpips/reference.py")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/bin/python3", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s needs Debian's python3-torch and numpy (./test.sh installs them): %v\n%s", script, err, out)
	}
	backbone, lin := filepath.Join(dir, "alex_backbone.pth"), filepath.Join(dir, "alex_lin.pth")
	spec := fmt.Sprintf("tasks: [sr4]\nsolvers: [pinv]\nn: 2\nmetrics:\n  fid: none\n  lpips: {net: alex, backbone: %s, lin: %s}\n", backbone, lin)
	tab := runTableText(t, spec)
	recon, _ := tab.Result.Value("sample/sr4/pinv.recon")
	truth, _ := tab.Result.Value("truth.images")
	r, tr := recon.(*Images), truth.(*Images)
	m, err := lpips.Load("alex", backbone, lin)
	if err != nil {
		t.Fatal(err)
	}
	b, release, err := xla.Shared("embedded")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	want, err := m.Distances(b, clipped(r.Pixels), tr.Pixels, r.N, r.C, r.H, r.W)
	if err != nil {
		t.Fatal(err)
	}
	mean, std := metrics.MeanStd(want)
	if got := tab.Rows[0].Metrics["lpips"]; math.Abs(got.Mean-mean) > 1e-12 || math.Abs(got.Std-std) > 1e-12 || mean <= 0 {
		t.Errorf("lpips column %+v, want %v ± %v", got, mean, std)
	}
}

// The README-size table specs of notebooks/tables are valid and plan every cell the README
// lists.
func TestCommittedTableSpecsPlan(t *testing.T) {
	paths, err := filepath.Glob("../../notebooks/tables/*.yaml")
	if err != nil || len(paths) < 3 {
		t.Fatalf("notebooks/tables: %v, %d specs", err, len(paths))
	}
	for _, p := range paths {
		s, err := LoadTableSpec(p)
		if err != nil {
			t.Error(err)
			continue
		}
		plan, err := PlanTable(s)
		if err != nil {
			t.Error(err)
			continue
		}
		if plan.Feature != FIDMNIST || s.N != 8 {
			t.Errorf("%s: features %q, n %d; the README's tables use the MNIST classifier on 8 digits", p, plan.Feature, s.N)
		}
	}
}
