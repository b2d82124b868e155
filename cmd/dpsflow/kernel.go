package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/dpsflow/dpsflow/kernel"
	"github.com/spf13/cobra"
)

func newKernelCmd() *cobra.Command {
	var connFile, maxMemory string
	cmd := &cobra.Command{
		Use:   "kernel --connection-file FILE",
		Short: "Run the Go Jupyter kernel (Jupyter starts it), or install its kernel spec",
		Long: `dpsflow kernel is a Jupyter kernel for Go: cells are interpreted (yaegi) with the
standard library, GoMLX and dpsflow's packages compiled in, values persist between
cells, and cells form a reactive DAG: re-running a cell re-runs the cells that read
what it defines. Set it up once with 'dpsflow kernel install', then pick "Go (dpsflow)"
in Jupyter. The cells run in a child process: when a cell crashes it (a panic in a
goroutine, a fatal runtime error, more memory than --max-memory), the kernel restarts
it and the cell's error says why. See 'go doc github.com/dpsflow/dpsflow/kernel' for
the manual.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if connFile == "" {
				return usageError{errors.New("--connection-file is required: Jupyter passes it when it starts the kernel " +
					"(run 'dpsflow kernel install' to register the kernel with Jupyter)")}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			maxMem, err := kernel.ParseMemory(maxMemory)
			if err != nil {
				return usageError{fmt.Errorf("--max-memory: %w", err)}
			}
			return kernel.Serve(ctx, connFile, kernel.Options{MaxMemory: maxMem})
		},
	}
	cmd.Flags().StringVar(&connFile, "connection-file", "", "the connection file Jupyter writes for the kernel")
	cmd.Flags().StringVar(&maxMemory, "max-memory", kernel.DefaultMaxMemory, "restart the interpreter when a cell makes it use more "+
		"memory than `SIZE` (4GiB, 512MiB, 75% of the machine's, or off)")
	cmd.AddCommand(newKernelInstallCmd())
	return cmd
}

func newKernelInstallCmd() *cobra.Command {
	var opts kernel.InstallOptions
	var user bool
	cmd := &cobra.Command{
		Use:   "install [--user | --prefix P] [--name dpsflow-go]",
		Short: "Register the Go kernel with Jupyter (writes kernel.json)",
		Long: `install writes the kernel spec (kernel.json and logos) pointing at this dpsflow
executable: with --user (the default) into the user's Jupyter data directory
($JUPYTER_DATA_DIR, else ~/.local/share/jupyter)/kernels/NAME; with --prefix P into
P/share/jupyter/kernels/NAME (for example the prefix of a virtual environment).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user && opts.Prefix != "" {
				return usageError{errors.New("--user and --prefix exclude each other")}
			}
			dir, err := kernel.Install(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "installed kernel spec %q in %s\n", opts.Name, dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&user, "user", false, "install for the current user (the default)")
	cmd.Flags().StringVar(&opts.Prefix, "prefix", "", "install under `P`/share/jupyter/kernels")
	cmd.Flags().StringVar(&opts.Name, "name", kernel.DefaultKernelName, "the kernel spec's name")
	cmd.Flags().StringVar(&opts.MaxMemory, "max-memory", "", "the kernel's --max-memory `SIZE` (default "+kernel.DefaultMaxMemory+" of the machine's memory)")
	return cmd
}
