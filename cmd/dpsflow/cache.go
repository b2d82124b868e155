package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/bytesize"
	"github.com/spf13/cobra"
)

func newCacheCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Check and prune the cache of node results (.dpsflow/cache)",
		Long: `Runs keep each node's results in a cache folder (.dpsflow/cache beside run.yaml), keyed by a
content hash, so that a rerun only does what changed. Several processes, on several machines
sharing a filesystem, may use one cache folder at once.

DIR is a cache folder (it holds objects/) or a folder with .dpsflow/cache in it (a run or
table folder); default ".".`,
	}
	cmd.AddCommand(newCacheVerifyCmd(), newCacheGCCmd())
	return cmd
}

// resolveCacheDir finds the cache folder that DIR names: DIR itself when it holds
// objects/, else DIR/.dpsflow/cache.
func resolveCacheDir(args []string) (string, error) {
	dir := "."
	if len(args) > 0 {
		dir = args[0]
	}
	for _, d := range []string{dir, filepath.Join(dir, ".dpsflow", "cache")} {
		if info, err := os.Stat(filepath.Join(d, "objects")); err == nil && info.IsDir() {
			return d, nil
		}
	}
	if _, err := os.Stat(dir); err != nil {
		return "", usageError{fmt.Errorf("cache folder %s: %w", dir, err)}
	}
	return "", usageError{fmt.Errorf("no dpsflow cache in %s (looked for %s and %s)", dir,
		filepath.Join(dir, "objects"), filepath.Join(dir, ".dpsflow", "cache", "objects"))}
}

func newCacheVerifyCmd() *cobra.Command {
	var asJSON, remove bool
	cmd := &cobra.Command{
		Use:   "verify [DIR]",
		Short: "Re-hash every cache entry and report damaged ones (exit status 1 if any)",
		Long: `verify re-reads every entry of the cache: its manifest, and each output file's size and sha256
against the manifest. It lists the damaged entries (which entry, which file, what is wrong:
missing, truncated, wrong size, hash mismatch, unreadable, bad manifest) and exits with
status 1 if there is any; --remove deletes them (a run would recompute them anyway). It also
counts partial states of nodes that can resume (scratch/) and temporary writes (tmp/).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := resolveCacheDir(args)
			if err != nil {
				return err
			}
			rep, err := dag.VerifyCache(dir, dag.VerifyOptions{Remove: remove})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printVerify(out, rep)
			}
			if n := len(rep.Damaged); n > 0 {
				if remove {
					return fmt.Errorf("%d damaged cache %s in %s (removed)", n, plural(n, "entry", "entries"), rep.Dir)
				}
				return fmt.Errorf("%d damaged cache %s in %s; run 'dpsflow cache verify --remove' to delete them, or rerun: runs recompute them", n, plural(n, "entry", "entries"), rep.Dir)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	cmd.Flags().BoolVar(&remove, "remove", false, "delete the damaged entries")
	return cmd
}

func printVerify(w io.Writer, r *dag.VerifyReport) {
	fmt.Fprintf(w, "cache %s\n", r.Dir)
	for _, d := range r.Damaged {
		what := d.Key
		if what == "" {
			what = d.Path
		}
		if d.Node != "" {
			what += fmt.Sprintf(" (node %q)", d.Node)
		}
		state := "DAMAGED"
		if d.Removed {
			state = "DAMAGED, removed"
		}
		fmt.Fprintf(w, "  %s %s\n", state, what)
		for _, p := range d.Problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
	}
	fmt.Fprintf(w, "%d %s (%s): ", r.Entries, plural(r.Entries, "entry", "entries"), bytesize.Format(r.Bytes))
	if len(r.Damaged) == 0 {
		fmt.Fprintln(w, "all verified")
	} else {
		fmt.Fprintf(w, "%d damaged\n", len(r.Damaged))
	}
	fmt.Fprintf(w, "scratch/: %d partial %s (%s); tmp/: %d %s (%s)\n",
		r.Scratch, plural(r.Scratch, "state", "states"), bytesize.Format(r.ScratchBytes),
		r.Tmp, plural(r.Tmp, "temporary folder", "temporary folders"), bytesize.Format(r.TmpBytes))
}

func newCacheGCCmd() *cobra.Command {
	var keepDays float64
	var maxSize string
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "gc [DIR]",
		Short: "Remove cache entries no recent run used",
		Long: `gc removes what no recent run used. A run records a use when it reads an entry back (its
commit counts as one). --keep-days N removes entries unused for N days (and partial
scratch/ states untouched as long, never one written in the last hour); --max-size S then
removes the least recently used entries until the entries total under S (e.g. 500MiB,
2GiB, 1.5GB; K, M, G, T alone are binary). Both may be given. Temporary folders left in
tmp/ by ended processes of this machine, or untouched for a day, are always removed.
--dry-run only lists what would go.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := dag.GCOptions{DryRun: dryRun}
			if cmd.Flags().Changed("keep-days") {
				if keepDays < 0 || math.IsNaN(keepDays) || keepDays > 1e6 {
					return usageError{fmt.Errorf("--keep-days %v: want a number of days >= 0", keepDays)}
				}
				opts.Unused = time.Duration(keepDays * 24 * float64(time.Hour))
				if opts.Unused == 0 {
					opts.Unused = time.Nanosecond // 0 days: everything not used this instant
				}
			}
			if maxSize != "" {
				n, err := bytesize.Parse(maxSize)
				if err != nil {
					return usageError{fmt.Errorf("--max-size: %w", err)}
				}
				if n == 0 {
					return usageError{errors.New("--max-size 0: to empty the cache, delete its folder (or use --keep-days 0)")}
				}
				opts.MaxSize = n
			}
			dir, err := resolveCacheDir(args)
			if err != nil {
				return err
			}
			rep, err := dag.GCCache(dir, opts)
			if rep != nil {
				out := cmd.OutOrStdout()
				if asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					if jerr := enc.Encode(rep); jerr != nil && err == nil {
						err = jerr
					}
				} else {
					printGC(out, rep, opts)
				}
			}
			return err
		},
	}
	cmd.Flags().Float64Var(&keepDays, "keep-days", 0, "remove entries unused for this many days")
	cmd.Flags().StringVar(&maxSize, "max-size", "", "then remove least recently used entries until the entries total under this size (500MiB, 2GiB)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "list what would be removed; remove nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

func printGC(w io.Writer, r *dag.GCReport, opts dag.GCOptions) {
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(w, "cache %s\n", r.Dir)
	for _, it := range r.Removed {
		name := it.Name
		if it.Node != "" {
			name += fmt.Sprintf(" (node %q)", it.Node)
		}
		fmt.Fprintf(w, "  %s %-7s %s  %s: %s\n", verb, it.What, name, bytesize.Format(it.Bytes), it.Why)
	}
	if opts.Unused == 0 && opts.MaxSize == 0 {
		fmt.Fprintln(w, "no --keep-days or --max-size: only temporary leftovers are removed")
	}
	freed := "freed"
	if r.DryRun {
		freed = "would free"
	}
	fmt.Fprintf(w, "%s %d %s: %s %s; %d %s kept (%s)\n", verb, len(r.Removed), plural(len(r.Removed), "item", "items"),
		freed, bytesize.Format(r.Freed), r.Kept, plural(r.Kept, "entry", "entries"), bytesize.Format(r.KeptBytes))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
