package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/pipeline/sweep"
	"github.com/spf13/cobra"
)

func newSweepCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Run a table spec as shards on a cluster (Slurm job array, Kubernetes Indexed Job) or local processes, and merge them",
		Long: `sweep runs what ` + "`dpsflow table`" + ` runs, split into shards that share one folder (on a
filesystem every worker sees) and one content-addressed cache in it:

  dpsflow sweep plan SPEC.yaml --shards N --out DIR   split the spec into units, deal them to N shards
  dpsflow sweep export DIR --slurm | --k8s            write the job array / Indexed Job that runs them
  dpsflow sweep run DIR [--shard I]                   run one shard (I from $SLURM_ARRAY_TASK_ID or
                                                      $JOB_COMPLETION_INDEX); or --local --workers K
  dpsflow sweep status DIR [--json]                   per shard done / running / failed, units left, ETA
  dpsflow sweep merge DIR                             write DIR/table.{md,csv,json} and the grids

A unit is one cell (task × solver) and one block of its images. A rerun or requeued shard
skips the units any run finished and resumes a half-done batch from its checkpoint. The
merged table has the numbers ` + "`dpsflow table`" + ` computes on one machine for the same spec.`,
	}
	cmd.AddCommand(newSweepPlanCmd(), newSweepRunCmd(), newSweepStatusCmd(), newSweepMergeCmd(), newSweepExportCmd())
	return cmd
}

func newSweepPlanCmd() *cobra.Command {
	var out string
	var shards, block int
	cmd := &cobra.Command{
		Use:   "plan SPEC.yaml --shards N --out DIR",
		Short: "Split a table spec into units (task × solver × image block) dealt to N shards; write the plan into DIR",
		Long: `plan checks the spec as ` + "`dpsflow table`" + ` does (nothing runs), splits each cell (task × solver)
into blocks of --block images (whole batches; default one batch) and deals the units
round-robin to --shards shards. DIR must be new or empty (or hold this very plan) and be on
a filesystem every worker sees; the spec's images and checkpoints must be too.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out is required")}
			}
			dir, err := filepath.Abs(out)
			if err != nil {
				return usageError{err}
			}
			p, tp, err := sweep.NewPlan(args[0], sweep.Options{Shards: shards, Block: block, Version: version()})
			if err != nil {
				return usageError{err}
			}
			if err := p.Write(dir, tp); err != nil {
				return usageError{err}
			}
			per := map[int]int{}
			for _, u := range p.Units {
				per[u.Shard]++
			}
			fmt.Fprintf(cmd.OutOrStdout(), "planned %d units (%d images in blocks of %d) over %d shards (%d–%d units each) into %s\n",
				len(p.Units), p.N, p.Block, p.Shards, minVal(per, p.Shards), maxVal(per), dir)
			for key, why := range tp.Skipped {
				fmt.Fprintf(cmd.OutOrStdout(), "not run: %s on %s: %s\n", key[1], key[0], why)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "next: dpsflow sweep export %s --slurm (or --k8s), or dpsflow sweep run %s --local --workers K\n", dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the plan folder (required; new or empty; on a filesystem every worker sees)")
	cmd.Flags().IntVar(&shards, "shards", 1, "how many shards (array tasks, pods) share the work")
	cmd.Flags().IntVar(&block, "block", 0, "images per unit, a multiple of the spec's batch (default one batch)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func minVal(m map[int]int, n int) int {
	lo := -1
	for i := range n {
		if lo < 0 || m[i] < lo {
			lo = m[i]
		}
	}
	return lo
}

func maxVal(m map[int]int) int {
	hi := 0
	for _, v := range m {
		hi = max(hi, v)
	}
	return hi
}

func newSweepRunCmd() *cobra.Command {
	shard := -1
	var local bool
	var workers int
	cmd := &cobra.Command{
		Use:   "run DIR [--shard I | --local --workers K]",
		Short: "Run one shard of a sweep (the cluster's index by default), or every shard as local processes",
		Long: `run runs the units of one shard that no run has finished: --shard I, or the index the
cluster gives the worker ($SLURM_ARRAY_TASK_ID, or $JOB_COMPLETION_INDEX of a Kubernetes
Indexed Job). Finished units are skipped; a half-done batch resumes from its checkpoint.
SIGTERM or Ctrl-C stop it between sampler steps. Progress goes to stderr and the shard's
status file (see ` + "`dpsflow sweep status`" + `).

--local runs every shard as a process of this machine, --workers at a time, logs in DIR/logs.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if local {
				if cmd.Flags().Changed("shard") {
					return usageError{errors.New("--local runs every shard; give --shard without it")}
				}
				return runLocalShards(ctx, cmd, dir, workers)
			}
			if cmd.Flags().Changed("workers") {
				return usageError{errors.New("--workers goes with --local")}
			}
			if !cmd.Flags().Changed("shard") {
				i, from, ok, err := sweep.ShardFromEnv()
				if err != nil {
					return usageError{err}
				}
				if !ok {
					return usageError{errors.New("give --shard I (or run under a Slurm job array or a Kubernetes Indexed Job, which set the index), or --local --workers K")}
				}
				shard = i
				fmt.Fprintf(cmd.ErrOrStderr(), "shard %d (from $%s)\n", shard, from)
			}
			reg, err := pipeline.NewRegistry()
			if err != nil {
				return err
			}
			if _, _, err := sweep.Open(dir, reg); err != nil {
				return usageError{err}
			}
			p := newProgress(cmd.ErrOrStderr())
			err = sweep.RunShard(ctx, dir, shard, reg, sweep.RunOptions{Events: sweepEvents(p), Log: cmd.ErrOrStderr()})
			p.finish()
			var rangeErr *sweep.ShardRangeError
			switch {
			case errors.As(err, &rangeErr):
				return usageError{err}
			case err != nil && ctx.Err() != nil:
				return interruptedError{err}
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "shard %d of %s done\n", shard, dir)
			return nil
		},
	}
	cmd.Flags().IntVar(&shard, "shard", -1, "the shard to run (default $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX)")
	cmd.Flags().BoolVar(&local, "local", false, "run every shard as local processes")
	cmd.Flags().IntVar(&workers, "workers", 1, "with --local: shards at once")
	return cmd
}

