package phase

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func init() {
	for _, s := range Solvers() {
		solver.MustRegister(s)
	}
}

// Method is one of the phase retrieval iterations.
type Method string

// The methods.
const (
	ER  Method = "er"
	HIO Method = "hio"
	OSS Method = "oss"
)

// Stages is the number of equal stages over which OSS lowers its filter width α.
const Stages = 10

// Solvers are er, hio and oss.
func Solvers() []solver.Solver {
	return []solver.Solver{
		phaseSolver{ER, "error reduction (Fienup, Appl. Opt. 1982): z' = P_support P_magnitude z"},
		phaseSolver{HIO, "hybrid input-output (Fienup, Appl. Opt. 1982): z' = P_M z inside the support, z − β P_M z outside"},
		phaseSolver{OSS, "oversampling smoothness (Rodriguez et al., J. Appl. Cryst. 2013): HIO with the outside smoothed by a Fourier Gaussian of width α from 2N to N/5 in 10 stages"},
	}
}

type phaseSolver struct {
	method Method
	doc    string
}

func (s phaseSolver) Info() solver.Info {
	params := []solver.Param{
		{Name: "iters", Type: solver.Int, Default: 10000, Min: 1, MinSet: true, Doc: "iterations (Fienup's and Rodriguez et al.'s 10000)"},
	}
	if s.method != ER {
		params = append(params, solver.Param{Name: "beta", Type: solver.Float, Default: 0.9, Min: 0, MinSet: true, MinExclusive: true,
			Doc: "feedback β of the outside update z − β P_M z (Fienup's 0.9)"})
	}
	params = append(params, solver.Param{Name: "clip", Type: solver.Bool, Default: true,
		Doc: "object constraint: values inside the support within the image range [-1, 1]"},
		solver.Param{Name: "start", Type: solver.String, Default: "positive", Enum: []string{"positive", "negative", "symmetric"},
			Doc: "random start inside the support: uniform in [0, 1) (Fienup's), [-1, 0) or [-1, 1); it picks the sign of the result's mean"})
	return solver.Info{Name: string(s.method), Doc: s.doc, Needs: []operator.Capability{operator.CapMagnitudeProjection}, Params: params}
}

// CheckProblem refuses shapes the padded iteration cannot hold (ZeroPad needs NCHW).
func (s phaseSolver) CheckProblem(p *solver.Problem, _ solver.Params) error {
	if p.XShape.Rank() != 4 {
		return fmt.Errorf("x must be an NCHW batch, got shape %s", p.XShape)
	}
	return nil
}

func (s phaseSolver) Prepare(p *solver.Problem, params solver.Params) (solver.Run, error) {
	op, ok := p.Operator.(operator.MagnitudeProjector)
	if !ok || !operator.Has(p.Operator, operator.CapMagnitudeProjection) {
		return nil, fmt.Errorf("solver %s needs the operator's magnitude-projection, which %s does not offer", s.method, p.Operator.Name())
	}
	yShape, err := p.Operator.MeasurementShape(p.XShape)
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", s.method, err)
	}
	r := &run{method: s.method, iters: params.Int("iters"), beta: params.Float("beta"), clip: params.Bool("clip"), start: params.String("start"),
		backend: p.Backend, xShape: p.XShape, zShape: yShape}
	r.init, err = graph.NewExec(p.Backend, func(u *graph.Node) *graph.Node { return op.ZeroPad(u) })
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", s.method, err)
	}
	r.step, err = graph.NewExec(p.Backend, func(z, y, alpha *graph.Node) []*graph.Node {
		next, proj := r.update(op, z, y, alpha)
		// The estimate is the step's output P_M z on the support (Fienup's g'), which for
		// ER is the new iterate; HIO's iterate holds z − β p where the constraint fails.
		x := graph.ClipScalar(op.Crop(proj), -1, 1)
		dist := p.Noise.Distance(y, p.Operator.Apply(x))
		finite := graph.LogicalNot(graph.ReduceLogicalOr(graph.LogicalNot(graph.IsFinite(next))))
		return []*graph.Node{next, x, dist, finite}
	})
	if err != nil {
		return nil, fmt.Errorf("solver %s: %w", s.method, err)
	}
	return r, nil
}

type run struct {
	method         Method
	iters          int
	beta           float64
	clip           bool
	start          string
	backend        backends.Backend
	xShape, zShape shapes.Shape
	init, step     *graph.Exec
}

// update is one iteration on the padded z [B, C, P_H, P_W]; it also returns p = P_M z.
func (r *run) update(op operator.MagnitudeProjector, z, y, alpha *graph.Node) (next, p *graph.Node) {
	g := z.Graph()
	inside := graph.GreaterThan(op.ZeroPad(graph.Ones(g, op.Crop(z).Shape())), graph.ZerosLike(z))
	p = op.ProjectMagnitude(z, y)
	if r.method == ER {
		next = p
		if r.clip {
			next = graph.ClipScalar(p, -1, 1)
		}
		return graph.Where(inside, next, graph.ZerosLike(p)), p
	}
	// c = P_C p, the nearest point obeying the object constraint; HIO keeps p where p = c
	// and feeds back z − β(p − c) elsewhere, which is Fienup's z − βp outside the support
	// (and for his positivity), generalised to the range constraint.
	c := graph.Where(inside, p, graph.ZerosLike(p))
	ok := inside
	if r.clip {
		c = graph.ClipScalar(c, -1, 1)
		ok = graph.LogicalAnd(ok, graph.LessOrEqual(graph.Abs(p), graph.OnesLike(p)))
	}
	feedback := graph.Sub(z, graph.MulScalar(graph.Sub(p, c), r.beta))
	if r.method == OSS {
		// The outside part of the feedback is smoothed on its own (the inside zeroed first),
		// so that the object, zero outside, stays a fixed point; Rodriguez et al.'s sample
		// code smooths the whole array z − βp, which leaks (1 − β)·x across the support edge.
		outside := graph.Where(inside, graph.ZerosLike(feedback), feedback)
		feedback = graph.Where(inside, feedback, smooth(outside, alpha))
	}
	next = graph.Where(ok, p, feedback)
	return next, p
}

