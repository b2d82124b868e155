package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

const inpaintTaskYAML = `conditioning:
  method: ps
  params:
    scale: 1.0
measurement:
  operator:
    name: inpainting
  noise:
    name: gaussian
    sigma: 0.05
`

// A per-channel mask with equal channels is the one-mask operator; with differing
// channels each channel gets its own.
func TestStepPerChannelMaskOperator(t *testing.T) {
	const c, h, w = 3, 4, 5
	plane := make([]float64, h*w)
	for i := range plane {
		plane[i] = float64(i % 2)
	}
	same := slices.Concat(plane, plane, plane)
	differ := slices.Clone(same)
	differ[h*w+3] = 1 - differ[h*w+3] // channel 1, row 0, column 3
	x := []int{2, c, h, w}

	one, err := maskOperator("m.npy", []int{1, c, h, w}, same, x)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := one.(*operator.Inpainting); !ok {
		t.Fatalf("equal channels gave a %T, want *operator.Inpainting", one)
	}
	per, err := perChannelMask("m.npy", same, c, h, w)
	if err != nil {
		t.Fatal(err)
	}
	lin, ok := per.(operator.Linear)
	proj, ok2 := per.(operator.Projector)
	if !ok || !ok2 {
		t.Fatal("the per-channel operator is not Linear and a Projector")
	}
	backend, err := xla.New("embedded")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	vals := make([]float32, 2*c*h*w)
	ys := make([]float32, len(vals))
	for i := range vals {
		vals[i], ys[i] = float32(i)+1, -float32(i)
	}
	xt, yt := tensors.FromFlatDataAndDimensions(vals, x...), tensors.FromFlatDataAndDimensions(ys, x...)
	run := func(f func(x, y *graph.Node) *graph.Node) []float32 {
		t.Helper()
		out, err := graph.MustNewExec(backend, f).Exec1(xt, yt)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	ref := one.(*operator.Inpainting)
	for name, pair := range map[string][2]func(x, y *graph.Node) *graph.Node{
		"apply":   {func(x, _ *graph.Node) *graph.Node { return per.Apply(x) }, func(x, _ *graph.Node) *graph.Node { return ref.Apply(x) }},
		"adjoint": {func(_, y *graph.Node) *graph.Node { return lin.Adjoint(y) }, func(_, y *graph.Node) *graph.Node { return ref.Adjoint(y) }},
		"project": {proj.Project, ref.Project},
	} {
		if got, want := run(pair[0]), run(pair[1]); !slices.Equal(got, want) {
			t.Errorf("%s: per-channel %v, one mask %v", name, got[:6], want[:6])
		}
	}
	// Differing channels: only the flipped entry changes.
	per, err = maskOperator("m.npy", []int{1, c, h, w}, differ, x)
	if err != nil {
		t.Fatal(err)
	}
	got := run(func(x, _ *graph.Node) *graph.Node { return per.Apply(x) })
	want := run(func(x, _ *graph.Node) *graph.Node { return ref.Apply(x) })
	for i := range got {
		flipped := i%(c*h*w) == h*w+3
		if (got[i] != want[i]) != flipped {
			t.Fatalf("value %d: per-channel %v, one mask %v", i, got[i], want[i])
		}
	}
	if _, err := per.MeasurementShape(tensors.FromFlatDataAndDimensions(make([]float32, h*w), 1, 1, h, w).Shape()); err == nil {
		t.Error("the per-channel operator accepted a one-channel image")
	}
}

func TestStepMaskShapesAndValues(t *testing.T) {
	const c, h, w = 3, 4, 5
	x := []int{1, c, h, w}
	for _, md := range [][]int{{h, w}, {1, 1, h, w}} {
		if _, err := maskOperator("m.npy", md, make([]float64, h*w), x); err != nil {
			t.Errorf("mask %v: %v", md, err)
		}
	}
	bad := make([]float64, c*h*w)
	bad[h*w+7] = 0.5
	for _, tc := range []struct {
		dims []int
		vals []float64
		want []string
	}{
		{[]int{1, 2, h, w}, make([]float64, 2*h*w), []string{"--mask", "m.npy", "[1 2 4 5]", "[1 3 4 5]"}},
		{[]int{h * w}, make([]float64, h*w), []string{"--mask", "m.npy", "[20]"}},
		{[]int{c, h, w}, make([]float64, c*h*w), []string{"--mask", "m.npy", "[3 4 5]"}},
		{[]int{1, c, h, w}, bad, []string{"--mask", "m.npy", "[0, 1, 1, 2]", "0.5"}},
		{[]int{h, w}, bad[h*w : 2*h*w], []string{"--mask", "m.npy", "0.5"}},
	} {
		_, err := maskOperator("m.npy", tc.dims, tc.vals, x)
		for _, s := range tc.want {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("mask %v: error %v, want one naming %s", tc.dims, err, s)
			}
		}
	}
}

