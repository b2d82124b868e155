package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dpsflow/dpsflow/nodes/solver"
	_ "github.com/dpsflow/dpsflow/nodes/solver/builtin" // every solver registers
	"github.com/spf13/cobra"
)

// solverListing is one solver as `dpsflow solvers --json` prints it.
type solverListing struct {
	Name    string         `json:"name"`
	Aliases []string       `json:"aliases,omitempty"`
	Doc     string         `json:"doc"`
	Needs   []string       `json:"needs"`
	Params  []paramListing `json:"params"`
}

type paramListing struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Default any      `json:"default"`
	Doc     string   `json:"doc"`
	Values  []string `json:"values,omitempty"`
}

func newSolversCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "solvers [--json]",
		Short: "List every solver with what it needs and its parameters",
		Long: `solvers lists the solvers 'dpsflow run --solver NAME --param k=v' runs: what each needs
(a diffusion prior, operator capabilities such as an SVD or a projection) and every parameter
with its type, default and meaning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []solverListing
			for _, s := range solver.List() {
				info := s.Info()
				l := solverListing{Name: info.Name, Aliases: info.Aliases, Doc: info.Doc, Needs: info.NeedNames(), Params: []paramListing{}}
				if l.Needs == nil {
					l.Needs = []string{}
				}
				for _, p := range info.Params {
					l.Params = append(l.Params, paramListing{Name: p.Name, Type: p.Type, Default: p.Default, Doc: p.Doc, Values: p.Enum})
				}
				list = append(list, l)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			for _, l := range list {
				name := l.Name
				if len(l.Aliases) > 0 {
					name += " (alias " + strings.Join(l.Aliases, ", ") + ")"
				}
				needs := "nothing"
				if len(l.Needs) > 0 {
					needs = strings.Join(l.Needs, ", ")
				}
				fmt.Fprintf(out, "%s\n  %s\n  needs: %s\n", name, l.Doc, needs)
				for _, p := range l.Params {
					typ := p.Type
					if len(p.Values) > 0 {
						typ = strings.Join(p.Values, "|")
					}
					fmt.Fprintf(out, "  --param %s=%v  (%s) %s\n", p.Name, p.Default, typ, p.Doc)
				}
				fmt.Fprintln(out)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: name, aliases, doc, needs, params (name, type, default, doc, values)")
	return cmd
}
