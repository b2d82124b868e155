package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dpsflow/dpsflow/internal/procstat"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/train"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/spf13/cobra"
)

// benchNetwork is a network `dpsflow bench` times. testdata/bench/torch_bench.py defines the
// same names with the same networks (TestBenchParamsMatchTorch compares them).
type benchNetwork struct {
	config func() adm.Config
	steps  int // default number of timed steps: a few seconds of DPS steps at batch 1
}

// benchNetworks: mnist-32 is the shipped prior's network (models/mnist/model_config.yaml),
// ffhq-256 the reference FFHQ model (93.6 M parameters).
var benchNetworks = map[string]benchNetwork{
	"mnist-32": {adm.SmallMNISTConfig, 10},
	"ffhq-256": {adm.FFHQConfig, 2},
}

func benchNetworkNames() []string {
	names := make([]string, 0, len(benchNetworks))
	for n := range benchNetworks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// benchSRFactor is the ×4 average-pool super-resolution of the timed DPS step.
const benchSRFactor = 4

// benchPython runs the --torch script.
const benchPython = "/usr/bin/python3"

// benchFlags are the command line of `dpsflow bench step|train`.
type benchFlags struct {
	config                string
	batch, steps, warmup  int
	backend, torch        string
	cpuProfile            string
	asJSON, stepsExplicit bool
}

// benchRow is one implementation's timing.
type benchRow struct {
	MsPerStep      float64 `json:"ms_per_step"`
	MsPerImageStep float64 `json:"ms_per_image_step"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	GFLOPS         float64 `json:"gflops"`
}

// torchRow is the PyTorch twin's timing; its GFLOP/s use dpsflow's FLOP count.
type torchRow struct {
	benchRow
	Threads int    `json:"threads"`
	Version string `json:"torch_version"`
	Params  int64  `json:"params"`
	// OMPWaitPolicy is $OMP_WAIT_POLICY as the child got it ("" = OpenMP's default, which
	// spin-waits and is many times slower on a busy machine).
	OMPWaitPolicy string `json:"omp_wait_policy"`
}

// benchReport is what `dpsflow bench step|train --json` prints.
type benchReport struct {
	Mode    string `json:"mode"` // "step" (DPS) or "train"
	Config  string `json:"config"`
	Batch   int    `json:"batch"`
	Backend string `json:"backend"`
	Threads int    `json:"threads"`
	Steps   int    `json:"steps"`  // timed
	Warmup  int    `json:"warmup"` // run before timing (compilation included)
	Params  int64  `json:"params"`
	// LoadAvg is the 1-minute load average before timing (0 where /proc is missing): on a
	// busy machine both rows slow down, PyTorch's spin-waiting OpenMP threads far more.
	LoadAvg float64 `json:"load_avg_1m"`
	benchRow
	GFLOPPerStep    float64   `json:"gflop_per_step"`
	GFLOPForward    float64   `json:"gflop_forward"` // one forward pass of the whole batch
	FLOPConvention  string    `json:"flop_convention"`
	Torch           *torchRow `json:"torch,omitempty"`
	Ratio           *float64  `json:"ratio,omitempty"`     // dpsflow ms/step ÷ PyTorch ms/step
	RSSRatio        *float64  `json:"rss_ratio,omitempty"` // dpsflow peak RSS ÷ PyTorch peak RSS
	TorchScriptPath string    `json:"torch_script,omitempty"`
}

// flopConvention says how gflop_per_step is counted (in the JSON and in --help).
const flopConvention = "3 × forward; forward = convolutions, linear layers and attention matmuls, a multiply-add = 2 FLOPs"

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time a DPS step or a training step on random weights, optionally against PyTorch",
		Long: `bench times one DPS step (bench step) or one training step (bench train) of an ADM UNet with
random weights, float32, and prints ms per step, ms per image-step, peak RSS and achieved GFLOP/s.
With --torch testdata/bench/torch_bench.py it then runs the same step on the same network in
PyTorch (/usr/bin/python3, torch.set_num_threads = GOMAXPROCS) and prints both rows and the ratios.`,
	}
	cmd.AddCommand(newBenchModeCmd("step"), newBenchModeCmd("train"))
	return cmd
}

func newBenchModeCmd(mode string) *cobra.Command {
	var f benchFlags
	what := map[string]string{
		"step": `one DPS step: UNet forward, Tweedie x̂0 (clipped), the ×4 average-pool super-resolution
operator, the gradient of ‖y − A(x̂0)‖ back to x_t through the UNet, and the DDPM update (nodes/sampler's
fused step)`,
		"train": `one training step exactly as 'dpsflow train' takes it: x_t = √ᾱ x0 + √(1−ᾱ) ε at random t,
the MSE of ε̂, the gradients of every weight, Adam (lr 5e-4, warmup 100) and the EMA (0.995)`,
	}[mode]
	defaultBatch := map[string]int{"step": 1, "train": 16}[mode]
	cmd := &cobra.Command{
		Use:   mode,
		Short: map[string]string{"step": "Time one DPS step (UNet forward, ×4 SR, gradient to x_t, update)", "train": "Time one training step (ε-loss, gradients, Adam, EMA)"}[mode],
		Long: `bench ` + mode + ` times ` + what + `.

Networks (--config): mnist-32 is the shipped MNIST prior's network (models/mnist/model_config.yaml),
ffhq-256 the reference FFHQ model (93.6 M parameters). Weights are random, float32.
The first --warmup steps (compilation, caches) are not timed; then --steps steps are.
Threads: GOMAXPROCS (set the GOMAXPROCS environment variable to change it).
Peak RSS is the process's VmHWM: everything bench did, the network and the compilation included.
GFLOP per step (gflop_per_step): 3 × the forward pass's FLOPs, counted from the network's
layout: convolutions, linear layers and attention matmuls, a multiply-add counted as 2; norms,
activations, softmax and other element-wise ops not counted. The factor 3 is the usual
forward + backward convention; a DPS step only needs the gradient to x_t, so its true count
is nearer 2 × forward (a training step's is 3 ×). GFLOP/s = gflop_per_step ÷ seconds per step.

With --torch SCRIPT (testdata/bench/torch_bench.py) the same step on the same network runs in
PyTorch afterwards, as a child process of /usr/bin/python3 with torch.set_num_threads(GOMAXPROCS);
the report then has a torch row, "ratio" (dpsflow ms/step ÷ PyTorch ms/step) and "rss_ratio".
Compare on an idle machine: the report gives the load average, and on a busy one PyTorch's
OpenMP threads spin-wait (OMP_WAIT_POLICY=PASSIVE, passed on to the child, softens that).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.stepsExplicit = cmd.Flags().Changed("steps")
			if err := f.check(mode); err != nil {
				return err
			}
			return runBench(cmd.OutOrStdout(), cmd.ErrOrStderr(), mode, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "mnist-32", "network: "+strings.Join(benchNetworkNames(), " or "))
	fl.IntVar(&f.batch, "batch", defaultBatch, "images per step")
	fl.IntVar(&f.steps, "steps", 0, "timed steps (default: 10 for mnist-32, 2 for ffhq-256)")
	fl.IntVar(&f.warmup, "warmup", 1, "untimed steps first (the first one compiles)")
	fl.StringVar(&f.backend, "backend", "", backendFlagUsage)
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	fl.StringVar(&f.torch, "torch", "", "also time PyTorch with this script (testdata/bench/torch_bench.py)")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of dpsflow's steps (warm-up included) to this file, for go tool pprof")
	return cmd
}

// check refuses bad flags before anything heavy runs; each message names its flag.
func (f *benchFlags) check(mode string) error {
	net, ok := benchNetworks[f.config]
	if !ok {
		return usageError{fmt.Errorf("--config %q: unknown network; valid: %s", f.config, strings.Join(benchNetworkNames(), ", "))}
	}
	if f.batch < 1 {
		return usageError{fmt.Errorf("--batch %d: must be at least 1", f.batch)}
	}
	if !f.stepsExplicit {
		f.steps = net.steps
	}
	if f.steps < 1 {
		return usageError{fmt.Errorf("--steps %d: must be at least 1", f.steps)}
	}
	if f.warmup < 0 {
		return usageError{fmt.Errorf("--warmup %d: must not be negative", f.warmup)}
	}
	// A DPS run respaces the 1000-step schedule to warmup+steps steps.
	if n := schedule.Default().Len(); mode == "step" && f.warmup+f.steps > n {
		return usageError{fmt.Errorf("--steps %d + --warmup %d: at most %d DPS steps in all (the schedule's length)", f.steps, f.warmup, n)}
	}
	if f.torch != "" {
		if _, err := os.Stat(f.torch); err != nil {
			return usageError{fmt.Errorf("--torch %s: %w", f.torch, err)}
		}
		if _, err := os.Stat(benchPython); err != nil {
			return usageError{fmt.Errorf("--torch %s needs %s: %w", f.torch, benchPython, err)}
		}
	}
	return nil
}

func runBench(stdout, stderr io.Writer, mode string, f benchFlags) error {
	cfg := benchNetworks[f.config].config()
	cost, err := unetForwardCost(cfg)
	if err != nil {
		return fmt.Errorf("bench: network %s: %w", f.config, err)
	}
	backend, err := xla.New(f.backend)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	if !f.asJSON {
		fmt.Fprintf(stderr, "timing %d %s steps of %s, batch %d, after %d warm-up…\n", f.steps, map[string]string{"step": "DPS", "train": "training"}[mode], f.config, f.batch, f.warmup)
	}
	load := loadAverage()
	measure := map[string]func(backends.Backend, adm.Config, benchFlags) (time.Duration, error){
		"step": timeDPSStep, "train": timeTrainStep}[mode]
	if f.cpuProfile != "" {
		prof, err := os.Create(f.cpuProfile)
		if err != nil {
			return usageError{fmt.Errorf("--cpuprofile: %w", err)}
		}
		if err := pprof.StartCPUProfile(prof); err != nil {
			prof.Close()
			return fmt.Errorf("--cpuprofile %s: %w", f.cpuProfile, err)
		}
	}
	perStep, err := measure(backend, cfg, f)
	if f.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("bench %s %s: %w", mode, f.config, err)
	}
	gflop := 3 * float64(cost.flops) * float64(f.batch) / 1e9
	r := benchReport{Mode: mode, Config: f.config, Batch: f.batch, Backend: backend.Name(),
		Threads: runtime.GOMAXPROCS(0), Steps: f.steps, Warmup: f.warmup, Params: cost.params, LoadAvg: load,
		benchRow:     newBenchRow(perStep.Seconds()*1000, f.batch, procstat.PeakRSSMiB(), gflop),
		GFLOPPerStep: gflop, GFLOPForward: gflop / 3, FLOPConvention: flopConvention}
	if f.torch != "" {
		if !f.asJSON {
			fmt.Fprintf(stderr, "timing the same in PyTorch (%s)…\n", f.torch)
		}
		t, err := runTorchBench(f, mode, r.Threads)
		if err != nil {
			return err
		}
		t.GFLOPS = gflop / (t.MsPerStep / 1000)
		ratio, rss := r.MsPerStep/t.MsPerStep, r.PeakRSSMiB/t.PeakRSSMiB
		r.Torch, r.Ratio, r.RSSRatio, r.TorchScriptPath = t, &ratio, &rss, f.torch
	}
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printBench(stdout, r)
	return nil
}

func newBenchRow(msPerStep float64, batch int, rss, gflop float64) benchRow {
	return benchRow{MsPerStep: msPerStep, MsPerImageStep: msPerStep / float64(batch), PeakRSSMiB: rss,
		GFLOPS: gflop / (msPerStep / 1000)}
}

func printBench(w io.Writer, r benchReport) {
	fmt.Fprintf(w, "bench %s %s: batch %d, %d threads, %d timed steps after %d warm-up, %.2f M params, %.2f GFLOP/step\n",
		r.Mode, r.Config, r.Batch, r.Threads, r.Steps, r.Warmup, float64(r.Params)/1e6, r.GFLOPPerStep)
	fmt.Fprintf(w, "%-30s %12s %16s %14s %9s\n", "", "ms/step", "ms/image-step", "peak RSS MiB", "GFLOP/s")
	row := func(name string, b benchRow) {
		fmt.Fprintf(w, "%-30s %12.1f %16.1f %14.0f %9.2f\n", name, b.MsPerStep, b.MsPerImageStep, b.PeakRSSMiB, b.GFLOPS)
	}
	row("dpsflow ("+r.Backend+")", r.benchRow)
	if r.Torch != nil {
		name := "pytorch " + r.Torch.Version
		if r.Torch.OMPWaitPolicy != "" {
			name += " (OMP " + strings.ToLower(r.Torch.OMPWaitPolicy) + ")"
		}
		row(name, r.Torch.benchRow)
		fmt.Fprintf(w, "ratio dpsflow/pytorch: %.2f× time per step, %.2f× peak RSS\n", *r.Ratio, *r.RSSRatio)
	}
	if r.LoadAvg > float64(r.Threads) {
		fmt.Fprintf(w, "note: the machine was busy (load %.1f for %d threads): both times are inflated, PyTorch's "+
			"most, as its OpenMP threads spin-wait (OMP_WAIT_POLICY=PASSIVE softens that)\n", r.LoadAvg, r.Threads)
	}
}

// loadAverage is the 1-minute load average, 0 where /proc/loadavg is missing.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(fields[0], 64)
	return v
}

