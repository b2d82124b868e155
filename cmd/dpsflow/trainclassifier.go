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

	"github.com/dpsflow/dpsflow/nodes/metrics/mnistnet"
	"github.com/spf13/cobra"
)

// classifierReport is DIR/train.json of `dpsflow train-classifier`.
type classifierReport struct {
	mnistnet.TrainResult
	Command string `json:"command"` // the command line that made the file
}

func newTrainClassifierCmd() *cobra.Command {
	cfg := mnistnet.DefaultTrainConfig()
	var out, data string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "train-classifier --out DIR",
		Short: "Train the small MNIST classifier used for class accuracy and FD/KID features",
		Long: `train-classifier fits the small convolutional MNIST classifier of nodes/metrics/mnistnet
(three 3×3 conv + max-pool stages, a 128-d ReLU feature layer, 10 logits) on the MNIST training
split with Adam (linear warmup, cosine decay) and random shifts of up to --shift pixels, scores it
on the test split and writes DIR/model.safetensors (float32 weights under PyTorch-style names) and
DIR/train.json (the recipe, final training loss, test accuracy, wall time, backend, Go version).
Training is deterministic for a given seed and backend. Ctrl-C stops it without writing a model.

The shipped models/mnistnet was made by 'dpsflow train-classifier --out models/mnistnet'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("--out DIR is required")}
			}
			return runTrainClassifier(cmd, cfg, data, out, quiet)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "output directory: model.safetensors and train.json")
	fl.IntVar(&cfg.Steps, "steps", cfg.Steps, "optimizer steps")
	fl.IntVar(&cfg.Batch, "batch", cfg.Batch, "images per step")
	fl.Float64Var(&cfg.LR, "lr", cfg.LR, "Adam's peak learning rate")
	fl.IntVar(&cfg.WarmupSteps, "warmup", cfg.WarmupSteps, "linear learning-rate warmup steps (then cosine decay to 0)")
	fl.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the initial weights, batch order and shifts")
	fl.IntVar(&cfg.Shift, "shift", cfg.Shift, "augmentation: random shifts of up to this many pixels")
	fl.IntVar(&cfg.TestImages, "test-images", 0, "test images scored at the end (0: all 10000)")
	fl.StringVar(&data, "data", "", "folder with the four MNIST .gz files (default: the GoMNIST Go module)")
	fl.StringVar(&cfg.Backend, "backend", "", backendFlagUsage)
	fl.BoolVar(&quiet, "quiet", false, "no progress lines")
	return cmd
}

func runTrainClassifier(cmd *cobra.Command, cfg mnistnet.TrainConfig, data, out string, quiet bool) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// Ctrl-C or SIGTERM: Train stops between steps and nothing is written.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills at once
	w := cmd.ErrOrStderr()
	start, sum, count := time.Now(), 0.0, 0
	progress := func(step int, loss float64) {
		sum, count = sum+loss, count+1
		if !quiet && (step%100 == 0 || step == cfg.Steps) {
			fmt.Fprintf(w, "step %d/%d  loss %.4f (mean of the last %d)  %s\n", step, cfg.Steps, sum/float64(count),
				count, time.Since(start).Round(time.Second))
			sum, count = 0, 0
		}
	}
	modelPath := filepath.Join(out, "model.safetensors")
	res, err := mnistnet.Train(ctx, cfg, data, modelPath, progress)
	if err != nil {
		return err
	}
	report := classifierReport{TrainResult: res, Command: givenCommandLine(cmd)}
	raw, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	jsonPath := filepath.Join(out, "train.json")
	if err := os.WriteFile(jsonPath, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "trained %d steps (%.2f epochs) in %s; final training loss %.4f; test accuracy %.2f %% on %d images\nwrote %s and %s\n",
		res.Steps, res.Epochs, time.Duration(res.TrainSeconds*float64(time.Second)).Round(time.Second), res.FinalLoss,
		100*res.TestAccuracy, res.TestImages, modelPath, jsonPath)
	return nil
}
