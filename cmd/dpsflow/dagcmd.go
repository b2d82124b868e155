package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/spf13/cobra"
)

func newDAGCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dag",
		Short: "Run, draw and explain DAG files (run.yaml)",
		Long: `A DAG file names nodes (a kind, parameters, a seed) and wires their typed ports. 'dpsflow run'
writes one as DIR/run.yaml. Node results are cached beside the file (.dpsflow/cache) by a
content hash of kind, version, parameters, seed and inputs, so a rerun does only what changed.`,
		// A mistyped subcommand is refused (exit 2) instead of printing help with exit 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDAGRunCmd(), newDAGGraphCmd(), newDAGExplainCmd(), newDAGKindsCmd(), newDAGExportCmd())
	return cmd
}

// loadDAG reads and validates a DAG file against the DPS kinds and, for a notebook
// exported with 'dag export', the go-cell kind, whose cells print to out.
func loadDAG(path string, out io.Writer) (*dag.Registry, *dag.Graph, error) {
	g, err := dag.Load(path)
	if err != nil {
		return nil, nil, usageError{err}
	}
	// Save folders in the file are relative to it (run.yaml says "."), so it can move.
	if err := pipeline.ResolveSaveDirs(g, filepath.Dir(path)); err != nil {
		return nil, nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	reg, err := registryFor(g, out)
	if err != nil {
		return nil, nil, err
	}
	if err := reg.Validate(g); err != nil {
		return nil, nil, usageError{fmt.Errorf("%s: %w", path, err)}
	}
	return reg, g, nil
}

// cacheDirOr is the --cache flag, else the cache beside the DAG file.
func cacheDirOr(flag, dagFile string) string {
	if flag != "" {
		return flag
	}
	return cacheDirFor(dagFile)
}

func newDAGRunCmd() *cobra.Command {
	var cacheDir string
	var force []string
	var outDir string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a DAG file, reusing cached node results",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, g, err := loadDAG(args[0], cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if info, err := os.Stat(cacheDir); cacheDir != "" && err == nil && !info.IsDir() {
				return usageError{fmt.Errorf("--cache %s is a file, not a folder", cacheDir)}
			}
			// One process at a time per DAG folder (DIR/.dpsflow/lock, as 'dpsflow run' takes).
			// A read-only DAG folder with the cache elsewhere (--cache) runs unlocked.
			release, err := lockDir(filepath.Dir(args[0]))
			var locked *lockedError
			switch {
			case err == nil:
				defer release()
			case cacheDir == "" || errors.As(err, &locked):
				return err
			default:
				fmt.Fprintf(cmd.ErrOrStderr(), "not locking %s (%v)\n", filepath.Dir(args[0]), err)
			}
			// The save folders get their own lock when they are elsewhere (as 'dpsflow run
			// --out' takes it): two processes must not write one results folder.
			for _, dir := range saveDirsOf(g, outDir) {
				if mustAbs(dir) == mustAbs(filepath.Dir(args[0])) {
					continue
				}
				release, err := lockDir(dir)
				if err != nil {
					return err
				}
				defer release()
			}
			if err := prepareDAGOut(g, args[0], outDir, overwrite); err != nil {
				return err
			}
			res, err := runGraph(cmd, reg, g, cacheDirOr(cacheDir, args[0]), force)
			if err != nil {
				return err
			}
			counts := map[dag.Status]int{}
			for _, s := range res.Status {
				counts[s]++
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d nodes: %d ran, %d reused\n", len(g.Nodes), counts["ran"], counts["cached"])
			return nil
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache", "", "cache folder (default: .dpsflow/cache beside FILE)")
	cmd.Flags().StringSliceVar(&force, "force", nil, "node ids to run even when cached")
	cmd.Flags().StringVar(&outDir, "out", "", "write the save node's results to this new folder (with its own run.yaml) instead of the one FILE names")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace results in a save folder that holds another graph's results")
	return cmd
}

func newDAGGraphCmd() *cobra.Command {
	var svg bool
	var out string
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw a DAG file as Graphviz DOT, or as SVG with --svg",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, g, err := loadDAG(args[0], cmd.OutOrStdout())
			if err != nil {
				return err
			}
			data := []byte(dag.DOT(g, reg))
			if svg {
				if data, err = dag.SVG(g, reg); err != nil {
					return err
				}
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return os.WriteFile(out, data, 0o644)
		},
	}
	cmd.Flags().BoolVar(&svg, "svg", false, "write SVG instead of DOT")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

func newDAGExplainCmd() *cobra.Command {
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "explain FILE",
		Short: "Say, without running anything, which nodes would run and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, g, err := loadDAG(args[0], cmd.OutOrStdout())
			if err != nil {
				return err
			}
			cache, err := dag.OpenCache(cacheDirOr(cacheDir, args[0]))
			if err != nil {
				return err
			}
			ds, err := (&dag.Runner{Registry: reg, Cache: cache}).Explain(cmd.Context(), g)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tKIND\tACTION\tWHY")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Node, d.Kind, d.Action, d.Reason)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache", "", "cache folder (default: .dpsflow/cache beside FILE)")
	return cmd
}

func newDAGKindsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "kinds",
		Short: "List the node kinds a DAG file may use, with their ports and parameters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := pipeline.NewRegistry()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, name := range reg.Kinds() {
				k, _ := reg.Kind(name)
				fmt.Fprintf(out, "%s (v%s): %s\n", k.Name, k.Version, k.Doc)
				for _, p := range k.Inputs {
					opt := ""
					if p.Optional {
						opt = ", optional"
					}
					fmt.Fprintf(out, "    in  %-12s %s%s\n", p.Name, p.Type, opt)
				}
				for _, p := range k.Outputs {
					fmt.Fprintf(out, "    out %-12s %s\n", p.Name, p.Type)
				}
				for _, p := range k.Params {
					fmt.Fprintf(out, "    param %-10s %s%s\n", p.Name, p.Type, paramDefault(p))
				}
			}
			return nil
		},
	}
}

// paramDefault says, for 'dag kinds', whether a param is required or what it defaults to
// (nothing for an optional param without a default: absent stays absent).
func paramDefault(p dag.Param) string {
	switch {
	case p.Required:
		return " (required)"
	case p.Default == nil:
		return " (optional)"
	case p.Default == "":
		return ` (default "")`
	}
	return fmt.Sprintf(" (default %v)", p.Default)
}

// saveDirsOf is the folders g's save nodes write, sorted: out instead when given.
func saveDirsOf(g *dag.Graph, out string) []string {
	if out != "" {
		return []string{mustAbs(out)}
	}
	var dirs []string
	for _, d := range pipeline.SaveDirs(g) {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// mustAbs is filepath.Abs, or the path itself if the working folder is gone.
func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
