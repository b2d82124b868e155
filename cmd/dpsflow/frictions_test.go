package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelSampleDefaultsToTheShippedPriorWithProgress(t *testing.T) {
	out := filepath.Join(t.TempDir(), "s.png")
	text, code, err := runCLI(t, "model", "sample", "--steps", "2", "--n", "1", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
	// stderr is not a terminal here: the progress comes as lines "sample done/total".
	if !strings.Contains(text, "sample") || !strings.Contains(text, "2/2") {
		t.Errorf("no progress in the output:\n%s", text)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "sample", "--model-config", "m.yaml", "--out", out}, "--model-config m.yaml needs --checkpoint"},
		{[]string{"model", "sample", "--checkpoint", "w.pt", "--out", out}, "--checkpoint w.pt needs --model-config"},
		{[]string{"model", "sample", "--n", "0", "--out", out}, "--n must be at least 1, got 0"},
		{[]string{"model", "sample", "--steps", "1001", "--out", out}, "--steps must be in [1, 1000]"},
	} {
		text, code, err := runCLI(t, c.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d, error %v, want 2 and %q\n%s", c.args, code, err, c.want, text)
		}
	}
}

// --images writes every sample as its own PNG, the same pixels as the grid's tiles, and
// refuses a folder that already holds files.
func TestModelSampleImagesWritesEachSample(t *testing.T) {
	dir := t.TempDir()
	grid, images := filepath.Join(dir, "grid.png"), filepath.Join(dir, "samples")
	text, code, err := runCLI(t, "model", "sample", "--steps", "2", "--n", "3", "--out", grid, "--images", images, "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	gridImg := readPNG(t, grid)
	for i := range 3 {
		img := readPNG(t, filepath.Join(images, fmt.Sprintf("%05d.png", i)))
		if img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
			t.Fatalf("sample %d is %v, want 32×32", i, img.Bounds())
		}
		if !containsTile(gridImg, img) {
			t.Errorf("sample %d's pixels are not a tile of the grid", i)
		}
	}
	if _, err := os.Stat(filepath.Join(images, "00003.png")); err == nil {
		t.Error("a fourth sample was written")
	}
	text, code, err = runCLI(t, "model", "sample", "--steps", "2", "--n", "1", "--out", grid, "--images", images)
	if code != 2 || err == nil || !strings.Contains(err.Error(), images+": not empty") {
		t.Errorf("a non-empty --images folder: exit %d, error %v\n%s", code, err, text)
	}
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// containsTile says whether tile appears pixel for pixel (as gray levels) somewhere in grid.
func containsTile(grid, tile image.Image) bool {
	gb, tb := grid.Bounds(), tile.Bounds()
	gray := func(img image.Image, x, y int) uint8 { return color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y }
	for oy := gb.Min.Y; oy+tb.Dy() <= gb.Max.Y; oy++ {
	next:
		for ox := gb.Min.X; ox+tb.Dx() <= gb.Max.X; ox++ {
			for y := range tb.Dy() {
				for x := range tb.Dx() {
					if gray(grid, ox+x, oy+y) != gray(tile, tb.Min.X+x, tb.Min.Y+y) {
						continue next
					}
				}
			}
			return true
		}
	}
	return false
}

func TestModelAndTrainHelpShowEveryDefault(t *testing.T) {
	for _, c := range []struct {
		cmd  []string
		want []string
	}{
		{[]string{"model", "sample"}, []string{"random seed (default 0)", "(default: the shipped MNIST prior)", `(default: $DPSFLOW_BACKEND if set, else "embedded")`, "(default 250)"}},
		{[]string{"model", "loss"}, []string{"(default 10000)", "(default 100)", "(default 0)", "(default: the shipped MNIST prior)"}},
		{[]string{"model", "eval"}, []string{"(default: the shipped MNIST prior)", `(default: $DPSFLOW_BACKEND if set, else "embedded")`}},
		{[]string{"train"}, []string{"(default 0)", "(default 1000)", "(default 16)", `(default "constant")`, "(default 0: --steps)", `(default: $DPSFLOW_BACKEND if set, else "embedded")`}},
	} {
		text, code, err := runCLI(t, append(c.cmd, "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d %v", c.cmd, code, err)
		}
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%v --help lacks %q:\n%s", c.cmd, w, text)
			}
		}
		for _, bad := range []string{"(required) (default", "(default -1)", "$DPSFLOW_BACKEND overrides"} {
			if strings.Contains(text, bad) {
				t.Errorf("%v --help says %q:\n%s", c.cmd, bad, text)
			}
		}
	}
}

