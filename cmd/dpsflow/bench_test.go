package main

import (
	"encoding/json"
	"math"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/prior/adm"
)

const torchBenchScript = "../../testdata/bench/torch_bench.py"

// requireTorch (crosscheck_test.go) fails, never skips, without torch: ./test.sh installs it.

// benchJSON runs `dpsflow bench ...` in-process and decodes its JSON report.
func benchJSON(t *testing.T, args ...string) benchReport {
	t.Helper()
	out, code, err := runCLI(t, append([]string{"bench"}, args...)...)
	if code != 0 {
		t.Fatalf("bench %v: exit %d: %v\n%s", args, code, err, out)
	}
	var r benchReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("bench %v: not JSON: %v\n%s", args, err, out)
	}
	return r
}

// checkRow: positive times and RSS, ms per image-step = ms/step ÷ batch, GFLOP/s from the count.
func checkRow(t *testing.T, who string, row benchRow, batch int, gflop float64) {
	t.Helper()
	if !(row.MsPerStep > 0) || !(row.PeakRSSMiB > 10) {
		t.Errorf("%s: ms/step %g, peak RSS %g MiB: want both positive (RSS > 10 MiB)", who, row.MsPerStep, row.PeakRSSMiB)
	}
	if math.Abs(row.MsPerImageStep*float64(batch)-row.MsPerStep) > 1e-9*row.MsPerStep {
		t.Errorf("%s: %g ms/image-step × batch %d ≠ %g ms/step", who, row.MsPerImageStep, batch, row.MsPerStep)
	}
	if want := gflop / (row.MsPerStep / 1000); math.Abs(row.GFLOPS-want) > 1e-9*want {
		t.Errorf("%s: %g GFLOP/s, want %g", who, row.GFLOPS, want)
	}
}

// mnist32ForwardFLOPs is one forward pass of the shipped prior's network on one image, as
// torch_bench.py's hooks count it (TestBenchParamsAndFLOPsMatchTorch checks it is).
const mnist32ForwardFLOPs = 601432064

func TestBenchStepJSON(t *testing.T) {
	r := benchJSON(t, "step", "--config", "mnist-32", "--batch", "2", "--steps", "1", "--warmup", "1", "--json")
	if r.Mode != "step" || r.Config != "mnist-32" || r.Batch != 2 || r.Backend != "embedded" || r.Threads != runtime.GOMAXPROCS(0) || r.Torch != nil {
		t.Errorf("report %+v: want step, mnist-32, batch 2, embedded, %d threads, no torch row", r, runtime.GOMAXPROCS(0))
	}
	if want := 3 * 2 * mnist32ForwardFLOPs / 1e9; r.GFLOPPerStep != want {
		t.Errorf("gflop_per_step %g, want 3 × forward × batch 2 = %g", r.GFLOPPerStep, want)
	}
	checkRow(t, "dpsflow", r.benchRow, 2, r.GFLOPPerStep)
}

