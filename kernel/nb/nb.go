// Package nb is the notebook's helper kit: the running cell's context, the default
// GoMLX backend, DPS jobs run through the workflow engine with their results cached
// (Execute, ExecuteAll, CacheDir), and non-generic forms of the generic GoMLX calls
// (tensor from a slice, slice from a tensor, compile-and-run, gradient), which the
// interpreter cannot instantiate itself.
//
// The helpers panic on error; the kernel reports a panic as the cell's error.
package nb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/dpsflow/dpsflow/kernel/internal/hook"
	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Context is the context of the running cell; it is cancelled when the user interrupts
// the kernel. Pass it to long compiled runs (sampler.Run) so that they stop.
func Context() context.Context { return hook.Context() }

// CacheDir is where notebooks keep the results of expensive nodes, for
// pipeline.Execute(nb.Context(), spec, nb.CacheDir(), nil): $DPSFLOW_CACHE when set, else
// the user cache directory's dpsflow/notebooks (~/.cache/dpsflow/notebooks on Linux), else
// dpsflow-notebooks in the temporary directory. Results are keyed by a hash of what
// produced them, so a restarted kernel re-runs a notebook quickly and an edited cell
// recomputes only what changed. The folder is created by whoever opens the cache.
func CacheDir() string {
	if d := os.Getenv("DPSFLOW_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "dpsflow", "notebooks")
	}
	return filepath.Join(os.TempDir(), "dpsflow-notebooks")
}

// Execute runs a DPS job as `dpsflow run` does (pipeline.Execute: load, measure, sample,
// score), under the running cell's context, so an interrupt stops it, with every node's
// result cached in CacheDir(): running it again with the same spec, even after a kernel
// restart, reads the results back instead of sampling. It panics on error, which makes
// the error the cell's.
func Execute(spec pipeline.RunSpec) *pipeline.Outcome {
	return ExecuteAll(spec)[0]
}

// ExecuteAll runs independent DPS jobs at once, up to GOMAXPROCS of them at a time (a job
// on the embedded backend keeps about one core busy), and returns their outcomes in the
// order of specs. Jobs that share nodes (the same digits, the same prior) share their
// cached results. The goroutines run compiled code only: the interpreter that runs cells
// is not safe for all code run concurrently, so a sweep is best written as a list of specs
// for ExecuteAll rather than as goroutines in a cell. When jobs fail, it panics after all
// have finished, with the first failure named by the job's position and name.
func ExecuteAll(specs ...pipeline.RunSpec) []*pipeline.Outcome {
	outs := make([]*pipeline.Outcome, len(specs))
	errs := make([]error, len(specs))
	var next atomic.Int64
	var wg sync.WaitGroup
	ctx, cache := Context(), CacheDir()
	for range min(len(specs), runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(specs); i = int(next.Add(1) - 1) {
				outs[i], errs[i] = pipeline.Execute(ctx, specs[i], cache, nil)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			panic(fmt.Errorf("nb.Execute: job %d (%s): %w", i, specs[i].Name, err))
		}
	}
	return outs
}

// Table runs a table spec (pipeline.ParseTableSpec: tasks × solvers and their metrics) as
// `dpsflow table` does, under the running cell's context and with every run cached in
// CacheDir(), and returns the table (its Markdown, rows and per-task grids). It panics on
// error, which makes the error the cell's.
func Table(spec *pipeline.TableSpec) *pipeline.Table {
	plan, err := pipeline.PlanTable(spec)
	if err == nil {
		var t *pipeline.Table
		if t, err = pipeline.RunTable(Context(), plan, CacheDir(), nil); err == nil {
			return t
		}
	}
	panic(fmt.Errorf("nb.Table: %w", err))
}

// Interrupted reports whether the running cell was interrupted, for long loops.
func Interrupted() bool { return hook.Context().Err() != nil }

var (
	backendMu sync.Mutex
	backend   backends.Backend
)

// Backend is the backend cells compute on: $DPSFLOW_BACKEND, else the pure-Go
// "embedded" one. It is created on first use and shared.
func Backend() backends.Backend {
	backendMu.Lock()
	defer backendMu.Unlock()
	if backend == nil {
		b, err := xla.New("")
		if err != nil {
			panic(err)
		}
		backend = b
	}
	return backend
}

// SetBackend switches the shared backend to spec (see package xla: "embedded",
// "xla:cuda", ...).
func SetBackend(spec string) error {
	b, err := xla.New(spec)
	if err != nil {
		return err
	}
	backendMu.Lock()
	backend = b
	backendMu.Unlock()
	return nil
}

// Tensor makes a float32 tensor of the given dimensions (a vector when none are given).
func Tensor(data []float32, dims ...int) *tensors.Tensor {
	if len(dims) == 0 {
		dims = []int{len(data)}
	}
	checkSize(len(data), dims)
	return tensors.FromFlatDataAndDimensions(append([]float32(nil), data...), dims...)
}