func TestTrainEstimatePrintsTimeLeftOnce(t *testing.T) {
	var buf bytes.Buffer
	e := &trainEstimate{w: &buf, total: 1000, batch: 16, start: 100}
	for step := 101; step <= 120; step++ {
		e.onStep(step, 0)
	}
	text := buf.String()
	if strings.Count(text, "s per step") != 1 || !strings.Contains(text, "at --batch 16: the remaining 894 of 1000 steps take about") {
		t.Errorf("estimate: %q", text)
	}
	buf.Reset()
	quiet := &trainEstimate{w: &buf, total: 10, batch: 2, quiet: true}
	for step := 1; step <= 10; step++ {
		quiet.onStep(step, 0)
	}
	if buf.Len() != 0 {
		t.Errorf("--quiet printed %q", buf.String())
	}
}

// runSmall is `run --task sr4` at 2 steps on one digit into dir (a few seconds).
func runSmall(t *testing.T, dir string, extra ...string) {
	t.Helper()
	args := append([]string{"run", "--task", "sr4", "--steps", "2", "--n", "1", "--out", dir}, extra...)
	if text, code, err := runCLI(t, args...); code != 0 {
		t.Fatalf("%v: exit %d %v\n%s", args, code, err, text)
	}
}

func metricsOf(t *testing.T, dir string) map[string]any {
	t.Helper()
	var m map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "metrics.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMetricsJSONRecordsTheSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	runSmall(t, dir, "--seed", "3", "--noise", "gaussian:0.1")
	m := metricsOf(t, dir)
	params, _ := m["params"].(map[string]any)
	noise, _ := m["noise"].(map[string]any)
	if m["method"] != "dps" || m["task"] != "sr4" || m["solver"] != "dps" || m["steps"] != 2.0 || params["steps"] != 2.0 ||
		params["scale"] != 4.0 || noise["name"] != "gaussian" || noise["sigma"] != 0.1 || m["seed"] != 3.0 ||
		m["backend"] != "embedded" || m["dpsflow_version"] == nil || m["summary"] == nil || m["images"] == nil {
		t.Errorf("metrics.json: %v", m)
	}
}

func TestDAGRunOfAMovedOrEditedRunYAML(t *testing.T) {
	root := t.TempDir()
	first, moved := filepath.Join(root, "first"), filepath.Join(root, "moved")
	runSmall(t, first)
	yamlText, err := os.ReadFile(filepath.Join(first, "run.yaml"))
	if err != nil || !bytes.Contains(yamlText, []byte("dir: .\n")) || bytes.Contains(yamlText, []byte(root)) {
		t.Fatalf("run.yaml names its folder absolutely (%v):\n%s", err, yamlText)
	}
	// A moved folder reruns into itself, not into the old path.
	if err := os.Rename(first, moved); err != nil {
		t.Fatal(err)
	}
	if text, code, err := runCLI(t, "dag", "run", filepath.Join(moved, "run.yaml")); code != 0 {
		t.Fatalf("dag run of the moved folder: exit %d %v\n%s", code, err, text)
	}
	if _, err := os.Stat(first); !os.IsNotExist(err) {
		t.Errorf("dag run recreated the old folder %s (%v)", first, err)
	}
	// Edited in place: refused, naming the node that differs and the way out.
	runYAML := filepath.Join(moved, "run.yaml")
	edited := bytes.Replace(yamlText, []byte("steps: 2"), []byte("steps: 3"), 1)
	if err := os.WriteFile(runYAML, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	_, code, err := runCLI(t, "dag", "run", runYAML)
	if code != 2 || err == nil {
		t.Fatalf("edited run.yaml: exit %d %v, want 2", code, err)
	}
	for _, want := range []string{moved, "nodes that differ: solver", "--out NEWDIR", "--overwrite"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("edited run.yaml: error %q lacks %q", err, want)
		}
	}
	if m := metricsOf(t, moved); m["steps"] != 2.0 {
		t.Errorf("the refused run changed %s: steps %v", moved, m["steps"])
	}
	// --out NEWDIR: the edited graph gets a folder of its own, with its own run.yaml.
	second := filepath.Join(root, "second")
	if text, code, err := runCLI(t, "dag", "run", runYAML, "--out", second); code != 0 {
		t.Fatalf("--out: exit %d %v\n%s", code, err, text)
	}
	if m := metricsOf(t, second); m["steps"] != 3.0 {
		t.Errorf("%s: steps %v, want 3", second, m["steps"])
	}
	if m := metricsOf(t, moved); m["steps"] != 2.0 {
		t.Errorf("--out changed %s: steps %v", moved, m["steps"])
	}
	if text, code, err := runCLI(t, "dag", "run", filepath.Join(second, "run.yaml")); code != 0 {
		t.Errorf("dag run of the new folder's run.yaml: exit %d %v\n%s", code, err, text)
	}
	// --overwrite: replaced in place, and from then on the folder holds the edited graph;
	// the other graph's outputs go (a stray image of it must not stay beside the new ones).
	stray := filepath.Join(moved, "recon", "99999.png")
	if err := os.WriteFile(stray, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if text, code, err := runCLI(t, "dag", "run", runYAML, "--overwrite"); code != 0 {
		t.Fatalf("--overwrite: exit %d %v\n%s", code, err, text)
	}
	if _, err := os.Stat(stray); err == nil {
		t.Error("--overwrite kept the other graph's recon/99999.png")
	}
	if m := metricsOf(t, moved); m["steps"] != 3.0 {
		t.Errorf("--overwrite: %s steps %v, want 3", moved, m["steps"])
	}
	if text, code, err := runCLI(t, "dag", "run", runYAML); code != 0 {
		t.Errorf("rerun after --overwrite: exit %d %v\n%s", code, err, text)
	}
	// --out into a folder another process is writing: refused, naming its holder.
	busy := filepath.Join(t.TempDir(), "busy")
	release, err := lockDir(busy)
	if err != nil {
		t.Fatal(err)
	}
	_, code, err = runCLI(t, "dag", "run", runYAML, "--out", busy)
	release()
	var le *lockedError
	if code != 2 || !errors.As(err, &le) {
		t.Errorf("--out into a locked folder: exit %d, %v; want 2 and the lock's holder", code, err)
	}
}

// TestRunAcceptsAnOlderAbsoluteRunYAML: a run folder from before relative paths (its
// run.yaml names the folder absolutely) still reruns with `run` and `dag run`.
func TestRunAcceptsAnOlderAbsoluteRunYAML(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "old")
	runSmall(t, dir)
	runYAML := filepath.Join(dir, "run.yaml")
	data, err := os.ReadFile(runYAML)
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Replace(data, []byte("dir: .\n"), []byte("dir: "+dir+"\n"), 1)
	if bytes.Equal(old, data) {
		t.Fatal("no relative dir to replace")
	}
	os.WriteFile(runYAML, old, 0o644)
	os.RemoveAll(filepath.Join(dir, ".dpsflow", "graph.yaml"))
	runSmall(t, dir)
	if got, _ := os.ReadFile(runYAML); !bytes.Equal(got, old) {
		t.Errorf("rerun rewrote the older run.yaml:\n%s", got)
	}
	if text, code, err := runCLI(t, "dag", "run", runYAML); code != 0 {
		t.Errorf("dag run of an older run.yaml: exit %d %v\n%s", code, err, text)
	}
}