// timeSteps runs warmup+steps steps through run, which calls done after each, and returns
// the mean wall time of the steps after the warm-up ones.
func timeSteps(warmup, steps int, run func(done func()) error) (time.Duration, error) {
	var marks []time.Time
	start := time.Now()
	if err := run(func() { marks = append(marks, time.Now()) }); err != nil {
		return 0, err
	}
	if len(marks) != warmup+steps {
		return 0, fmt.Errorf("%d steps ran, %d expected", len(marks), warmup+steps)
	}
	from := start
	if warmup > 0 {
		from = marks[warmup-1]
	}
	return marks[len(marks)-1].Sub(from) / time.Duration(steps), nil
}

// timeDPSStep times the sampler's DPS steps (ps guidance, scale 1) on a random-weight
// network, as nodes/prior/adm's BenchmarkDPSStep does, with the ×4 average-pool operator.
func timeDPSStep(backend backends.Backend, cfg adm.Config, f benchFlags) (time.Duration, error) {
	m, err := adm.New(cfg)
	if err != nil {
		return 0, err
	}
	ctx := mlctx.New()
	m.Init(ctx, 1)
	op, err := operator.NewAvgPoolSR(benchSRFactor)
	if err != nil {
		return 0, err
	}
	nm, err := noise.NewGaussian(0.05)
	if err != nil {
		return 0, err
	}
	s, err := sampler.New(backend, m.Prior(ctx), schedule.Default(), op, nm, sampler.Config{
		Steps: f.warmup + f.steps, Guidance: guidance.Config{Method: guidance.PS, Scale: 1}})
	if err != nil {
		return 0, err
	}
	xShape := shapes.Make(dtypes.Float32, f.batch, inChannels(cfg), cfg.ImageSize, cfg.ImageSize)
	yShape, err := op.MeasurementShape(xShape)
	if err != nil {
		return 0, err
	}
	y := tensors.FromShape(yShape)
	return timeSteps(f.warmup, f.steps, func(done func()) error {
		_, err := s.RunWith(context.Background(), y, xShape, 1, sampler.Hooks{Progress: func(int, int, []float64) { done() }})
		return err
	})
}