// Tensor64 makes a float64 tensor of the given dimensions (a vector when none are given).
func Tensor64(data []float64, dims ...int) *tensors.Tensor {
	if len(dims) == 0 {
		dims = []int{len(data)}
	}
	checkSize(len(data), dims)
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), data...), dims...)
}

// Scalar makes a float32 scalar tensor.
func Scalar(v float64) *tensors.Tensor { return tensors.FromScalar(float32(v)) }

func checkSize(n int, dims []int) {
	size := 1
	for _, d := range dims {
		size *= d
	}
	if size != n {
		panic(fmt.Sprintf("nb: %d values do not fill dimensions %v (%d)", n, dims, size))
	}
}

// Floats returns the values of a tensor, converted to float32.
func Floats(t *tensors.Tensor) []float32 {
	switch t.DType() {
	case dtypes.Float32:
		return tensors.MustCopyFlatData[float32](t)
	case dtypes.Float64:
		v := tensors.MustCopyFlatData[float64](t)
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	panic(fmt.Sprintf("nb.Floats: tensor of %s, want float32 or float64", t.DType()))
}

// Floats64 returns the values of a tensor, converted to float64.
func Floats64(t *tensors.Tensor) []float64 {
	if t.DType() == dtypes.Float64 {
		return tensors.MustCopyFlatData[float64](t)
	}
	v := Floats(t)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// Value returns the value of a one-element tensor.
func Value(t *tensors.Tensor) float64 {
	v := Floats64(t)
	if len(v) != 1 {
		panic(fmt.Sprintf("nb.Value: tensor %s has %d values, want 1", t.Shape(), len(v)))
	}
	return v[0]
}

// Const is a float32 scalar constant in g.
func Const(g *graph.Graph, v float64) *graph.Node { return graph.Const(g, float32(v)) }

// Exec compiles fn, any graph function GoMLX's NewExec accepts (func(*Node) *Node,
// func(*Node, *Node) *Node, func([]*Node) []*Node, ...), on Backend().
func Exec(fn any) *graph.Exec {
	e, err := newExec(Backend(), fn)
	if err != nil {
		panic(err)
	}
	return e
}

// Run compiles fn and applies it to x.
func Run(fn func(x *graph.Node) *graph.Node, x *tensors.Tensor) *tensors.Tensor {
	return first(graph.NewExec(Backend(), fn))(x)
}

// Run2 compiles fn and applies it to x and y.
func Run2(fn func(x, y *graph.Node) *graph.Node, x, y *tensors.Tensor) *tensors.Tensor {
	return first(graph.NewExec(Backend(), fn))(x, y)
}

// Grad returns sum(fn(x)) and its gradient with respect to x, both computed by one
// compiled graph: GoMLX traces fn (interpreted code is fine) and differentiates it.
func Grad(fn func(x *graph.Node) *graph.Node, x *tensors.Tensor) (value, grad *tensors.Tensor) {
	e, err := graph.NewExec(Backend(), func(x *graph.Node) (*graph.Node, *graph.Node) {
		v := graph.ReduceAllSum(fn(x))
		return v, graph.Gradient(v, x)[0]
	})
	if err != nil {
		panic(err)
	}
	out, err := e.Exec(x)
	if err != nil {
		panic(err)
	}
	return out[0], out[1]
}

// first runs a one-output executable, panicking on errors.
func first(e *graph.Exec, err error) func(args ...any) *tensors.Tensor {
	if err != nil {
		panic(err)
	}
	return func(args ...any) *tensors.Tensor {
		out, err := e.Exec(args...)
		if err != nil {
			panic(err)
		}
		return out[0]
	}
}

// newExec instantiates graph.NewExec for the dynamic type of fn.
func newExec(b backends.Backend, fn any) (*graph.Exec, error) {
	type N = *graph.Node
	switch f := fn.(type) {
	case func(*graph.Graph) N:
		return graph.NewExec(b, f)
	case func(N) N:
		return graph.NewExec(b, f)
	case func(N, N) N:
		return graph.NewExec(b, f)
	case func(N, N, N) N:
		return graph.NewExec(b, f)
	case func(N, N, N, N) N:
		return graph.NewExec(b, f)
	case func([]N) N:
		return graph.NewExec(b, f)
	case func(N) (N, N):
		return graph.NewExec(b, f)
	case func(N, N) (N, N):
		return graph.NewExec(b, f)
	case func(*graph.Graph) []N:
		return graph.NewExec(b, f)
	case func(N) []N:
		return graph.NewExec(b, f)
	case func(N, N) []N:
		return graph.NewExec(b, f)
	case func([]N) []N:
		return graph.NewExec(b, f)
	}
	return nil, fmt.Errorf("nb.Exec: %T is not a graph function (func(*Node) *Node, func([]*Node) []*Node, ...)", fn)
}