func TestBenchStepAgainstTorch(t *testing.T) {
	requireTorch(t)
	// On a busy machine spin-waiting OpenMP threads make one step take seconds.
	t.Setenv("OMP_WAIT_POLICY", "PASSIVE")
	// A 768 MiB peak here must not show in PyTorch's row (≈ 270 MiB): Linux carries a
	// parent's peak into the child's ru_maxrss across fork and exec.
	balloon := make([]byte, 768<<20)
	for i := 0; i < len(balloon); i += 4096 {
		balloon[i] = 1
	}
	r := benchJSON(t, "step", "--config", "mnist-32", "--batch", "1", "--steps", "1", "--warmup", "1", "--json", "--torch", torchBenchScript)
	runtime.KeepAlive(balloon)
	if r.PeakRSSMiB < 768 || r.Torch != nil && r.Torch.PeakRSSMiB > 600 {
		t.Errorf("peak RSS %g MiB here (≥ 768 expected), %+v in PyTorch's row (< 600 MiB expected)", r.PeakRSSMiB, r.Torch)
	}
	checkRow(t, "dpsflow", r.benchRow, 1, r.GFLOPPerStep)
	if r.Torch == nil || r.Ratio == nil || r.RSSRatio == nil {
		t.Fatalf("no torch row or ratios: %+v", r)
	}
	checkRow(t, "torch", r.Torch.benchRow, 1, r.GFLOPPerStep)
	if r.Torch.Threads != r.Threads || r.Torch.Params != r.Params || r.Torch.OMPWaitPolicy != "PASSIVE" || !strings.HasPrefix(r.Torch.Version, "1.") && !strings.HasPrefix(r.Torch.Version, "2.") {
		t.Errorf("torch row %+v: want %d threads, %d params, OMP_WAIT_POLICY PASSIVE and a version", *r.Torch, r.Threads, r.Params)
	}
	if *r.Ratio != r.MsPerStep/r.Torch.MsPerStep || *r.RSSRatio != r.PeakRSSMiB/r.Torch.PeakRSSMiB {
		t.Errorf("ratio %g, rss_ratio %g: want %g and %g", *r.Ratio, *r.RSSRatio, r.MsPerStep/r.Torch.MsPerStep, r.PeakRSSMiB/r.Torch.PeakRSSMiB)
	}
	// The text form has both rows and the ratios.
	var text strings.Builder
	printBench(&text, r)
	for _, w := range []string{"dpsflow (embedded)", "pytorch " + r.Torch.Version, "ratio dpsflow/pytorch", "ms/image-step", "GFLOP/s"} {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text report lacks %q:\n%s", w, text.String())
		}
	}
}

func TestBenchTrain(t *testing.T) {
	r := benchJSON(t, "train", "--batch", "1", "--steps", "1", "--json")
	if r.Mode != "train" || r.Config != "mnist-32" || r.Batch != 1 || r.Warmup != 1 {
		t.Errorf("report %+v: want train, mnist-32, batch 1, warm-up 1", r)
	}
	checkRow(t, "dpsflow", r.benchRow, 1, 3*mnist32ForwardFLOPs/1e9)
}

// The weights counted by the FLOP walk are adm's, and PyTorch's network from the reference
// UNet has as many; the forward FLOPs of mnist-32 are what hooks on the running PyTorch
// modules count.
func TestBenchParamsAndFLOPsMatchTorch(t *testing.T) {
	requireTorch(t)
	out, err := exec.Command(benchPython, torchBenchScript, "params", "--flops", "mnist-32").Output()
	if err != nil {
		t.Fatalf("%s params: %v", torchBenchScript, err)
	}
	var torch struct {
		Params map[string]int64 `json:"params"`
		FLOPs  map[string]int64 `json:"flops_forward"`
	}
	if err := json.Unmarshal(out, &torch); err != nil {
		t.Fatalf("%s params: %v\n%s", torchBenchScript, err, out)
	}
	if len(torch.Params) != len(benchNetworks) {
		t.Errorf("torch_bench.py has networks %v, dpsflow bench %v", torch.Params, benchNetworkNames())
	}
	for name, net := range benchNetworks {
		m, err := adm.New(net.config())
		if err != nil {
			t.Fatal(err)
		}
		cost, err := unetForwardCost(net.config())
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(m.NumParameters()); cost.params != got || torch.Params[name] != got {
			t.Errorf("%s: %d weights in adm, %d in the FLOP walk, %d in PyTorch", name, got, cost.params, torch.Params[name])
		}
	}
	if cost, _ := unetForwardCost(adm.SmallMNISTConfig()); cost.flops != mnist32ForwardFLOPs || torch.FLOPs["mnist-32"] != mnist32ForwardFLOPs {
		t.Errorf("mnist-32 forward: %d FLOPs counted here, %d by PyTorch hooks, want %d", cost.flops, torch.FLOPs["mnist-32"], mnist32ForwardFLOPs)
	}
}

