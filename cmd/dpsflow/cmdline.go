package main

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// givenCommandLine is the command as the user gave it, for the reports that record how a
// file was made: the command path and each flag set on the command line with its value (in
// the flags' alphabetical order; values with spaces or quotes quoted).
func givenCommandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Value.Type() == "bool" && f.Value.String() == "true" {
			parts = append(parts, "--"+f.Name)
			return
		}
		v := f.Value.String()
		if v == "" || strings.ContainsAny(v, " \t\"'\\") {
			v = strconv.Quote(v)
		}
		parts = append(parts, "--"+f.Name, v)
	})
	return strings.Join(parts, " ")
}
