package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/dpsflow/dpsflow/nodes/metrics/fid"
	"github.com/dpsflow/dpsflow/nodes/metrics/mnistnet"
	"github.com/dpsflow/dpsflow/nodes/mnist"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/spf13/cobra"
)

// confidentAt is the classifier confidence from which a sample counts as a clear digit.
const confidentAt = 0.9

// sampleQuality is what `dpsflow model quality --json` prints.
type sampleQuality struct {
	Images            string      `json:"images"`
	N                 int         `json:"n"`
	MeanConfidence    float64     `json:"mean_confidence"`
	ConfidentFraction float64     `json:"confident_fraction"` // confidence ≥ confidentAt
	ConfidentAt       float64     `json:"confident_at"`
	ClassFractions    [10]float64 `json:"class_fractions"`
	MinClassFraction  float64     `json:"min_class_fraction"`
	// Test: the samples' FD and KID to the first N digits of the MNIST test split; Floor:
	// the first N training digits' (real digits: the best a prior can do at this N).
	Test  setDistance `json:"to_test"`
	Floor setDistance `json:"floor_train_to_test"`
	// KIDSubsetSize is the images per KID subset actually drawn. When it is all of them,
	// every subset is the whole set and kid_std is zero up to rounding: no noise estimate.
	KIDSubsetSize int `json:"kid_subset_size"`
}

type setDistance struct {
	FD     float64 `json:"fd"`
	KID    float64 `json:"kid"`
	KIDStd float64 `json:"kid_std"`
}

func newModelQualityCmd() *cobra.Command {
	var dir, backendSpec string
	var subsets, subsetSize int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "quality --images DIR",
		Short: "How digit-like a folder of MNIST-sized samples is: classifier confidence, classes, FD/KID",
		Long: `quality scores unconditional samples (e.g. from dpsflow model sample --images DIR) with the
shipped MNIST classifier (models/mnistnet): its mean confidence (the largest softmax
probability), the fraction of samples it classifies with confidence ≥ 0.9, the histogram of
its classes, and the Fréchet distance and KID of its 128-d features to the first N digits of
the MNIST test split (N = the number of samples, at most 10 000), beside the floor: the same
distances from the first N training digits, real digits, to those test digits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageError{fmt.Errorf("--images DIR is required")}
			}
			if subsets < 1 || subsetSize < 2 {
				return usageError{fmt.Errorf("--kid-subsets must be at least 1 and --kid-subset-size at least 2")}
			}
			samples, err := mnist.LoadPNGFolder(dir)
			if err != nil {
				return usageError{fmt.Errorf("--images %w", err)}
			}
			backend, err := xla.New(backendSpec)
			if err != nil {
				return err
			}
			defer backend.Finalize()
			q, err := scoreSamples(backend, dir, samples, fid.KIDOptions{Subsets: subsets, SubsetSize: subsetSize})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(q)
			}
			printQuality(cmd.OutOrStdout(), q)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&dir, "images", "", "folder of 32×32 (or 28×28) grey PNGs")
	fl.StringVar(&backendSpec, "backend", "", backendFlagUsage)
	fl.IntVar(&subsets, "kid-subsets", pipeline.DefaultKIDSubsets, "KID: number of subsets")
	fl.IntVar(&subsetSize, "kid-subset-size", pipeline.DefaultKIDSubsetSize, "KID: images per subset (at most all)")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object")
	return cmd
}

// scoreSamples computes sampleQuality for samples against the MNIST splits.
func scoreSamples(backend backends.Backend, dir string, samples *mnist.Set, o fid.KIDOptions) (*sampleQuality, error) {
	net, err := mnistnet.Load()
	if err != nil {
		return nil, err
	}
	train, test, err := mnist.Load("")
	if err != nil {
		return nil, err
	}
	n := min(samples.N, test.N)
	fs, logits, err := net.FeaturesAndLogits(backend, samples.Images, samples.N)
	if err != nil {
		return nil, err
	}
	q := &sampleQuality{Images: dir, N: samples.N, ConfidentAt: confidentAt, MinClassFraction: 1}
	q.KIDSubsetSize = min(n, o.SubsetSize) // as fid.KID draws them
	for _, l := range logits {
		class, conf := softmaxMax(l)
		q.MeanConfidence += conf / float64(samples.N)
		if conf >= confidentAt {
			q.ConfidentFraction += 1 / float64(samples.N)
		}
		q.ClassFractions[class] += 1 / float64(samples.N)
	}
	for _, f := range q.ClassFractions {
		q.MinClassFraction = min(q.MinClassFraction, f)
	}
	features := func(s *mnist.Set, count int) ([][]float64, error) {
		f, _, err := net.Run(backend, s.Images[:count*mnist.Size*mnist.Size], count)
		return f, err
	}
	ft, err := features(test, n)
	if err != nil {
		return nil, err
	}
	fr, err := features(train, n)
	if err != nil {
		return nil, err
	}
	st, err := fid.NewStats(ft)
	if err != nil {
		return nil, fmt.Errorf("the test split's features: %w", err)
	}
	if q.Test, err = setDistanceOf(fs, ft, st, o); err != nil {
		return nil, fmt.Errorf("samples against the test split: %w", err)
	}
	if q.Floor, err = setDistanceOf(fr, ft, st, o); err != nil {
		return nil, fmt.Errorf("training digits against the test split: %w", err)
	}
	return q, nil
}

// setDistanceOf is FD and KID between the feature sets a and b (sb: b's statistics).
func setDistanceOf(a, b [][]float64, sb fid.Stats, o fid.KIDOptions) (d setDistance, err error) {
	sa, err := fid.NewStats(a)
	if err != nil {
		return d, err
	}
	if d.FD, err = fid.FrechetDistance(sa, sb); err != nil {
		return d, err
	}
	d.KID, d.KIDStd, err = fid.KID(a, b, o)
	return d, err
}

// softmaxMax returns the class with the largest logit and its softmax probability.
func softmaxMax(logits []float64) (class int, p float64) {
	for i, l := range logits {
		if l > logits[class] {
			class = i
		}
	}
	var sum float64
	for _, l := range logits {
		sum += math.Exp(l - logits[class])
	}
	return class, 1 / sum
}

func printQuality(w io.Writer, q *sampleQuality) {
	fmt.Fprintf(w, "%s: %d samples\n", q.Images, q.N)
	fmt.Fprintf(w, "classifier confidence: mean %.3f; %.1f %% at ≥ %.1f\n", q.MeanConfidence, 100*q.ConfidentFraction, q.ConfidentAt)
	fmt.Fprintf(w, "classes:")
	for c, f := range q.ClassFractions {
		fmt.Fprintf(w, " %d: %.1f %%", c, 100*f)
	}
	fmt.Fprintf(w, " (smallest %.1f %%)\n", 100*q.MinClassFraction)
	kid := func(d setDistance) string {
		if q.KIDSubsetSize >= q.N {
			return fmt.Sprintf("%.3g", d.KID) // one subset in effect: its ± would be 0
		}
		return fmt.Sprintf("%.3g ± %.2g", d.KID, d.KIDStd)
	}
	fmt.Fprintf(w, "to the test split: FD %.3g, KID %s\n", q.Test.FD, kid(q.Test))
	fmt.Fprintf(w, "floor (training digits to the test split): FD %.3g, KID %s\n", q.Floor.FD, kid(q.Floor))
	if q.KIDSubsetSize >= q.N {
		fmt.Fprintf(w, "(KID's subsets of %d are the whole sets, so it has no spread to report; --kid-subset-size below %d gives one)\n", q.KIDSubsetSize, q.N)
	}
}
