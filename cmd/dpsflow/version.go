package main

import (
	"fmt"
	"runtime"

	"github.com/dpsflow/dpsflow/internal/buildinfo"
	"github.com/spf13/cobra"
)

// version is the module version, or the VCS revision for a development build.
func version() string { return buildinfo.Version() }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the dpsflow and Go versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "dpsflow %s (%s %s/%s)\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
