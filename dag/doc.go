// Package dag is a generic workflow engine: typed nodes wired into a directed acyclic
// graph, validated before anything runs, executed in topological order with independent
// nodes in parallel, and cached on disk by content hash so that unchanged work is
// skipped. It knows nothing of what the nodes compute.
//
// # Vocabulary
//
// A Kind is a kind of node: named, versioned, with typed input and output Ports, typed
// Params and a Run function. Kinds and port types live in a Registry. A Graph lists
// Nodes; each is an instance of a kind with parameter values and inputs wired as
// "nodeID.port". Graphs are built in Go (Graph.Add) or read from YAML (Load, Parse):
//
//	name: demo
//	seed: 1
//	nodes:
//	  - id: a
//	    kind: const
//	    params: {value: 2}
//	  - id: b
//	    kind: square
//	    inputs: {x: a.out}
//
// Registry.Validate reports every problem at once (*ValidationError), each naming the
// node and the port or param. Graph.Order and Graph.Downstream give the topological
// order and the dependents of a node.
//
// # Running
//
// Runner.Run validates and runs a graph: at most Parallel nodes at once, a failed node's
// dependents skipped while independent nodes finish, the first failure returned as a
// *NodeError; a panic in a node becomes that node's error. A node's Run gets a *Call:
// inputs (In), parameters with defaults applied (Param, Int, Float...), the effective
// seed, a context cancelled with the run, Progress reports and a ScratchDir.
//
// # Cache
//
// With a Cache (OpenCache), each cacheable node has a key: the sha256 of canonical JSON
// of its kind name, version and code version (if set), normalised parameters, effective
// seed, and the sha256 of the encoded bytes of each connected input. A node whose key is
// in the cache is not run;
// its outputs are decoded from disk. Outputs are written to a temporary directory, synced
// and renamed into place, so a run killed at any moment leaves a whole entry or none;
// ScratchDir lets a long node keep partial work across a killed run. A node is not cached
// when its kind says NoCache, when one of its outputs has a memory-only type (registered
// with a nil Codec) or when one of its inputs comes from such an output. Bump
// Kind.Version when a kind's behaviour changes; Kind.CodeVersion, when set (for example
// from internal/codever), also joins the key, so that a change in the code a kind runs
// makes its cached results stale on its own.
//
// Runner.Explain says, without running, what Run would do with each node and why
// ("params changed: steps 100 → 50"); it compares with a small record of each node's
// last key kept under the cache directory, per graph name.
//
// # Pictures and progress
//
// DOT renders a graph for graphviz; SVG draws it with a built-in layered layout.
// Runner.Events receives queued/start/progress/cached/done/failed/skipped events.
//
// Reading an entry back checks each file's size and sha256 against the manifest; a
// damaged entry (a file missing, truncated or changed, an unreadable manifest) is
// recomputed and replaced, with an EventWarning that says so. A write that fails (a full
// disk) leaves no entry and names the cache folder. VerifyCache re-hashes a whole cache;
// GCCache removes entries no recent run used (a read moves the manifest's modification
// time, the entry's last use, forward). Processes on several machines may share one
// cache folder (a shared filesystem): temp names in tmp/ carry host name and pid, and
// only this machine's leftovers of ended processes, or writes untouched for a day, are
// removed.
//
// Cache layout: <dir>/objects/<k[:2]>/<key>/ (manifest.json and one file per output),
// <dir>/tmp/ (entries being written, as HOST-PID-what-N; stale ones are removed by
// OpenCache), <dir>/scratch/<key>/ (ScratchDir), <dir>/last/<graph>/<node>.json (for
// Explain).
package dag
