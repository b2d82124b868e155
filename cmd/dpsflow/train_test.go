package main

import (
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
)

// pngDigits writes n 28×28 grayscale PNGs (a bright bar at a varying row).
func pngDigits(t *testing.T, n int) string {
	dir := t.TempDir()
	for i := range n {
		img := image.NewGray(image.Rect(0, 0, 28, 28))
		for x := 4; x < 24; x++ {
			img.SetGray(x, 6+i%16, color.Gray{255})
		}
		f, err := os.Create(filepath.Join(dir, string(rune('a'+i))+".png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

func TestTrainWritesModelAndReportAndResumes(t *testing.T) {
	data, out := pngDigits(t, 6), t.TempDir()
	args := []string{"train", "--out", out, "--steps", "1", "--batch", "2", "--data", data, "--quiet"}
	if text, code, err := runCLI(t, args...); code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	// Continue the same run to 2 steps: it resumes from the checkpoint of step 1.
	args[4] = "2"
	text, code, err := runCLI(t, args...)
	if code != 0 || !strings.Contains(text, "trained 2 steps (1 in this run") ||
		!strings.Contains(text, "continuing from the checkpoint at step 1 of 2 (1 steps to go)") {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	// model_config.yaml beside the weights: the folder loads as a model.
	cfgPath := filepath.Join(out, "model_config.yaml")
	cfg, err := adm.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	want := adm.SmallMNISTConfig()
	want.ModelPath = "model.safetensors"
	if cfg != want {
		t.Errorf("%s: %+v, want %+v", cfgPath, cfg, want)
	}
	grid := filepath.Join(t.TempDir(), "g.png")
	if text, code, err := runCLI(t, "model", "sample", "--model-config", cfgPath, "--checkpoint", filepath.Join(out, "model.safetensors"),
		"--steps", "1", "--n", "1", "--quiet", "--out", grid); code != 0 {
		t.Errorf("model sample with the trained folder: exit %d %v\n%s", code, err, text)
	}
	// --steps below the checkpoint is refused, not reported as trained.
	args[4] = "1"
	if _, code, err := runCLI(t, args...); code != 2 || err == nil || !strings.Contains(err.Error(), "--steps 1: the checkpoint") || !strings.Contains(err.Error(), "already at step 2") {
		t.Errorf("--steps below the checkpoint: exit %d, %v", code, err)
	}

	var report struct {
		Steps       int      `json:"steps"`
		StartStep   int      `json:"start_step"`
		RunningLoss float64  `json:"running_loss"`
		HeldOutLoss float64  `json:"held_out_loss"`
		Seconds     *float64 `json:"seconds"`
		ImagesSeen  int      `json:"images_seen"`
		Command     string   `json:"command"`
		Machine     struct {
			Backend   string `json:"backend"`
			CPUs      int    `json:"cpus"`
			GoVersion string `json:"go_version"`
		} `json:"machine"`
		Config struct {
			Steps int    `json:"steps"`
			Batch int    `json:"batch"`
			Data  string `json:"data"`
		} `json:"config"`
		Data struct {
			Train int `json:"train_images"`
			Test  int `json:"test_images"`
		} `json:"data"`
	}
	readJSON(t, filepath.Join(out, "train.json"), &report)
	if report.Steps != 2 || report.StartStep != 1 || report.Seconds == nil || !(report.HeldOutLoss > 0) ||
		!(report.RunningLoss > 0) || report.Config.Batch != 2 || report.Config.Data != data ||
		report.Data.Train != 5 || report.Data.Test != 1 {
		t.Errorf("train.json: %+v", report)
	}
	// How the file was made: the command as given (flags in alphabetical order), the images
	// seen by both processes, the machine of the last one.
	if want := "dpsflow train --batch 2 --data " + data + " --out " + out + " --quiet --steps 2"; report.Command != want {
		t.Errorf("train.json command %q, want %q", report.Command, want)
	}
	if report.ImagesSeen != 4 || report.Machine.CPUs != runtime.NumCPU() || report.Machine.GoVersion != runtime.Version() ||
		!strings.HasPrefix(report.Machine.Backend, "embedded") {
		t.Errorf("train.json images_seen %d, machine %+v", report.ImagesSeen, report.Machine)
	}

	weights, meta, err := checkpoint.ReadSafetensors(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	model, err := adm.New(adm.SmallMNISTConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.CheckAgainst(weights, model.ParameterShapes()); err != nil {
		t.Errorf("exported weights do not fit the model: %v", err)
	}
	if meta["dpsflow.weights"] != "ema" || meta["dpsflow.model"] != "adm" || meta["dpsflow.steps"] != "2" {
		t.Errorf("metadata %v", meta)
	}
}

func TestTrainUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"train"},
		{"train", "--out", t.TempDir(), "--data", t.TempDir()},
		{"train", "--out", t.TempDir(), "--data", pngDigits(t, 3), "--batch", "0"},
		{"train", "--out", t.TempDir(), "--lr", "nope"},
		{"train", "--out", t.TempDir(), "--data", pngDigits(t, 3), "--batch", "1", "--lr-schedule", "step"},
		{"train", "--out", t.TempDir(), "--data", pngDigits(t, 3), "--batch", "1", "--final-lr", "1e-5"},
	} {
		if text, code, err := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%v), want 2\n%s", args, code, err, text)
		}
	}
}

func TestTrainCosineScheduleIsRecorded(t *testing.T) {
	data, out := pngDigits(t, 6), t.TempDir()
	if text, code, err := runCLI(t, "train", "--out", out, "--steps", "2", "--batch", "2", "--data", data, "--quiet",
		"--warmup", "0", "--lr-schedule", "cosine", "--lr-decay-steps", "5", "--final-lr", "1e-5"); code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	var report struct {
		Config struct {
			LRSchedule   string  `json:"lr_schedule"`
			LRDecaySteps int     `json:"lr_decay_steps"`
			FinalLR      float64 `json:"final_lr"`
		} `json:"config"`
	}
	readJSON(t, filepath.Join(out, "train.json"), &report)
	if report.Config.LRSchedule != "cosine" || report.Config.LRDecaySteps != 5 || report.Config.FinalLR != 1e-5 {
		t.Errorf("train.json config: %+v", report.Config)
	}
	_, meta, err := checkpoint.ReadSafetensors(filepath.Join(out, "model.safetensors"))
	if err != nil || meta["dpsflow.lr_schedule"] != "cosine to 1e-05 at step 5" {
		t.Errorf("metadata %v (%v)", meta, err)
	}
	// Continuing past --steps is allowed (the decay's end is fixed); another final rate is not.
	if text, code, err := runCLI(t, "train", "--out", out, "--steps", "3", "--batch", "2", "--data", data, "--quiet",
		"--warmup", "0", "--lr-schedule", "cosine", "--lr-decay-steps", "5", "--final-lr", "2e-5"); code != 2 ||
		err == nil || !strings.Contains(err.Error(), "learning-rate schedule cosine to 1e-05 at step 5, now cosine to 2e-05 at step 5") {
		t.Errorf("another --final-lr: exit %d, %v\n%s", code, err, text)
	}
}

func TestTrainInitFrom(t *testing.T) {
	data, first, second := pngDigits(t, 6), t.TempDir(), t.TempDir()
	if text, code, err := runCLI(t, "train", "--out", first, "--steps", "1", "--batch", "2", "--data", data, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	init := filepath.Join(first, "model.safetensors")
	raw, err := os.ReadFile(init)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	args := []string{"train", "--out", second, "--steps", "1", "--batch", "2", "--data", data, "--quiet", "--seed", "3", "--init-from", init}
	if text, code, err := runCLI(t, args...); code != 0 {
		t.Fatalf("warm start: exit %d: %v\n%s", code, err, text)
	}
	var report struct {
		Steps      int    `json:"steps"`
		ImagesSeen int    `json:"images_seen"`
		InitSHA256 string `json:"init_sha256"`
		Command    string `json:"command"`
		Config     struct {
			InitFrom string `json:"init_from"`
		} `json:"config"`
	}
	readJSON(t, filepath.Join(second, "train.json"), &report)
	if report.Steps != 1 || report.ImagesSeen != 2 || report.InitSHA256 != hex.EncodeToString(sum[:]) ||
		report.Config.InitFrom != init || !strings.Contains(report.Command, " --init-from "+init+" ") {
		t.Errorf("train.json: %+v", report)
	}

	if _, meta, err := checkpoint.ReadSafetensors(filepath.Join(second, "model.safetensors")); err != nil ||
		meta["dpsflow.init_from"] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("metadata %v (%v)", meta, err)
	}

	// A resume must name the same weights.
	args[4] = "2"
	if _, code, err := runCLI(t, args[:len(args)-2]...); code != 2 || err == nil ||
		!strings.Contains(err.Error(), "initial weights sha256:"+hex.EncodeToString(sum[:])+", now random") {
		t.Errorf("resume without --init-from: exit %d, %v", code, err)
	}
	if text, code, err := runCLI(t, args...); code != 0 || !strings.Contains(text, "trained 2 steps (1 in this run") {
		t.Errorf("resume with --init-from: exit %d, %v\n%s", code, err, text)
	}

	// Weights of another network, and a missing file, are refused before any training.
	if _, code, err := runCLI(t, "train", "--out", t.TempDir(), "--data", data, "--batch", "2", "--quiet",
		"--init-from", filepath.Join("..", "..", "models", "mnistnet", "model.safetensors")); code != 2 || err == nil ||
		!strings.Contains(err.Error(), "do not fit the model") || !strings.Contains(err.Error(), "is missing") {
		t.Errorf("the classifier's weights: exit %d, %v", code, err)
	}
	missing := filepath.Join(t.TempDir(), "none.safetensors")
	if _, code, err := runCLI(t, "train", "--out", t.TempDir(), "--data", data, "--quiet", "--init-from", missing); code == 0 || err == nil ||
		!strings.Contains(err.Error(), "--init-from") || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing --init-from: exit %d, %v", code, err)
	}
}

func TestTrainModelConfig(t *testing.T) {
	data, cfgDir := pngDigits(t, 6), t.TempDir()
	writeConfig := func(name, extra string) string {
		path := filepath.Join(cfgDir, name)
		body := "image_size: 32\nnum_channels: 32\nnum_res_blocks: 1\nchannel_mult: \"1,1\"\nattention_resolutions: \"8\"\n" +
			"num_heads: 2\nuse_scale_shift_norm: True\nresblock_updown: True\n" + extra
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	narrow := writeConfig("narrow.yaml", "in_channels: 1\n")
	out := t.TempDir()
	args := []string{"train", "--out", out, "--steps", "1", "--batch", "2", "--data", data, "--quiet", "--model-config", narrow}
	if text, code, err := runCLI(t, args...); code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	// The export and its config are the narrow network's: its middle has 32 channels, not 64.
	weights, _, err := checkpoint.ReadSafetensors(filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if w := weights["middle_block.0.in_layers.0.weight"]; w == nil || w.Shape().Dimensions[0] != 32 {
		t.Errorf("middle_block.0.in_layers.0.weight: %v, want 32 channels", w)
	}
	written, err := adm.LoadConfig(filepath.Join(out, "model_config.yaml"))
	if err != nil || written.ChannelMult != "1,1" {
		t.Errorf("model_config.yaml: %+v (%v)", written, err)
	}
	var report struct {
		Config struct {
			ModelConfig string `json:"model_config"`
		} `json:"config"`
		Model adm.Config `json:"model"`
	}
	readJSON(t, filepath.Join(out, "train.json"), &report)
	if report.Config.ModelConfig != narrow || report.Model.ChannelMult != "1,1" {
		t.Errorf("train.json: %+v", report)
	}

	// A resume must train the same network.
	args[4] = "2"
	if _, code, err := runCLI(t, args[:len(args)-2]...); code != 2 || err == nil ||
		!strings.Contains(err.Error(), "now the default") || !strings.Contains(err.Error(), `"ChannelMult":"1,1"`) {
		t.Errorf("resume without --model-config: exit %d, %v", code, err)
	}
	if text, code, err := runCLI(t, args...); code != 0 || !strings.Contains(text, "trained 2 steps (1 in this run") {
		t.Errorf("resume with --model-config: exit %d, %v\n%s", code, err, text)
	}

	// The shipped prior's config is the default network, so it continues a run made without it.
	def := t.TempDir()
	if text, code, err := runCLI(t, "train", "--out", def, "--steps", "1", "--batch", "2", "--data", data, "--quiet"); code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	shipped := filepath.Join("..", "..", "models", "mnist", "model_config.yaml")
	if text, code, err := runCLI(t, "train", "--out", def, "--steps", "2", "--batch", "2", "--data", data, "--quiet",
		"--model-config", shipped); code != 0 || !strings.Contains(text, "trained 2 steps (1 in this run") {
		t.Errorf("resume with the shipped config: exit %d, %v\n%s", code, err, text)
	}

	// Networks train cannot fit are refused before any training, naming the file and key.
	for _, c := range []struct{ path, want string }{
		{writeConfig("rgb.yaml", ""), "in_channels 3 and image_size 32"},
		{writeConfig("sigma.yaml", "in_channels: 1\nlearn_sigma: True\n"), "learn_sigma"},
		{writeConfig("cond.yaml", "in_channels: 1\nclass_cond: True\n"), "class_cond"},
		{filepath.Join(cfgDir, "none.yaml"), "none.yaml"},
	} {
		dir := t.TempDir()
		if _, code, err := runCLI(t, "train", "--out", dir, "--data", data, "--quiet", "--model-config", c.path); code != 2 || err == nil ||
			!strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--model-config %s: exit %d, %v", c.path, code, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("--model-config %s: wrote %d files", c.path, len(entries))
		}
	}
}
