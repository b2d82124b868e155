// Package kernel is dpsflow's Jupyter kernel for Go: cells are Go, interpreted by yaegi
// with the standard library, GoMLX and dpsflow's packages compiled in; values persist
// from cell to cell, and cells form a reactive dataflow graph.
//
// # Install
//
//	dpsflow kernel install            # for this user: $JUPYTER_DATA_DIR or ~/.local/share/jupyter
//	dpsflow kernel install --prefix P # into P/share/jupyter/kernels (a venv, a conda env)
//
// then choose "Go (dpsflow)" in Jupyter. The kernel spec runs this dpsflow executable
// as `dpsflow kernel --connection-file {connection_file}`; reinstall after moving it.
// It speaks messaging protocol 5.3 over pure-Go ZeroMQ, so nothing else is needed.
//
// # Cells
//
// A cell is what a Go REPL takes: import lines, declarations (func, type, var, const)
// and statements, in any order. `x := 3` in one cell and `x + 1` in the next shows 4.
// A name may be defined again by a later cell (`x := "now a string"`), a function
// redefined; a struct type keeps its first definition (a yaegi limit: give the new
// one another name). `func main` is refused: yaegi would run it after every cell.
//
// Importable are the standard library, GoMLX's graph, tensors, shapes, dtypes and
// backends, and dpsflow's xla, dag, plot and nodes/... packages; display and nb are
// imported in every session. Generic functions cannot be instantiated by the
// interpreter; graph.MulScalar, AddScalar, ..., Scalar are exposed for float64 and
// tensors.FromFlatDataAndDimensions, FromScalar, CopyFlatData, ... for float32, and
// package nb has non-generic helpers:
//
//	op := func(x *graph.Node) *graph.Node { return graph.Mul(graph.MulScalar(x, 2), x) }
//	value, grad := nb.Grad(op, nb.Tensor([]float32{1, 2, 3})) // traced, differentiated and run compiled
//	nb.Floats(grad)                                           // [4 8 12]
//
// nb.Backend is the shared backend ($DPSFLOW_BACKEND, else embedded); nb.Exec compiles
// any graph function; nb.Run, Run2, Tensor, Floats, Value convert and run. nb.Execute(spec)
// runs a whole DPS job through the workflow engine with its results cached in
// nb.CacheDir() ($DPSFLOW_CACHE, else the user cache folder), so a restarted kernel
// re-runs a notebook in seconds; nb.ExecuteAll runs independent jobs (a sweep) in parallel.
//
// The value of a cell's last expression is its result: an image.Image shows as a
// PNG, a display.MIME as itself, anything else as text (%v). A call with several
// results shows the first; prints (fmt.Println) show nothing. Output printed while a
// cell runs appears as it comes, including what compiled code writes to os.Stdout
// and os.Stderr. A panic, a compile error or a syntax error is the cell's error, with
// the cell line it happened on; it never stops the kernel. os.Exit and log.Fatal in a
// cell end the cell, not the kernel (an "Exit" or "Fatal" error; the variables stay).
//
// # Crashes and --max-memory
//
// What no recover can catch restarts the interpreter, and the notebook is told:
//
//   - a panic in a goroutine a cell started (Go lets no other goroutine recover it),
//     and os.Exit or log.Fatal called from such a goroutine;
//   - a cell that makes the interpreter use more memory than --max-memory (default
//     75% of the machine's memory, or of the container's limit; sizes such as 4GiB or
//     512MiB; 0 or off for no bound);
//   - a fatal error of the Go runtime (out of memory, concurrent map writes) and
//     compiled code that calls os.Exit (log.Default().Fatal, for one).
//
// The cell that was running gets an error reply naming the cause (GoroutinePanic with
// the panic's value and cell line, MemoryLimit with the bound, OutOfMemory, FatalError,
// Exit with the status, Killed with the signal) and saying that the kernel restarted;
// later cells run in a fresh interpreter: variables, functions and imports of earlier
// cells are gone. A crash between cells (a goroutine that panics after its cell
// answered) is told in the output of the next cell.
//
// How: `dpsflow kernel` is a supervisor that owns the five ZeroMQ sockets and runs
// the interpreter in a child process (the same executable), forwarding the signed
// messages over pipes. It notes which execute_request is running, so that when the
// child dies it can answer it from the child's exit status and last stderr lines, and
// it starts a fresh child on the same sockets: the front end sees no reconnection.
// A supervisor was chosen over in-process recovery because yaegi runs a cell's
// goroutines with a plain go statement (no hook to wrap them in a recover), goroutines
// started by compiled code called from a cell are out of the interpreter's reach
// anyway, and Go cannot catch a fatal runtime error or a compiled os.Exit at all;
// one mechanism covers them all. The memory bound is a watchdog in the supervisor
// that reads the child's resident memory every 20ms and kills it past the bound
// (RLIMIT_AS would count the address space that Go and XLA reserve but never use);
// the child also sets debug.SetMemoryLimit to the bound, so that garbage is
// collected before it counts. Measured on the development machine: a restart takes
// about 0.1s; a cell appending 64MiB slices in a loop under a 512MiB bound is stopped
// at about 513MiB resident.
//
// # Reactive cells
//
// Each cell defines names (top-level vars, consts, funcs, types and := names) and reads
// names (free identifiers defined by other cells). The cells are the nodes of a
// dag.Graph ("go-cell" nodes) with an edge from the cell that defines a name to each
// cell that reads it. When a cell runs, the cells that depend on it, directly or
// transitively, run again in topological order, and the cell's output says so:
// "re-ran dependents: [3] [5]" (their prompt numbers). Their results are shown as
// displays in the running cell's output.
//
//   - The definer of a name is the cell that ran last among those defining it; a cell
//     whose names are all defined by cells that ran later is superseded and never
//     re-run (it would clobber the newer values).
//   - Cells are told apart by the cell id JupyterLab and Notebook 7 send
//     (metadata.cellId): running an edited cell replaces its old version. Without ids,
//     a cell with the same source is the same cell, and an edited cell is a new one
//     that supersedes the old when it defines the same names.
//   - Assigning (x = 5, x++) to a name does not make a cell its definer; only
//     definitions do.
//   - A change that would make the cells depend on each other in a cycle is refused
//     with an error naming the cells and the names ("[1] reads b from [2]; ...").
//   - If a dependent fails, the run is an error naming it; the rest is not re-run.
//
// CellGraph turns a notebook's cells into a dag.Graph and NewCellKind runs its nodes in
// a Session, for running a notebook as a workflow.
//
// # Display
//
// Package display (imported in every session) publishes rich output from a cell:
// display.PNG(b), Image(img), SVG(s), HTML(s), Markdown(s), Text(s), JSON(v),
// Table(header, rows) (Markdown, HTML and aligned text), Show(display.MIME{...}) and
// Clear(). display.New(data) returns a handle whose Update(data) replaces the output
// in place; display.NewProgress(label, total) is a progress bar updated in place
// (Set, Update, Done; Func() fits sampler.Progress).
//
// # Interrupt
//
// Interrupting the kernel (interrupt_request on the control channel, or SIGINT)
// stops the running cell: interpreted code stops at once, even in an infinite loop.
// Compiled code stops if it watches nb.Context(), the running cell's context, which
// the interrupt cancels; pass it to long runs such as sampler.Run. Restarting the
// kernel resets the interpreter. The supervisor passes SIGINT on to the interpreter.
//
// # Limitations
//
// No input() (stdin requests), no comms or widgets, no debugger. History is kept for
// the session only. Redefining a struct type keeps its first layout. Completion
// covers package members, names defined by cells and the fields and methods of
// global values; inspection shows signatures and, where the package source is on the
// machine, documentation.
package kernel
