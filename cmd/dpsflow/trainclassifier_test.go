package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/metrics/mnistnet"
)

// A short train-classifier run writes a loadable model and a train.json holding its recipe;
// a missing --out is refused with exit 2.
func TestTrainClassifierCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "net")
	out, code, err := runCLI(t, "train-classifier", "--out", dir, "--steps", "3", "--batch", "8", "--warmup", "1", "--test-images", "100", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	if _, err := mnistnet.LoadFile(filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Steps        int     `json:"steps"`
		TestImages   int     `json:"test_images"`
		TestAccuracy float64 `json:"test_accuracy"`
		Command      string  `json:"command"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "train.json"))
	must(t, err)
	must(t, json.Unmarshal(data, &rep))
	if rep.Steps != 3 || rep.TestImages != 100 || rep.TestAccuracy < 0 || rep.TestAccuracy > 1 {
		t.Errorf("train.json: %+v", rep)
	}
	if want := "dpsflow train-classifier --batch 8 --out " + dir + " --quiet --steps 3 --test-images 100 --warmup 1"; rep.Command != want {
		t.Errorf("train.json command %q, want %q", rep.Command, want)
	}
	if _, code, _ := runCLI(t, "train-classifier"); code != 2 {
		t.Errorf("no --out: exit %d, want 2", code)
	}
}