// timeTrainStep times nodes/train's step (Trainer.Step: the host batch, then the compiled
// loss, gradients, Adam and EMA) on random images, with `dpsflow train`'s settings.
func timeTrainStep(backend backends.Backend, cfg adm.Config, f benchFlags) (time.Duration, error) {
	m, err := adm.New(cfg)
	if err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "dpsflow-bench-train-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	c := inChannels(cfg)
	tr, err := train.New(backend, m, randomImages(f.batch, c, cfg.ImageSize, 1), randomImages(1, c, cfg.ImageSize, 2), train.Config{
		OutDir: dir, Steps: f.warmup + f.steps, BatchSize: f.batch, LR: trainDefaultLR, WarmupSteps: trainDefaultWarmup,
		EMADecay: trainDefaultEMA, Seed: 1, Quiet: true})
	if err != nil {
		return 0, err
	}
	return timeSteps(f.warmup, f.steps, func(done func()) error {
		for range f.warmup + f.steps {
			if _, err := tr.Step(); err != nil {
				return err
			}
			done()
		}
		return nil
	})
}

// randomImages are n uniform random images in [-1, 1].
func randomImages(n, c, size int, seed uint64) train.Images {
	rng := rand.New(rand.NewPCG(seed, 0xbe9c))
	px := make([]float32, n*c*size*size)
	for i := range px {
		px[i] = float32(2*rng.Float64() - 1)
	}
	return train.Images{Pixels: px, N: n, C: c, H: size, W: size}
}

