package solver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Problem is one inverse problem: recover x of shape XShape from Y = Operator(x) + noise.
type Problem struct {
	// Prior is the score network; nil for classical solvers.
	Prior prior.Prior
	// Schedule is the prior's diffusion schedule; nil means schedule.Default().
	Schedule *schedule.Schedule
	Operator operator.Operator
	Noise    noise.Model
	// Y is the measurement, shaped Operator.MeasurementShape(XShape). Prepare does not need
	// it (a prepared run solves any y of that shape); Solve does.
	Y       *tensors.Tensor
	XShape  shapes.Shape // [B, C, H, W] (or [B, …] for toy problems), a float dtype
	Backend backends.Backend
}

// Info describes a solver: what `dpsflow solvers` lists.
type Info struct {
	Name string
	// Aliases are older names that still select it (e.g. "ps" for "dps").
	Aliases []string
	// Doc is one line: what the solver is, with its reference.
	Doc string
	// NeedsPrior is true for the diffusion solvers.
	NeedsPrior bool
	// Needs are the operator capabilities the solver cannot run without.
	Needs []operator.Capability
	// Params are every parameter it takes.
	Params []Param
}

// Solver turns a Problem into an estimate of x.
type Solver interface {
	Info() Info
	// Prepare builds what the solver needs for p (compiled steps, host matrices) with params
	// resolved by Resolve. Problem.Y may be nil. Call Check first: Prepare may assume p fits.
	Prepare(p *Problem, params Params) (Run, error)
}

// Run is a solver prepared for one problem shape; Solve may be called many times (batches
// of the same operator, restarts).
type Run interface {
	// Solve estimates x for measurement y, from seed. It stops between steps when ctx is
	// cancelled, returning ctx's error.
	Solve(ctx context.Context, y *tensors.Tensor, seed uint64, h Hooks) (*Result, error)
}

// Result is what a solve returns.
type Result struct {
	// X is the estimate, shaped like the problem's XShape.
	X *tensors.Tensor
	// Distances is each sample's final data-fidelity distance ‖y − A(x̂)‖ as the noise model
	// measures it.
	Distances []float64
	// NFE is the number of network evaluations per sample (0 for classical solvers).
	NFE int
}

// ProblemChecker is implemented by solvers with needs that depend on their parameters or
// on the problem beyond Info's (e.g. a nonlinear operator refused by a linear method).
type ProblemChecker interface {
	CheckProblem(p *Problem, params Params) error
}

// Check refuses, before any work, a problem that lacks what s needs: a prior, an operator
// capability, a consistent shape. Errors name the solver, the operator and what is missing.
// It needs no backend (Prepare does), so a CLI can check before anything is set up.
func Check(s Solver, p *Problem, params Params) error {
	info := s.Info()
	who := "solver " + info.Name
	if p == nil || p.Operator == nil || p.Noise == nil {
		return fmt.Errorf("%s: the problem needs an operator and a noise model", who)
	}
	if info.NeedsPrior && p.Prior == nil {
		return fmt.Errorf("%s needs a diffusion prior, and the problem has none", who)
	}
	if err := operator.Require(p.Operator, who, info.Needs...); err != nil {
		return err
	}
	if !p.XShape.DType.IsFloat() || p.XShape.Rank() < 2 {
		return fmt.Errorf("%s: the shape of x %s must be a float batch [B, …]", who, p.XShape)
	}
	wantY, err := p.Operator.MeasurementShape(p.XShape)
	if err != nil {
		return fmt.Errorf("%s: %w", who, err)
	}
	if p.Y != nil && !p.Y.Shape().Equal(wantY) {
		return fmt.Errorf("%s: measurement y has shape %s, but %s maps %s to %s", who, p.Y.Shape(), p.Operator.Name(), p.XShape, wantY)
	}
	if pc, ok := s.(ProblemChecker); ok {
		if err := pc.CheckProblem(p, params); err != nil {
			return fmt.Errorf("%s: %w", who, err)
		}
	}
	return nil
}

// Solve checks p and params, prepares s and solves for p.Y: the one-call path for Go code.
// params may be nil (defaults) or unresolved values; they are resolved here.
func Solve(ctx context.Context, s Solver, p *Problem, given map[string]any, seed uint64, h Hooks) (*Result, error) {
	params, err := Resolve(s, given)
	if err != nil {
		return nil, err
	}
	if p != nil && p.Y == nil {
		return nil, fmt.Errorf("solver %s: the problem has no measurement y", s.Info().Name)
	}
	if err := Check(s, p, params); err != nil {
		return nil, err
	}
	run, err := s.Prepare(p, params)
	if err != nil {
		return nil, err
	}
	return run.Solve(ctx, p.Y, seed, h)
}

// The registry of named solvers.
var (
	regMu   sync.RWMutex
	byName  = map[string]Solver{}
	aliases = map[string]string{}
)

// Register adds s under its name and aliases; a name taken twice is an error.
func Register(s Solver) error {
	info := s.Info()
	regMu.Lock()
	defer regMu.Unlock()
	for _, n := range append([]string{info.Name}, info.Aliases...) {
		if n == "" {
			return errors.New("solver: empty name")
		}
		if _, taken := byName[n]; taken {
			return fmt.Errorf("solver: %q is registered twice", n)
		}
		if _, taken := aliases[n]; taken {
			return fmt.Errorf("solver: %q is registered twice", n)
		}
	}
	byName[info.Name] = s
	for _, a := range info.Aliases {
		aliases[a] = info.Name
	}
	return nil
}

// MustRegister is Register for package init functions.
func MustRegister(s Solver) {
	if err := Register(s); err != nil {
		panic(err)
	}
}

// Lookup finds a solver by name or alias; the error lists the known names.
func Lookup(name string) (Solver, error) {
	regMu.RLock()
	defer regMu.RUnlock()
	if canon, ok := aliases[name]; ok {
		name = canon
	}
	if s, ok := byName[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("unknown solver %q (known: %s)", name, strings.Join(namesLocked(), ", "))
}

// Canonical is the registered name of a name or alias, or name itself when unknown.
func Canonical(name string) string {
	regMu.RLock()
	defer regMu.RUnlock()
	if canon, ok := aliases[name]; ok {
		return canon
	}
	return name
}

// List is every registered solver, sorted by name.
func List() []Solver {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Solver, 0, len(byName))
	for _, n := range namesLocked() {
		out = append(out, byName[n])
	}
	return out
}

func namesLocked() []string {
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NeedNames are the needs of info as words, for listings: "prior", then capabilities.
func (info Info) NeedNames() []string {
	var out []string
	if info.NeedsPrior {
		out = append(out, "prior")
	}
	for _, c := range info.Needs {
		out = append(out, string(c))
	}
	return slices.Clip(out)
}