func TestRunImagesSayWhatHappens(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []color.Color{color.Gray{0}, color.Gray{255}, color.Gray{128}, color.Gray{30}} {
		img := image.NewGray(image.Rect(0, 0, 32, 32))
		for p := range img.Pix {
			img.Pix[p] = c.(color.Gray).Y
		}
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}
	colour := filepath.Join(t.TempDir(), "red.png")
	rgba := image.NewNRGBA(image.Rect(0, 0, 32, 32))
	for p := 0; p < len(rgba.Pix); p += 4 {
		rgba.Pix[p], rgba.Pix[p+3] = 255, 255
	}
	f, _ := os.Create(colour)
	png.Encode(f, rgba)
	f.Close()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--images", dir, "--n", "8"}, []string{dir, "holds 4 image", "the 8 asked for (--n)"}},
		{[]string{"--images", dir, "--n", "2", "--start", "1"}, []string{"--start 1", "--images " + dir}},
		{[]string{"--images", colour, "--n", "1"}, []string{colour, "colour image", "grey"}},
	} {
		out := filepath.Join(t.TempDir(), "out")
		args := append([]string{"run", "--task", "sr4", "--steps", "1", "--out", out}, c.args...)
		_, code, err := runCLI(t, args...)
		if code != 2 || err == nil {
			t.Errorf("%v: exit %d %v, want 2", c.args, code, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", c.args, err, w)
			}
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%v: the refused run left %s", c.args, out)
		}
	}
	// A single image file is a one-image set.
	out := filepath.Join(t.TempDir(), "one")
	if text, code, err := runCLI(t, "run", "--task", "sr4", "--steps", "1", "--n", "1", "--images", filepath.Join(dir, "b.png"), "--out", out); code != 0 {
		t.Fatalf("single PNG: exit %d %v\n%s", code, err, text)
	}
	if _, err := os.Stat(filepath.Join(out, "recon", "00000.png")); err != nil {
		t.Error(err)
	}
}

func TestRunPoissonNoiseTakesThePresetsPoissonScale(t *testing.T) {
	for _, c := range []struct {
		args  []string
		scale float64
	}{
		{[]string{"--noise", "poisson:1"}, 2},                 // inpaint-random's noise_scales.poisson
		{[]string{"--noise", "poisson:1", "--scale", "3"}, 3}, // an explicit --scale wins
		{nil, 4}, // the Gaussian preset as it was
	} {
		dir := filepath.Join(t.TempDir(), "run")
		args := append([]string{"run", "--task", "inpaint-random", "--steps", "1", "--n", "1", "--out", dir}, c.args...)
		if text, code, err := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d %v\n%s", c.args, code, err, text)
		}
		params, _ := metricsOf(t, dir)["params"].(map[string]any)
		if params["scale"] != c.scale {
			t.Errorf("%v: scale %v, want %v", c.args, params["scale"], c.scale)
		}
	}
}