// torchOutput is what torch_bench.py prints.
type torchOutput struct {
	MsPerStep      float64 `json:"ms_per_step"`
	MsPerImageStep float64 `json:"ms_per_image_step"`
	PeakRSSMiB     float64 `json:"peak_rss_mib"`
	Threads        int     `json:"threads"`
	Torch          string  `json:"torch"`
	Params         int64   `json:"params"`
}

// runTorchBench runs the PyTorch twin as a child process and reads its JSON line.
func runTorchBench(f benchFlags, mode string, threads int) (*torchRow, error) {
	out, err := runTorchScript(f.torch, mode, "--config", f.config, "--batch", strconv.Itoa(f.batch),
		"--steps", strconv.Itoa(f.steps), "--warmup", strconv.Itoa(f.warmup), "--threads", strconv.Itoa(threads))
	if err != nil {
		return nil, err
	}
	if out.MsPerStep <= 0 || out.PeakRSSMiB <= 0 {
		return nil, fmt.Errorf("--torch %s: no positive ms_per_step and peak_rss_mib in its output", f.torch)
	}
	return &torchRow{benchRow: benchRow{MsPerStep: out.MsPerStep, MsPerImageStep: out.MsPerImageStep, PeakRSSMiB: out.PeakRSSMiB},
		Threads: out.Threads, Version: out.Torch, Params: out.Params, OMPWaitPolicy: os.Getenv("OMP_WAIT_POLICY")}, nil
}