// `dpsflow step --mask` takes a [1, C, H, W] mask: equal channels give exactly the step of
// the [H, W] mask, differing channels another one.
func TestStepCommandPerChannelMask(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the tiny UNet three times")
	}
	dir := t.TempDir()
	cfg, ckpt := writeTinyModel(t, dir)
	p := func(name string) string { return filepath.Join(dir, name) }
	must(t, os.WriteFile(p("task.yaml"), []byte(inpaintTaskYAML), 0o644))
	const n = 3 * 8 * 8
	xt, z := make([]float32, n), make([]float32, n)
	for i := range xt {
		xt[i], z[i] = float32(i%7)/7-0.5, float32(i%5)/5-0.4
	}
	plane := make([]float32, 64)
	for i := range plane {
		plane[i] = float32((i / 3) % 2)
	}
	same := slices.Concat(plane, plane, plane)
	differ := slices.Clone(same)
	for i := 64; i < 128; i++ {
		differ[i] = 1 - differ[i]
	}
	y := make([]float32, n)
	for i := range y {
		y[i] = xt[i] * same[i]
	}
	write := func(name string, v []float32, dims ...int) {
		must(t, npy.Write(p(name), tensors.FromFlatDataAndDimensions(v, dims...)))
	}
	write("xt.npy", xt, 1, 3, 8, 8)
	write("z.npy", z, 1, 3, 8, 8)
	write("y.npy", y, 1, 3, 8, 8)
	write("hw.npy", plane, 8, 8)
	write("same.npy", same, 1, 3, 8, 8)
	write("differ.npy", differ, 1, 3, 8, 8)
	write("bad.npy", same[:128], 1, 2, 8, 8)
	step := func(mask, out string) ([]float32, int, error) {
		_, code, err := runCLI(t, "step", "--model-config", cfg, "--checkpoint", ckpt, "--task-config", p("task.yaml"),
			"--xt", p("xt.npy"), "--t", "50", "--y", p("y.npy"), "--noise", p("z.npy"), "--mask", p(mask), "--out", p(out))
		if code != 0 {
			return nil, code, err
		}
		got, err := npy.Read(p(out))
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](got), 0, nil
	}
	hw, code, err := step("hw.npy", "hw_out.npy")
	if code != 0 {
		t.Fatalf("[H, W] mask: exit %d: %v", code, err)
	}
	got, code, err := step("same.npy", "same_out.npy")
	if code != 0 || !slices.Equal(got, hw) {
		t.Fatalf("[1, C, H, W] mask with equal channels: exit %d, %v; equal to the [H, W] step: %v", code, err, slices.Equal(got, hw))
	}
	got, code, err = step("differ.npy", "differ_out.npy")
	if code != 0 || slices.Equal(got, hw) {
		t.Fatalf("[1, C, H, W] mask with differing channels: exit %d, %v; equal to the [H, W] step: %v", code, err, slices.Equal(got, hw))
	}
	if _, code, err = step("bad.npy", "bad_out.npy"); code != 2 || err == nil || !strings.Contains(err.Error(), "bad.npy") || !strings.Contains(err.Error(), "[1 2 8 8]") {
		t.Fatalf("mask [1, 2, 8, 8] for 3-channel images: exit %d, %v", code, err)
	}
}
