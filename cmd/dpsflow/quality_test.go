package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/plot"
)

// Real digits as "samples": the first 200 training digits written as PNGs (8-bit, so the
// round trip is exact) must score as clear digits in their labels' proportions, and their
// distance to the test split must equal the floor, which is the same computation on the
// same digits.
func TestModelQualityOfRealDigitsEqualsTheFloor(t *testing.T) {
	train, err := mnist.LoadSplit("", "train")
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	dir := t.TempDir()
	var labels [10]float64
	for i := range n {
		img := plot.ImageOf(train.Image(i), 1, mnist.Size, mnist.Size)
		if err := plot.SavePNG(filepath.Join(dir, fmt.Sprintf("%05d.png", i)), img); err != nil {
			t.Fatal(err)
		}
		labels[train.Labels[i]] += 1.0 / n
	}
	out, code, err := runCLI(t, "model", "quality", "--images", dir, "--json", "--kid-subsets", "10", "--kid-subset-size", "100")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	var q sampleQuality
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &q); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if q.N != n || q.MeanConfidence < 0.95 || q.ConfidentFraction < 0.95 {
		t.Errorf("real digits: n %d, mean confidence %.3f, %.3f confident", q.N, q.MeanConfidence, q.ConfidentFraction)
	}
	sum := 0.0
	for c, f := range q.ClassFractions {
		sum += f
		if math.Abs(f-labels[c]) > 3.0/n {
			t.Errorf("class %d: %.3f of the samples, %.3f of their labels", c, f, labels[c])
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("class fractions sum to %g", sum)
	}
	if q.Test.FD != q.Floor.FD || q.Test.KID != q.Floor.KID || q.Test.FD <= 0 {
		t.Errorf("the training digits' own distance %+v is not the floor %+v", q.Test, q.Floor)
	}
	if q.KIDSubsetSize != 100 || q.Test.KIDStd <= 0 {
		t.Errorf("subsets of 100 of %d: kid_subset_size %d, kid_std %g (want a spread)", n, q.KIDSubsetSize, q.Test.KIDStd)
	}
	// At the default subset size (1000) every subset is all 200: each draw is the same
	// set reordered, so KID has no spread, and the text output says so instead of "± 0".
	text, code, err := runCLI(t, "model", "quality", "--images", dir)
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, text)
	}
	if !strings.Contains(text, "KID's subsets of 200 are the whole sets") || strings.Contains(text, "±") {
		t.Errorf("subsets covering the whole set: the output should say KID has no spread and print no ±:\n%s", text)
	}
	if _, code, err := runCLI(t, "model", "quality"); code != 2 || err == nil || !strings.Contains(err.Error(), "--images DIR is required") {
		t.Errorf("no --images: exit %d, %v", code, err)
	}
}