// sweepEvents shows a unit's node events, except a sample node stopping at the end of
// its block, which is how a unit ends.
func sweepEvents(p *progress) func(dag.Event) {
	return func(ev dag.Event) {
		if sweep.BlockDone(ev) {
			p.closeBar(ev.Node)
			return
		}
		p.event(ev)
	}
}

// runLocalShards runs every shard of the plan in dir as a child process, workers at a
// time; a cancelled ctx sends them SIGTERM (they save where they are).
func runLocalShards(ctx context.Context, cmd *cobra.Command, dir string, workers int) error {
	if workers < 1 {
		return usageError{fmt.Errorf("--workers %d: must be at least 1", workers)}
	}
	reg, err := pipeline.NewRegistry()
	if err != nil {
		return err
	}
	p, _, err := sweep.Open(dir, reg)
	if err != nil {
		return usageError{err}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	sem := make(chan struct{}, workers)
	var mu sync.Mutex
	var failed []error
	var wg sync.WaitGroup
	for i := range p.Shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			logPath := filepath.Join(dir, sweep.LogsDir, fmt.Sprintf("local-%d.out", i))
			log, err := os.Create(logPath)
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
				return
			}
			defer log.Close()
			c := exec.CommandContext(ctx, exe, "sweep", "run", dir, "--shard", fmt.Sprint(i))
			c.Stdout, c.Stderr = log, log
			c.Cancel = func() error { return c.Process.Signal(syscall.SIGTERM) }
			c.WaitDelay = time.Minute
			t0 := time.Now()
			err = c.Run()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Errorf("shard %d: %v (log: %s)", i, err, logPath))
				fmt.Fprintf(cmd.ErrOrStderr(), "shard %d failed after %s (log: %s)\n", i, time.Since(t0).Round(time.Second), logPath)
				return
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "shard %d done in %s\n", i, time.Since(t0).Round(time.Second))
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return interruptedError{errors.New("interrupted: finished units are recorded and batches saved; run the same command again to resume")}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d shards failed: %w", len(failed), p.Shards, errors.Join(failed...))
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%d shards of %s done in %s; next: dpsflow sweep merge %s\n", p.Shards, dir, time.Since(start).Round(time.Second), dir)
	return nil
}

func newSweepStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status DIR [--json]",
		Short: "Per shard: done, running, failed, lost (no heartbeat) or not started; units left and an ETA",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return usageError{err}
			}
			now := time.Now().UTC()
			r, err := sweep.Status(dir, now)
			if err != nil {
				return usageError{err}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			fmt.Fprint(cmd.OutOrStdout(), r.Text(now))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newSweepMergeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "merge DIR",
		Short: "Once every shard is done: write DIR/table.{md,csv,json} and the grids, as `dpsflow table` does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return usageError{err}
			}
			reg, err := pipeline.NewRegistry()
			if err != nil {
				return err
			}
			if _, _, err := sweep.Open(dir, reg); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			p := newProgress(cmd.ErrOrStderr())
			table, err := sweep.Merge(ctx, dir, reg, p.event)
			p.finish()
			if err != nil && ctx.Err() != nil {
				return interruptedError{err}
			} else if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), table.Markdown())
			fmt.Fprintf(cmd.OutOrStdout(), "\nwrote %s in %s\n", dir, time.Since(start).Round(time.Second))
			if failed := table.Failures(); len(failed) > 0 {
				return fmt.Errorf("%d cells failed (listed in %s)", len(failed), filepath.Join(dir, pipeline.TableMarkdown))
			}
			return nil
		},
	}
}

