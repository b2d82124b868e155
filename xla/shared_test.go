package xla

import (
	"sync"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func mustShared(t *testing.T, spec string) (*Embedded, func()) {
	t.Helper()
	b, release, err := Shared(spec)
	if err != nil {
		t.Fatalf("Shared(%q): %v", spec, err)
	}
	e, ok := b.(*Embedded)
	if !ok {
		t.Fatalf("Shared(%q) is a %T, want *Embedded", spec, b)
	}
	return e, release
}

func isFast(e *Embedded) bool {
	_, ok := fastBackends.Load(e.Backend)
	return ok
}

func TestSharedEquivalentSpecsShareOneBackend(t *testing.T) {
	t.Setenv(EnvSpec, "")
	a, relA := mustShared(t, "")
	b, relB := mustShared(t, "embedded")
	c, relC := mustShared(t, " go ")
	if a != b || b != c {
		t.Fatalf(`"", "embedded" and "go" gave different backends: %p %p %p`, a, b, c)
	}
	if n := SharedCount("embedded"); n != 3 {
		t.Fatalf("SharedCount = %d, want 3", n)
	}
	// Option order does not matter; other options are another backend.
	p1, relP1 := mustShared(t, "embedded,parallelism=1,ops_sequential")
	p2, relP2 := mustShared(t, "embedded,ops_sequential,parallelism=1")
	if p1 != p2 {
		t.Fatal("the same options in another order gave another backend")
	}
	if p1 == a {
		t.Fatal("embedded,parallelism=1 shares the plain embedded backend")
	}
	relP1()
	relP2()

	// DPSFLOW_BACKEND decides what "" means.
	t.Setenv(EnvSpec, "embedded,parallelism=1")
	d, relD := mustShared(t, "")
	e, relE := mustShared(t, "embedded,parallelism=1")
	if d != e || d == a {
		t.Fatalf(`with %s set, "" should share its backend`, EnvSpec)
	}
	relD()
	relE()

	relA()
	relA() // a second call is a no-op
	if n := SharedCount("embedded"); n != 2 {
		t.Fatalf("after one release (called twice): SharedCount = %d, want 2", n)
	}
	relB()
	relC()
}

func TestSharedFinalizesAfterLastRelease(t *testing.T) {
	a, relA := mustShared(t, "embedded")
	if !isFast(a) {
		t.Fatal("a shared embedded backend is not on the fast executors' list")
	}
	exec, err := graph.NewExec(a, func(x *graph.Node) *graph.Node { return graph.MulScalar(x, 2) })
	if err != nil {
		t.Fatal(err)
	}
	y := exec.MustExec1(tensors.FromFlatDataAndDimensions([]float32{1, 2}, 2))
	if got := tensors.MustCopyFlatData[float32](y); got[1] != 4 {
		t.Fatalf("got %v", got)
	}
	b, relB := mustShared(t, "embedded")
	relA()
	if a.IsFinalized() || !isFast(a) {
		t.Fatal("the backend was finalized while a holder remained")
	}
	relB()
	if !a.IsFinalized() {
		t.Fatal("the backend is not finalized after the last release")
	}
	if isFast(a) {
		t.Fatal("the fast executors' list still holds the finalized backend")
	}
	if n := SharedCount("embedded"); n != 0 {
		t.Fatalf("SharedCount = %d after the last release", n)
	}
	c, relC := mustShared(t, "embedded")
	defer relC()
	if c == a || c == b || c.IsFinalized() || !isFast(c) {
		t.Fatal("Shared after the last release did not give a fresh, usable backend")
	}
}

func TestSharedBadSpec(t *testing.T) {
	if _, _, err := Shared("nonsense"); err == nil {
		t.Fatal("Shared accepted an unknown backend")
	} else if _, ok := err.(*SpecError); !ok {
		t.Fatalf("error is a %T, want *SpecError: %v", err, err)
	}
}

// TestSharedConcurrent acquires, uses and releases shared backends from many goroutines;
// run it under -race.
func TestSharedConcurrent(t *testing.T) {
	t.Setenv(EnvSpec, "")
	specs := []string{"", "embedded", "go", "embedded,parallelism=1"}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			for j := range 4 {
				b, release, err := Shared(specs[(i+j)%len(specs)])
				if err != nil {
					errs <- err
					return
				}
				exec, err := graph.NewExec(b, func(x *graph.Node) *graph.Node { return graph.AddScalar(x, 1) })
				if err != nil {
					release()
					errs <- err
					return
				}
				y, err := exec.Exec1(tensors.FromFlatDataAndDimensions([]float32{float32(i)}, 1))
				if err == nil {
					if got := tensors.MustCopyFlatData[float32](y)[0]; got != float32(i+1) {
						t.Errorf("got %v, want %v", got, i+1)
					}
				}
				exec.Finalize()
				release()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range specs {
		if n := SharedCount(s); n != 0 {
			t.Errorf("SharedCount(%q) = %d after every release", s, n)
		}
	}
}
