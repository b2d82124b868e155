// Command dpsflow solves noisy inverse problems by diffusion posterior sampling.
//
// Run `dpsflow --help` for the commands.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dpsflow/dpsflow/xla"
	"github.com/spf13/cobra"
)

// usageError marks errors that come from what the user typed; they exit with code 2.
type usageError struct{ error }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "dpsflow:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for bad input (flags, backend specs), 1 for everything else.
func exitCode(err error) int {
	var specErr *xla.SpecError
	var uErr usageError
	if errors.As(err, &specErr) || errors.As(err, &uErr) {
		return 2
	}
	// cobra reports missing required flags, bad arguments and unknown commands as plain errors.
	msg := err.Error()
	for _, usage := range []string{"required flag(s)", "unknown command", "accepts ", "invalid argument"} {
		if strings.Contains(msg, usage) {
			return 2
		}
	}
	return 1
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "dpsflow",
		Short: "Diffusion posterior sampling for noisy inverse problems, in Go",
		Long: `dpsflow solves noisy inverse problems y = A(x) + n (deblurring, super-resolution,
inpainting, phase retrieval) with a diffusion prior steered by Diffusion Posterior
Sampling (Chung et al., ICLR 2023), on a pure-Go backend or on XLA (GPU, CPU, TPU).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(newDoctorCmd(), newVersionCmd(), newModelCmd(), newStepCmd(), newTrainCmd(), newTrainClassifierCmd(), newRunCmd(), newSolversCmd(), newTableCmd(), newSweepCmd(), newScoreCmd(), newDAGCmd(), newKernelCmd(), newCacheCmd())
	return root
}