func newSweepExportCmd() *cobra.Command {
	var slurm, k8s bool
	var so sweep.SlurmOptions
	var ko sweep.K8sOptions
	var gpus, cpus int
	cmd := &cobra.Command{
		Use:   "export DIR --slurm [--partition P] [--gpus-per-task G] [--cpus-per-task C] [--time T] [--array-limit L] | --k8s --image IMG --pvc NAME",
		Short: "Write the Slurm job array (DIR/sweep.sbatch, DIR/submit.sh) or the Kubernetes Indexed Job (DIR/sweep-job.yaml, DIR/merge-job.yaml)",
		Long: `export writes what runs the shards of a plan on a cluster.

--slurm: DIR/sweep.sbatch, a job array with one task per shard (logs DIR/logs/%A_%a.out,
--requeue); ` + "`sbatch --wait DIR/sweep.sbatch`" + ` runs every shard. DIR/submit.sh submits it and then
the merge job with --dependency=afterok. The workers run the dpsflow binary given by
--dpsflow (default: this one), which every node must see at that path.

--k8s: DIR/sweep-job.yaml, an Indexed Job (completionMode: Indexed, one completion per
shard, parallelism, backoffLimitPerIndex) whose pods mount the ReadWriteMany claim --pvc at
the plan folder's path (or --mount, a folder above it that also holds the spec's inputs),
with GPU limits when asked; and DIR/merge-job.yaml. Apply the first, wait for it, apply the
second.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := filepath.Abs(args[0])
			if err != nil {
				return usageError{err}
			}
			if slurm == k8s {
				return usageError{errors.New("give one of --slurm and --k8s")}
			}
			p, err := sweep.ReadPlan(dir)
			if err != nil {
				return usageError{err}
			}
			var paths []string
			if slurm {
				if so.Dpsflow == "" {
					if so.Dpsflow, err = os.Executable(); err != nil {
						return err
					}
				}
				so.GPUsPerTask, so.CPUsPerTask = gpus, cpus
				paths, err = sweep.ExportSlurm(dir, p, so)
			} else {
				ko.GPUs, ko.CPUs = gpus, cpus
				paths, err = sweep.ExportK8s(dir, p, ko)
			}
			if err != nil {
				return usageError{err}
			}
			for _, path := range paths {
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
			}
			if slurm {
				fmt.Fprintf(cmd.OutOrStdout(), "submit with: %s (or sbatch --wait %s, then dpsflow sweep merge %s)\n", paths[1], paths[0], dir)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "run with: kubectl apply -f %s; kubectl wait --for=condition=complete --timeout=-1s -f %s; kubectl apply -f %s\n", paths[0], paths[0], paths[1])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&slurm, "slurm", false, "write a Slurm job array")
	f.StringVar(&so.Partition, "partition", "", "Slurm partition (default: the cluster's)")
	f.IntVar(&gpus, "gpus-per-task", 0, "GPUs per shard (Slurm --gpus-per-task; Kubernetes nvidia.com/gpu limit)")
	f.IntVar(&cpus, "cpus-per-task", 0, "CPUs per shard (Slurm --cpus-per-task; Kubernetes cpu request)")
	f.StringVar(&so.Time, "time", "", "Slurm time limit per shard, e.g. 4:00:00 (default: the partition's)")
	f.IntVar(&so.ArrayLimit, "array-limit", 0, "Slurm: at most this many shards at once (default: no limit)")
	f.StringVar(&so.Dpsflow, "dpsflow", "", "Slurm: the dpsflow binary the workers run (default: this one's path)")
	f.BoolVar(&k8s, "k8s", false, "write a Kubernetes Indexed Job")
	f.StringVar(&ko.Image, "image", "", "Kubernetes: a container image with dpsflow on its PATH")
	f.StringVar(&ko.PVC, "pvc", "", "Kubernetes: the ReadWriteMany PersistentVolumeClaim that holds the plan folder")
	f.StringVar(&ko.Mount, "mount", "", "Kubernetes: where the claim is mounted (default: the plan folder)")
	f.IntVar(&ko.Parallelism, "parallelism", 0, "Kubernetes: pods at once (default: every shard)")
	return cmd
}
