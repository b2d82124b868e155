package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/spf13/cobra"
)

func newTableCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "table SPEC.yaml --out DIR",
		Short: "Run tasks × solvers from a table spec and write the comparison table (md, csv, json) and grids",
		Long: `table runs every solver of a table spec on every task of it (the same measured images for
all solvers of a task), scores them — PSNR, SSIM, ‖y − A(x)‖, network evaluations and seconds
per image; LPIPS when the spec names its weight files; FD and KID on the shipped MNIST
classifier's features (or Inception's, given pytorch-fid's weights) and the classifier's
accuracy on the reconstructions — and writes DIR/table.md, DIR/table.csv, DIR/table.json, a
comparison grid per task (DIR/grid-TASK.png) and DIR/table.yaml, the DAG that computed them.

Every run is a node of that DAG, cached under DIR/.dpsflow: an interrupted table resumes
where it stopped when the same command is run again, and a spec that adds a solver, run into
the same DIR, only runs the new one (the table's files are rewritten). A solver that cannot
take a task (DDRM on a blur without an SVD) is listed as not run, with the reason; one that
diverges (its state became NaN) is marked so, and the table is still written. The spec
format is in nodes/pipeline (TableSpec) and the README.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			spec, err := pipeline.LoadTableSpec(args[0])
			if err != nil {
				return usageError{err}
			}
			plan, err := pipeline.PlanTable(spec)
			if err != nil {
				return usageError{err}
			}
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			dir, err := filepath.Abs(out)
			if err != nil {
				return usageError{err}
			}
			reg, err := pipeline.NewRegistry()
			if err != nil {
				return err
			}
			if err := reg.Validate(plan.Graph); err != nil {
				return usageError{err}
			}
			if err := checkTableDir(dir); err != nil {
				return usageError{err}
			}
			release, err := lockDir(dir)
			if err != nil {
				return err
			}
			defer release()
			dagFile := filepath.Join(dir, pipeline.TableDAG)
			if err := plan.Graph.Save(dagFile); err != nil {
				return err
			}
			// A failed cell (a diverged solver) is part of the table; CollectTable says whether
			// the failure was elsewhere.
			res, err := runGraph(cmd, reg, plan.Graph, cacheDirFor(dagFile), nil)
			if res == nil {
				return err
			}
			table, err := pipeline.CollectTable(plan, res)
			if err != nil {
				return err
			}
			if _, err := table.Write(dir); err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), table.Markdown())
			fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s in %s\n", dir, time.Since(start).Round(time.Second))
			if failed := table.Failures(); len(failed) > 0 {
				return fmt.Errorf("%d cells failed (listed in %s); fix the cause and run the same command again: the rest is cached",
					len(failed), filepath.Join(dir, pipeline.TableMarkdown))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the table folder (required; new, empty, or a table folder, whose files are rewritten and whose cache is reused)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// checkTableDir accepts a new or empty folder (or one holding only .dpsflow: a table
// stopped before it began), or one holding a table (its table.yaml): a table folder is
// rewritten, reusing its cache. Anything else is refused, so nothing that is not a table
// is overwritten.
func checkTableDir(dir string) error {
	if empty, err := emptyDir(dir); empty || err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, pipeline.TableDAG)); err != nil {
		return fmt.Errorf("--out %s exists and holds no table (no %s); give a new or empty folder", dir, pipeline.TableDAG)
	}
	return nil
}
