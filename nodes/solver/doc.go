// Package solver is the unit of extension for everything that turns a measurement into an
// estimate: a Problem (prior — nil for classical solvers —, operator, noise model, y, the
// shape of x, backend), the Solver interface, and a registry by name that the CLI
// (`dpsflow solvers`, `dpsflow run --solver NAME --param k=v`), the DAG's `solver` kind and
// notebooks read.
//
// A solver declares what it needs (a prior, operator capabilities such as an SVD or a
// projection) and its parameters (name, type, default, meaning); Check refuses a problem or
// a parameter set that does not fit before any work, naming the solver, the operator and
// the missing capability or the bad parameter.
//
// One host loop for all: a solver supplies an Iteration (a compiled step, or a host
// iteration) and Loop owns the rest — drawing the start state from the seed, the RNG state
// carried between steps, the all-finite check after every step (DivergedError with the
// last good state), snapshots, checkpoints, bit-exact resume, cancellation between steps
// and progress. A new solver gets all of that by being an Iteration.
package solver