// smooth filters z [B, C, H, W] with the Fourier-space Gaussian exp(−½ (|k|/α)²): per axis
// the real symmetric matrix M = Cᵀ diag(w) C + Sᵀ diag(w) S, with C, S the cosine and sine
// parts of the orthonormal DFT (M[j, l] = (1/N) Σ_k w(k) cos(2π k (j − l)/N)). The 2-D
// Gaussian factors into the two axes.
func smooth(z, alpha *graph.Node) *graph.Node {
	d := z.Shape().Dimensions
	mh := smoothing(z.Graph(), d[2], alpha)
	mw := mh
	if d[3] != d[2] {
		mw = smoothing(z.Graph(), d[3], alpha)
	}
	z = graph.Einsum("hk,bckw->bchw", mh, z)
	return graph.Einsum("bchk,wk->bchw", z, mw)
}

func smoothing(g *graph.Graph, n int, alpha *graph.Node) *graph.Node {
	dt := alpha.DType()
	c, s, f := make([]float64, n*n), make([]float64, n*n), make([]float64, n)
	scale := 1 / math.Sqrt(float64(n))
	for k := range n {
		fk := k - n/2 // centred frequency, cycles per padded grid
		f[k] = float64(fk)
		for j := range n {
			phase := 2 * math.Pi * float64(((fk*j)%n+n)%n) / float64(n) // exact integer phase
			c[k*n+j], s[k*n+j] = scale*math.Cos(phase), scale*math.Sin(phase)
		}
	}
	cn := graph.ConvertDType(graph.Reshape(graph.Const(g, c), n, n), dt)
	sn := graph.ConvertDType(graph.Reshape(graph.Const(g, s), n, n), dt)
	fn := graph.ConvertDType(graph.Const(g, f), dt)
	ratio := graph.Div(fn, alpha)
	w := graph.Reshape(graph.Exp(graph.MulScalar(graph.Square(ratio), -0.5)), n, 1)
	return graph.Add(graph.Einsum("kj,kl->jl", cn, graph.Mul(cn, w)), graph.Einsum("kj,kl->jl", sn, graph.Mul(sn, w)))
}

// Alpha is OSS's filter width, in frequency pixels, at step done (0-based) of iters: the
// sample code of Rodriguez et al. (FX) lowers it in Stages equal stages from 2n to n/5,
// α = 2n·(Stages − s)/Stages at stage s = ⌊Stages·done/iters⌋, n the padded side.
func Alpha(done, iters, n int) float64 {
	stage := min(Stages*done/iters, Stages-1)
	return 2 * float64(n) * float64(Stages-stage) / Stages
}

func (r *run) Solve(ctx context.Context, y *tensors.Tensor, seed uint64, h solver.Hooks) (*solver.Result, error) {
	who := "solver " + string(r.method)
	out, err := solver.LoopOn(ctx, who, r.backend, y, r.zShape, r.zShape,
		func(y *tensors.Tensor) solver.Iteration { return &iteration{r: r, y: y} }, seed, h)
	if err != nil {
		return nil, err
	}
	out.State.X.FinalizeAll()
	return &solver.Result{X: out.Estimate, Distances: out.Distances}, nil
}

type iteration struct {
	r *run
	y *tensors.Tensor
}

func (it *iteration) Steps() int { return it.r.iters }

func (it *iteration) Start(seed uint64, resume *solver.State) (solver.State, error) {
	if resume != nil {
		return solver.OnBackend(solver.State{X: resume.X}, it.r.backend)
	}
	// z0: uniform inside the support, drawn on the host from the seed; the negative start
	// is exactly the positive one negated (every step is odd in z), so it flips the sign
	// of the whole run.
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	u := make([]float64, it.r.xShape.Size())
	for i := range u {
		switch v := rng.Float64(); it.r.start {
		case "negative":
			u[i] = -v
		case "symmetric":
			u[i] = 2*v - 1
		default:
			u[i] = v
		}
	}
	outs, err := it.r.init.Exec(hostTensor(u, it.r.xShape))
	if err != nil {
		return solver.State{}, fmt.Errorf("drawing z0: %w", err)
	}
	return solver.State{X: outs[0]}, nil
}

func (it *iteration) Step(st solver.State) (solver.State, solver.StepOutput, error) {
	alpha := Alpha(st.Done, it.r.iters, max(it.r.zShape.Dimensions[2], it.r.zShape.Dimensions[3]))
	var a any = alpha
	if it.r.xShape.DType == dtypes.Float32 {
		a = float32(alpha)
	}
	outs, err := it.r.step.Exec(st.X, it.y, a)
	if err != nil {
		return solver.State{}, solver.StepOutput{}, err
	}
	return solver.State{X: outs[0]}, solver.StepOutput{Estimate: outs[1], Distances: outs[2], Finite: outs[3]}, nil
}

// hostTensor is v shaped as s, in s's float dtype.
func hostTensor(v []float64, s shapes.Shape) *tensors.Tensor {
	if s.DType == dtypes.Float32 {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return tensors.FromFlatDataAndDimensions(f, s.Dimensions...)
	}
	return tensors.FromFlatDataAndDimensions(v, s.Dimensions...)
}
