package kernel

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// An operator written in a cell (interpreted) is traced, differentiated and executed
// by compiled GoMLX code; the gradient must match the closed form.
func TestInterpretedOperatorGradient(t *testing.T) {
	s := NewSession()
	mustRun(t, s, "", `import "github.com/gomlx/gomlx/pkg/core/graph"
// A(x) = 2x² + sin(x): d/dx sum(A(x)) = 4x + cos(x).
op := func(x *graph.Node) *graph.Node {
	return graph.Add(graph.Mul(graph.MulScalar(x, 2), x), graph.Sin(x))
}
x := nb.Tensor([]float32{-1, 0.5, 2, 3})
value, grad := nb.Grad(op, x)`)
	got, _ := mustRun(t, s, "", "nb.Floats(grad)")
	var want []string
	sum := 0.0
	for _, x := range []float64{-1, 0.5, 2, 3} {
		want = append(want, fmt.Sprintf("%.4f", 4*x+math.Cos(x)))
		sum += 2*x*x + math.Sin(x)
	}
	var gotF []float64
	for _, f := range strings.Fields(strings.Trim(got, "[]")) {
		var v float64
		fmt.Sscan(f, &v)
		gotF = append(gotF, v)
	}
	if len(gotF) != len(want) {
		t.Fatalf("gradient %q, want %v", got, want)
	}
	for i := range gotF {
		if fmt.Sprintf("%.4f", gotF[i]) != want[i] {
			t.Errorf("gradient[%d] = %v, want %s", i, gotF[i], want[i])
		}
	}
	v, _ := mustRun(t, s, "", "nb.Value(value)")
	var gv float64
	fmt.Sscan(v, &gv)
	if math.Abs(gv-sum) > 1e-4 {
		t.Errorf("value %v, want %v", gv, sum)
	}

	// The same closure through the generic NewExec (via nb.Exec, which takes any).
	mustRun(t, s, "", `e := nb.Exec(op)
out, err := e.Exec(x)`)
	if v, _ := mustRun(t, s, "", "err"); v != "<nil>" {
		t.Fatalf("exec error %s", v)
	}
	if v, _ := mustRun(t, s, "", "len(nb.Floats(out[0]))"); v != "4" {
		t.Errorf("exec output has %s values", v)
	}
}

// A long compiled run given nb.Context() stops when the cell is interrupted: the
// sampler's (compiled) progress display stops being updated.
func TestInterruptStopsCompiledSampler(t *testing.T) {
	s := NewSession()
	mustRun(t, s, "", `import (
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)
sched := schedule.Default()
gauss, _ := prior.NewGaussianMixture(sched, []float64{1}, [][]float64{{0, 0}}, [][]float64{{0.25, 0.25}}, []int{2})
nm, _ := noise.NewGaussian(0.05)
smp, err := sampler.New(nb.Backend(), gauss, sched, operator.NewIdentity(), nm, sampler.Config{Steps: 1000,
	Guidance: guidance.Config{Method: guidance.PS, Scale: 0.05}})
const n = 4000
y := nb.Tensor64(make([]float64, 2*n), n, 2)`)
	if v, _ := mustRun(t, s, "", "err"); v != "<nil>" {
		t.Fatalf("sampler.New: %s", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	done := make(chan error, 1)
	go func() {
		_, err := s.Execute(ctx, ExecRequest{Code: `p := display.NewProgress("dps", 1000)
res, err := smp.Run(nb.Context(), y, shapes.Make(dtypes.Float64, n, 2), 1, p.Func())`}, rec)
		done <- err
	}()
	count := func() int {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.displays)
	}
	deadline := time.Now().Add(60 * time.Second)
	for count() < 3 { // running: a few progress updates
		if time.Now().After(deadline) {
			t.Fatal("no progress from the sampler")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; cellErr(t, err).Name != "Interrupted" {
		t.Fatalf("got %v", err)
	}
	// A sampler still running would publish its progress into the next cell's output.
	time.Sleep(200 * time.Millisecond) // a step in flight may still report
	_, next := mustRun(t, s, "", "import \"time\"\ntime.Sleep(time.Second)")
	if len(next.displays) > 0 || next.stdout.Len() > 0 {
		t.Errorf("the sampler kept running after the interrupt: %d progress updates, %q",
			len(next.displays), next.stdout.String())
	}
}
