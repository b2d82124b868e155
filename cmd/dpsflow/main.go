// Command dpsflow solves noisy inverse problems by diffusion posterior sampling.
//
// Run `dpsflow --help` for the commands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/spf13/cobra"
)

// Exit codes: what scripts can tell apart.
const (
	exitFailed      = 1   // a failure while running (a node failed, a file could not be written)
	exitUsage       = 2   // bad input: flags, specs, files; refused before anything was created
	exitCrash       = 3   // a bug: a panic reached main; the message asks for a report
	exitInterrupted = 130 // stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
)

// usageError marks errors that come from what the user typed; they exit with code 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// interruptedError marks a run stopped by a signal; it exits with code 130.
type interruptedError struct{ error }

func (e interruptedError) Unwrap() error { return e.error }

// ranError marks an error returned by a command's own RunE, so that exitCode can tell it
// from cobra's errors (unknown command or flag, missing required flag, wrong arguments),
// which are all usage errors.
type ranError struct{ error }

func (e ranError) Unwrap() error { return e.error }

func main() {
	os.Exit(execute(newRootCmd(), os.Args[1:], os.Stderr))
}

// execute runs root with args and returns the exit code; a panic is reported as a bug
// (exit 3) with its stack on stderr, never as bad input.
func execute(root *cobra.Command, args []string, stderr io.Writer) (code int) {
	defer func() {
		if v := recover(); v != nil {
			reportCrash(stderr, v, debug.Stack())
			code = exitCrash
		}
	}()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	code = exitCode(err)
	if code == exitCrash {
		var pe *dag.PanicError
		errors.As(err, &pe)
		reportCrash(stderr, err, pe.Stack)
		return code
	}
	fmt.Fprintln(stderr, "dpsflow:", err)
	return code
}

// reportCrash says that dpsflow has a bug, asks for a report and prints what it needs.
func reportCrash(w io.Writer, v any, stack []byte) {
	fmt.Fprintf(w, "dpsflow: internal error (a bug in dpsflow, not in your input): %v\n", v)
	fmt.Fprintln(w, "Please report it at https://github.com/dpsflow/dpsflow/issues with the command you ran, 'dpsflow version' and everything below.")
	fmt.Fprintf(w, "%s\n", stack)
}

// exitCode is 2 for bad input (cobra's own errors, usage errors, backend specs), 130 after
// an interrupt, 3 for a panic caught in a DAG node, 1 for any other failure while running.
func exitCode(err error) int {
	var pe *dag.PanicError
	var ie interruptedError
	var ue usageError
	var se *xla.SpecError
	var le *lockedError
	var ran ranError
	switch {
	case errors.As(err, &pe):
		return exitCrash
	case errors.As(err, &ie):
		return exitInterrupted
	case errors.As(err, &ue), errors.As(err, &se), errors.As(err, &le):
		return exitUsage
	case !errors.As(err, &ran):
		return exitUsage // cobra refused the command line before any command ran
	}
	return exitFailed
}

// markRunErrors wraps the RunE of c and its subcommands so that their errors are ranError.
func markRunErrors(c *cobra.Command) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if err := run(cmd, args); err != nil {
				return ranError{err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "dpsflow",
		Short: "Diffusion posterior sampling for noisy inverse problems, in Go",
		Long: `dpsflow solves noisy inverse problems y = A(x) + n (deblurring, super-resolution,
inpainting, phase retrieval) with a diffusion prior steered by Diffusion Posterior
Sampling (Chung et al., ICLR 2023), on a pure-Go backend or on XLA (GPU, CPU, TPU).

Exit codes: 0 done, 1 failed while running, 2 bad input (nothing was created),
3 a bug in dpsflow (please report it), 130 interrupted (run the command again to resume).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", plainFlagError(err), c.CommandPath())}
	})
	root.AddCommand(newDoctorCmd(), newVersionCmd(), newModelCmd(), newStepCmd(), newTrainCmd(), newTrainClassifierCmd(), newRunCmd(), newSolversCmd(), newTableCmd(), newSweepCmd(), newScoreCmd(), newDAGCmd(), newKernelCmd(), newCacheCmd(), newBenchCmd())
	markRunErrors(root)
	return root
}

// badNumberRE matches pflag's message for a value that does not parse, which quotes Go's
// strconv error ("strconv.ParseInt: parsing \"abc\": invalid syntax").
var badNumberRE = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: strconv\.Parse(Int|Uint|Float|Bool): .*$`)

// plainFlagError says in words what a flag's value should have been.
func plainFlagError(err error) error {
	g := badNumberRE.FindStringSubmatch(err.Error())
	if g == nil {
		return err
	}
	want := map[string]string{"Int": "a whole number", "Uint": "a whole number ≥ 0", "Float": "a number", "Bool": "true or false"}[g[3]]
	return fmt.Errorf("%s %q: not %s", g[2], g[1], want)
}
