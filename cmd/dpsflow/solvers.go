package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dpsflow/dpsflow/nodes/solver"
	_ "github.com/dpsflow/dpsflow/nodes/solver/builtin" // every solver registers
	"github.com/dpsflow/dpsflow/nodes/solver/fidelity"
	"github.com/dpsflow/dpsflow/xla"
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
	var fid fidelityFlags
	cmd := &cobra.Command{
		Use:   "solvers [--json] [--fidelity [--only a,b] [--n N] [--backend SPEC]]",
		Short: "List every solver with what it needs and its parameters, or score them against exact posteriors",
		Long: `solvers lists the solvers 'dpsflow run --solver NAME --param k=v' runs: what each needs
(a diffusion prior, operator capabilities such as an SVD or a projection) and every parameter
with its type, default and meaning.

With --fidelity it scores the diffusion solvers (or those of --only) on two problems whose
posterior is known in closed form (nodes/solver/fidelity): a linear-Gaussian one (the fraction
of the prior-mean → posterior-mean gap closed, and the ratios of sample to exact posterior
covariance) and a 2-D Gaussian mixture (the energy distance to exact posterior samples), with
the exact sampler's own scores as the Monte-Carlo floor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fid.on {
				return fid.run(cmd, asJSON)
			}
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: name, aliases, doc, needs, params (name, type, default, doc, values); with --fidelity, the score rows")
	cmd.Flags().BoolVar(&fid.on, "fidelity", false, "score the diffusion solvers against exact posteriors instead of listing them")
	cmd.Flags().StringSliceVar(&fid.only, "only", nil, "with --fidelity: these solvers (default: every solver that needs a prior)")
	cmd.Flags().IntVar(&fid.n, "n", 1000, "with --fidelity: samples per problem")
	cmd.Flags().Uint64Var(&fid.seed, "seed", 0, "with --fidelity: the solvers' seed")
	cmd.Flags().StringVar(&fid.backend, "backend", "", "with --fidelity: the "+backendFlagUsage)
	return cmd
}

// fidelityFlags are `dpsflow solvers --fidelity`'s.
type fidelityFlags struct {
	on      bool
	only    []string
	n       int
	seed    uint64
	backend string
}

func (f *fidelityFlags) run(cmd *cobra.Command, asJSON bool) error {
	if f.n < 2 {
		return usageError{fmt.Errorf("--n must be ≥ 2, got %d", f.n)}
	}
	var list []solver.Solver
	if len(f.only) == 0 {
		for _, s := range solver.List() {
			if s.Info().NeedsPrior {
				list = append(list, s)
			}
		}
	}
	for _, name := range f.only {
		s, err := solver.Lookup(name)
		if err != nil {
			return usageError{fmt.Errorf("--only: %w", err)}
		}
		list = append(list, s)
	}
	backend, release, err := xla.Shared(f.backend)
	if err != nil {
		return usageError{fmt.Errorf("--backend: %w", err)}
	}
	defer release()
	rows, err := fidelity.Run(cmd.Context(), backend, list, fidelity.Options{N: f.n, Seed: f.seed})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	_, err = fmt.Fprint(out, fidelity.Markdown(rows))
	return err
}
