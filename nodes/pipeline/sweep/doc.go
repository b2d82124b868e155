// Package sweep runs a table spec (pipeline.TableSpec) as many independent shards, on a
// cluster's job array or on local processes, and merges them into the table that
// `dpsflow table` computes on one machine.
//
// A plan folder, on a filesystem every worker sees, holds the plan (sweep.json), a copy of
// the spec, the table's DAG (table.yaml, the same graph `dpsflow table` runs) and one
// content-addressed cache (.dpsflow/cache) that every shard reads and writes. The work is
// split into units — one table cell (task × solver) and one block of its images, whole
// batches — dealt round-robin to the shards. A shard runs each of its units as the part of
// the DAG the cell needs, with the cell's sample node restricted to the block
// (internal/sampleblock): finished batches land in the sample node's scratch folder of the
// shared cache, keyed like everything else by content. Merge then runs the whole DAG: every
// sample finds its batches done, assembles them, and the metrics follow — the same node
// keys, so the same numbers as one machine.
//
// Nothing here schedules: Slurm or Kubernetes does (Export writes the job array or the
// Indexed Job), and shards share no lock server. The cache commits by renaming a finished
// temp folder into place within one directory, which is atomic on local filesystems and on
// NFS, so concurrent shards at worst compute the same entry twice. Each shard keeps a
// status file with a heartbeat, and each finished unit a record, for Status and for resuming
// a requeued shard (its finished units are skipped; a half-done batch resumes from the
// sampler's checkpoint).
package sweep
