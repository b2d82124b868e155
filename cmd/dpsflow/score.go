package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/nodes/metrics/fid"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/spf13/cobra"
)

// scoreFlags are the flags of `dpsflow score`.
type scoreFlags struct {
	pred, ref, lpipsNet, lpipsBackbone, lpipsLin, fid, fidWeights, backend string
	kidSubsets, kidSubsetSize                                              int
	seed                                                                   uint64
	asJSON                                                                 bool
}

func newScoreCmd() *cobra.Command {
	f := &scoreFlags{}
	cmd := &cobra.Command{
		Use:   "score --pred DIR --ref DIR [--lpips NET --lpips-backbone F --lpips-lin F] [--fid mnist | --fid inception --fid-weights F] [--json]",
		Short: "Score a folder of reconstructions against a folder of references: PSNR, SSIM, LPIPS, FID/KID, accuracy",
		Long: `score compares the images of --pred with the images of the same file names in --ref
(PNG or JPEG, 0…255 mapped to [-1, 1]; grey unless an image has colour): PSNR and SSIM per
image, and with their mean and std:

  --lpips alex|vgg|squeeze   LPIPS v0.1 as the lpips package computes it, from the user's
                             files: --lpips-backbone (torchvision's state dict, e.g.
                             alexnet-owt-7be5be79.pth) and --lpips-lin (the lpips package's
                             weights/v0.1/alex.pth)
  --fid mnist                FD and KID on the shipped MNIST classifier's 128-d features
                             (1×32×32 images), and its accuracy: the fraction of predictions
                             it puts in the class it gives the reference
  --fid inception            FID and KID on pytorch-fid's Inception pool features, from
                             --fid-weights (pt_inception-2015-12-05-6726825d.pth)

KID is the unbiased MMD² with the cubic polynomial kernel, mean ± std over --kid-subsets
random subsets of --kid-subset-size images (at most all of them), as torch-fidelity.
Names found in one folder only, or images of another size, are errors listing them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return f.run(cmd) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.pred, "pred", "", "folder of reconstructions (required)")
	fl.StringVar(&f.ref, "ref", "", "folder of references with the same file names (required)")
	fl.StringVar(&f.lpipsNet, "lpips", "", "LPIPS network: "+strings.Join(pipeline.LPIPSNets, ", ")+" (default: no LPIPS)")
	fl.StringVar(&f.lpipsBackbone, "lpips-backbone", "", "the torchvision backbone weights for --lpips")
	fl.StringVar(&f.lpipsLin, "lpips-lin", "", "the lpips package's linear layers (weights/v0.1/NET.pth) for --lpips")
	fl.StringVar(&f.fid, "fid", "", "FD/KID features: mnist or inception (default: none)")
	fl.StringVar(&f.fidWeights, "fid-weights", "", "pytorch-fid's Inception weights for --fid inception")
	fl.IntVar(&f.kidSubsets, "kid-subsets", pipeline.DefaultKIDSubsets, "KID: number of subsets")
	fl.IntVar(&f.kidSubsetSize, "kid-subset-size", pipeline.DefaultKIDSubsetSize, "KID: images per subset (at most all)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of KID's subsets")
	fl.StringVar(&f.backend, "backend", "", "for the networks: the "+backendFlagUsage)
	fl.BoolVar(&f.asJSON, "json", false, "print the scores as JSON")
	_ = cmd.MarkFlagRequired("pred")
	_ = cmd.MarkFlagRequired("ref")
	return cmd
}

// options checks the flags before anything is read.
func (f *scoreFlags) options() (pipeline.ScoreOptions, error) {
	o := pipeline.ScoreOptions{Pred: f.pred, Ref: f.ref, Backend: f.backend,
		KID: fid.KIDOptions{Subsets: f.kidSubsets, SubsetSize: f.kidSubsetSize, Seed: f.seed}}
	switch {
	case f.lpipsNet != "":
		if !slices.Contains(pipeline.LPIPSNets, f.lpipsNet) {
			return o, fmt.Errorf("--lpips %q: want one of %s", f.lpipsNet, strings.Join(pipeline.LPIPSNets, ", "))
		}
		if f.lpipsBackbone == "" || f.lpipsLin == "" {
			return o, fmt.Errorf("--lpips %s needs --lpips-backbone and --lpips-lin (the weight files)", f.lpipsNet)
		}
		o.LPIPS = &pipeline.LPIPSSpec{Net: f.lpipsNet, Backbone: f.lpipsBackbone, Lin: f.lpipsLin}
	case f.lpipsBackbone != "" || f.lpipsLin != "":
		return o, fmt.Errorf("--lpips-backbone and --lpips-lin need --lpips NET")
	}
	switch f.fid {
	case "", pipeline.FIDMNIST:
		if f.fidWeights != "" {
			return o, fmt.Errorf("--fid-weights is for --fid inception")
		}
	case pipeline.FIDInception:
		if f.fidWeights == "" {
			return o, fmt.Errorf("--fid inception needs --fid-weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth)")
		}
	default:
		return o, fmt.Errorf("--fid %q: want mnist or inception", f.fid)
	}
	o.FID, o.FIDWeights = f.fid, f.fidWeights
	if f.kidSubsets < 1 || f.kidSubsetSize < 2 {
		return o, fmt.Errorf("--kid-subsets %d must be ≥ 1 and --kid-subset-size %d ≥ 2", f.kidSubsets, f.kidSubsetSize)
	}
	return o, nil
}

func (f *scoreFlags) run(cmd *cobra.Command) error {
	o, err := f.options()
	if err != nil {
		return usageError{err}
	}
	rep, err := pipeline.ScoreFolders(o)
	if err != nil {
		return usageError{err}
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "%d images\n", len(rep.Images))
	for _, k := range []string{"psnr", "ssim", "lpips"} {
		if m, ok := rep.Mean[k]; ok {
			fmt.Fprintf(out, "%-8s %.4f ± %.4f\n", k, float64(m), float64(rep.Std[k]))
		}
	}
	if rep.FID != nil {
		fmt.Fprintf(out, "%-8s %.4f (%s features)\n%-8s %.5f ± %.5f\n", "fid", *rep.FID, rep.Features, "kid", *rep.KID, *rep.KIDStd)
	}
	if rep.Accuracy != nil {
		fmt.Fprintf(out, "%-8s %.4f\n", "accuracy", *rep.Accuracy)
	}
	return nil
}
