package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/npy"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

const tinyModelYAML = `image_size: 8
num_channels: 32
num_res_blocks: 1
channel_mult: "1,2"
learn_sigma: True
class_cond: False
use_checkpoint: False
attention_resolutions: "4"
num_heads: 2
num_head_channels: -1
num_heads_upsample: -1
use_scale_shift_norm: True
dropout: 0.0
resblock_updown: True
use_fp16: False
use_new_attention_order: False
in_channels: 3
`

// writeTinyModel writes a model config and a safetensors checkpoint for it.
func writeTinyModel(t *testing.T, dir string) (cfgPath, ckptPath string) {
	t.Helper()
	cfgPath, ckptPath = filepath.Join(dir, "model.yaml"), filepath.Join(dir, "model.safetensors")
	if err := os.WriteFile(cfgPath, []byte(tinyModelYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := adm.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m, err := adm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	m.Init(ctx, 1)
	sd, err := m.StateDict(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkpoint.WriteSafetensors(ckptPath, sd, nil); err != nil {
		t.Fatal(err)
	}
	return cfgPath, ckptPath
}

func TestModelEvalWritesTheNetworkOutput(t *testing.T) {
	dir := t.TempDir()
	cfg, ckpt := writeTinyModel(t, dir)
	x, tt, out := filepath.Join(dir, "x.npy"), filepath.Join(dir, "t.npy"), filepath.Join(dir, "out.npy")
	must(t, npy.Write(x, tensors.FromFlatDataAndDimensions(make([]float32, 2*3*8*8), 2, 3, 8, 8)))
	must(t, npy.Write(tt, tensors.FromFlatDataAndDimensions([]float32{10, 999}, 2)))
	if _, code, err := runCLI(t, "model", "eval", "--model-config", cfg, "--checkpoint", ckpt, "--x", x, "--t", tt, "--out", out); code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	got, err := npy.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Shape().Dimensions; len(d) != 4 || d[0] != 2 || d[1] != 6 {
		t.Fatalf("output shape %v, want [2 6 8 8] (ε and v)", d)
	}
}

func TestModelEvalAndStepBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg, ckpt := writeTinyModel(t, dir)
	x, tt := filepath.Join(dir, "x.npy"), filepath.Join(dir, "t.npy")
	must(t, npy.Write(x, tensors.FromFlatDataAndDimensions(make([]float32, 3*8*8), 1, 3, 8, 8)))
	must(t, npy.Write(tt, tensors.FromFlatDataAndDimensions([]float32{10}, 1)))
	wrongX := filepath.Join(dir, "wrong.npy")
	must(t, npy.Write(wrongX, tensors.FromFlatDataAndDimensions(make([]float32, 3*16*16), 1, 3, 16, 16)))
	// A checkpoint from another config: every mismatch is named.
	otherCfg := filepath.Join(dir, "other.yaml")
	must(t, os.WriteFile(otherCfg, []byte(strings.Replace(tinyModelYAML, "num_channels: 32", "num_channels: 64", 1)), 0o644))
	out := filepath.Join(dir, "out.npy")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"model", "eval", "--model-config", cfg, "--checkpoint", filepath.Join(dir, "none.pt"), "--x", x, "--t", tt, "--out", out}, "none.pt"},
		{[]string{"model", "eval", "--model-config", otherCfg, "--checkpoint", ckpt, "--x", x, "--t", tt, "--out", out}, "mis-shaped time_embed.0.weight"},
		{[]string{"model", "eval", "--model-config", cfg, "--checkpoint", ckpt, "--x", wrongX, "--t", tt, "--out", out}, "--x"},
		{[]string{"model", "eval", "--model-config", cfg, "--checkpoint", ckpt, "--x", x, "--t", x, "--out", out}, "--t"},
		{[]string{"model", "eval", "--model-config", cfg, "--checkpoint", ckpt, "--x", x, "--t", tt}, `"out" not set`},
		{[]string{"step", "--model-config", cfg, "--checkpoint", ckpt, "--task-config", filepath.Join(dir, "nope.yaml"), "--xt", x, "--t", "5", "--y", x, "--noise", x, "--out", out}, "nope.yaml"},
	} {
		_, code, err := runCLI(t, c.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d, error %v; want exit 2 naming %q", c.args[:2], code, err, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a failed command left an output file behind")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestModelLossIsTheSameForAnyBatch(t *testing.T) {
	var results []heldOutLoss
	for _, batch := range []string{"7", "20"} {
		text, code, err := runCLI(t, "model", "loss", "--n", "20", "--batch", batch, "--json")
		if code != 0 {
			t.Fatalf("exit %d: %v\n%s", code, err, text)
		}
		var r heldOutLoss
		if err := json.Unmarshal([]byte(text), &r); err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		results = append(results, r)
	}
	// Both batches see the same images, t and ε, so the loss is the same up to float32
	// summation order; a trained prior's loss is far below an untrained network's (≈ 1).
	a, b := results[0], results[1]
	if a.N != 20 || math.Abs(a.Mean-b.Mean) > 1e-6 || !(a.Mean > 0 && a.Mean < 0.1) || !(a.StdErr > 0) {
		t.Errorf("batch 7: %+v, batch 20: %+v", a, b)
	}
	for _, args := range [][]string{{"--n", "1"}, {"--n", "10001"}, {"--batch", "0"}} {
		if _, code, err := runCLI(t, append([]string{"model", "loss"}, args...)...); code != 2 {
			t.Errorf("%v: exit %d (%v), want 2", args, code, err)
		}
	}
}