// runTorchScript runs `python3 script args…` and decodes the last line of its stdout;
// errors name the script and end with its stderr.
func runTorchScript(script string, args ...string) (*torchOutput, error) {
	var stdout, stderr bytes.Buffer
	c := exec.Command(benchPython, append([]string{script}, args...)...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("--torch %s: %s %s: %w\n%s", script, benchPython, script, err, tail(stderr.String(), 2000))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out torchOutput
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		return nil, fmt.Errorf("--torch %s: its last output line is not JSON (%v): %q", script, err, tail(stdout.String(), 500))
	}
	return &out, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// unetCost is the analytic cost of one ADM UNet forward pass on one image: the FLOPs of its
// convolutions, linear layers and attention matmuls (a multiply-add counts 2), and its
// number of weights, walking the network as adm.New lays it out (guided-diffusion's
// UNetModel).
type unetCost struct{ flops, params int64 }

func (c *unetCost) conv(in, out, k, size int) {
	c.flops += 2 * int64(in*out*k*k) * int64(size*size)
	c.params += int64(in*out*k*k + out)
}

func (c *unetCost) linear(in, out int) {
	c.flops += 2 * int64(in*out)
	c.params += int64(in*out + out)
}

func (c *unetCost) norm(ch int) { c.params += int64(2 * ch) }

// resBlock goes from in channels at the input size to out channels at outSize (half or
// twice for the up/down-sampling blocks, whose convolutions run after the resampling).
func (c *unetCost) resBlock(in, out, outSize, emb int, scaleShift bool) {
	c.norm(in)
	c.conv(in, out, 3, outSize)
	embOut := out
	if scaleShift {
		embOut = 2 * out
	}
	c.linear(emb, embOut)
	c.norm(out)
	c.conv(out, out, 3, outSize)
	if in != out {
		c.conv(in, out, 1, outSize)
	}
}

// attention over size² positions: qkv and proj_out are 1×1 convolutions; qᵀk and the
// weighted sum of v are 2·T²·ch FLOPs each over all heads together.
func (c *unetCost) attention(ch, size int) {
	T := int64(size * size)
	c.norm(ch)
	c.conv(ch, 3*ch, 1, size)
	c.flops += 2 * 2 * T * T * int64(ch)
	c.conv(ch, ch, 1, size)
}

// unetForwardCost counts one forward pass of cfg's UNet on one image.
func unetForwardCost(cfg adm.Config) (unetCost, error) {
	m, err := adm.New(cfg) // validates cfg; InChannels and the defaults resolved
	if err != nil {
		return unetCost{}, err
	}
	cfg = m.Config()
	mult, attnDS, err := benchLayout(cfg)
	if err != nil {
		return unetCost{}, err
	}
	inCh := inChannels(cfg)
	C, E, size := cfg.NumChannels, 4*cfg.NumChannels, cfg.ImageSize
	var c unetCost
	c.linear(C, E)
	c.linear(E, E)
	ch := mult[0] * C
	c.conv(inCh, ch, 3, size)
	chans, ds := []int{ch}, 1
	for level, mu := range mult {
		for range cfg.NumResBlocks {
			c.resBlock(ch, mu*C, size, E, cfg.UseScaleShiftNorm)
			ch = mu * C
			if attnDS[ds] {
				c.attention(ch, size)
			}
			chans = append(chans, ch)
		}
		if level != len(mult)-1 {
			size /= 2
			c.resample(ch, size, E, cfg)
			chans = append(chans, ch)
			ds *= 2
		}
	}
	c.resBlock(ch, ch, size, E, cfg.UseScaleShiftNorm)
	c.attention(ch, size)
	c.resBlock(ch, ch, size, E, cfg.UseScaleShiftNorm)
	for level := len(mult) - 1; level >= 0; level-- {
		for i := range cfg.NumResBlocks + 1 {
			ich := chans[len(chans)-1]
			chans = chans[:len(chans)-1]
			c.resBlock(ch+ich, C*mult[level], size, E, cfg.UseScaleShiftNorm)
			ch = C * mult[level]
			if attnDS[ds] {
				c.attention(ch, size)
			}
			if level > 0 && i == cfg.NumResBlocks {
				size *= 2
				c.resample(ch, size, E, cfg)
				ds /= 2
			}
		}
	}
	outCh := inCh
	if cfg.LearnSigma {
		outCh *= 2
	}
	c.norm(ch)
	c.conv(ch, outCh, 3, size)
	return c, nil
}

// inChannels is the image channels of cfg: in_channels, 3 (RGB) when not given.
func inChannels(cfg adm.Config) int {
	if cfg.InChannels == 0 {
		return 3
	}
	return cfg.InChannels
}

// resample is a down- or up-sampling to outSize: a res-block (resblock_updown) or a 3×3
// convolution at outSize (guided-diffusion's conv_resample).
func (c *unetCost) resample(ch, outSize, emb int, cfg adm.Config) {
	if cfg.ResblockUpdown {
		c.resBlock(ch, ch, outSize, emb, cfg.UseScaleShiftNorm)
		return
	}
	c.conv(ch, ch, 3, outSize)
}

// benchLayout reads channel_mult (guided-diffusion's default for the size when empty) and
// attention_resolutions (as downsampling factors) of a config adm.New accepted.
func benchLayout(cfg adm.Config) ([]int, map[int]bool, error) {
	defaults := map[int]string{256: "1,1,2,2,4,4", 128: "1,1,2,3,4", 64: "1,2,3,4"}
	text := cfg.ChannelMult
	if text == "" {
		text = defaults[cfg.ImageSize]
	}
	var mult []int
	for _, p := range strings.Split(text, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, nil, fmt.Errorf("channel_mult %q: %w", text, err)
		}
		mult = append(mult, v)
	}
	attn := map[int]bool{}
	if strings.TrimSpace(cfg.AttentionResolutions) == "" {
		return mult, attn, nil
	}
	for _, p := range strings.Split(cfg.AttentionResolutions, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return nil, nil, errors.Join(fmt.Errorf("attention_resolutions %q", cfg.AttentionResolutions), err)
		}
		attn[cfg.ImageSize/v] = true
	}
	return mult, attn, nil
}