// A one-level UNet at 4×4 (P = 16 positions, C = 32, E = 128, 1 input channel) counted by
// hand; and the walk's weights equal adm's for a conv-resampling, plain-embedding layout.
func TestUNetForwardCostClosedForm(t *testing.T) {
	tiny := adm.Config{ImageSize: 4, NumChannels: 32, NumResBlocks: 1, ChannelMult: "1", NumHeads: 1,
		NumHeadChannels: -1, NumHeadsUpsample: -1, UseScaleShiftNorm: true, InChannels: 1}
	const P, C, E = 16, 32, 128
	conv3 := func(in, out int) int64 { return 2 * int64(in*out*9*P) }
	timeEmbed := int64(2*C*E + 2*E*E)
	inConv := conv3(1, C)
	resSame := conv3(C, C) + conv3(C, C) + 2*E*2*C              // two 3×3 convs and the scale-shift linear
	resCat := conv3(2*C, C) + conv3(C, C) + 2*2*C*C*P + 2*E*2*C // concatenated input, 1×1 skip
	attn := int64(2*C*3*C*P + 2*2*P*P*C + 2*C*C*P)              // qkv, qᵀk and a·v, proj_out
	outConv := conv3(C, 1)
	want := timeEmbed + inConv + resSame + (2*resSame + attn) + 2*resCat + outConv
	if want != 3975168 {
		t.Fatalf("hand count %d, worked out as 3975168", want)
	}
	cost, err := unetForwardCost(tiny)
	if err != nil {
		t.Fatal(err)
	}
	if cost.flops != want {
		t.Errorf("tiny UNet: %d FLOPs, hand count %d", cost.flops, want)
	}
	resnet := adm.Config{ImageSize: 16, NumChannels: 32, NumResBlocks: 2, ChannelMult: "1,2", AttentionResolutions: "2",
		NumHeads: 2, NumHeadChannels: -1, NumHeadsUpsample: -1, InChannels: 3}
	for _, cfg := range []adm.Config{tiny, resnet} {
		m, err := adm.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := unetForwardCost(cfg); c.params != int64(m.NumParameters()) {
			t.Errorf("%+v: walk counts %d weights, adm %d", cfg, c.params, m.NumParameters())
		}
	}
}

// mnist-32 is the shipped prior's network.
func TestBenchMNISTIsShippedPrior(t *testing.T) {
	shipped, err := adm.LoadConfig("../../models/mnist/model_config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	shipped.ModelPath = ""
	if got := benchNetworks["mnist-32"].config(); !reflect.DeepEqual(got, shipped) {
		t.Errorf("mnist-32 %+v\nshipped %+v", got, shipped)
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"step", "--config", "cifar"}, []string{`--config "cifar"`, "ffhq-256, mnist-32"}},
		{[]string{"train", "--config", "x"}, []string{`--config "x"`, "mnist-32"}},
		{[]string{"step", "--batch", "0"}, []string{"--batch 0"}},
		{[]string{"train", "--batch", "-3"}, []string{"--batch -3"}},
		{[]string{"step", "--steps", "0"}, []string{"--steps 0"}},
		{[]string{"train", "--steps", "0"}, []string{"--steps 0"}},
		{[]string{"step", "--warmup", "-1"}, []string{"--warmup -1"}},
		{[]string{"step", "--steps", "1000", "--warmup", "1"}, []string{"--steps 1000", "1000"}},
		{[]string{"step", "--torch", "/nowhere/torch_bench.py"}, []string{"--torch /nowhere/torch_bench.py"}},
		{[]string{"step", "--batch", "two"}, []string{"batch", `"two"`}},
	} {
		out, code, err := runCLI(t, append([]string{"bench"}, c.args...)...)
		if code != exitUsage || err == nil {
			t.Errorf("bench %v: exit %d (%v), want 2\n%s", c.args, code, err, out)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("bench %v: %q does not say %q", c.args, err, w)
			}
		}
	}
}
