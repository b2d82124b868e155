package pipeline

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"github.com/dpsflow/dpsflow/internal/sampleblock"
	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/nodes/solver"
	"github.com/dpsflow/dpsflow/nodes/solver/dps"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// batchState is what the sample node keeps in its scratch folder for batch b: a
// checkpoint of the solver (Done < Steps) or the finished batch (Done == Steps), with the
// trace so far. A killed run resumes from it bit for bit.
type batchState struct {
	Done, Steps int
	Finished    bool
	X           []float32 // the iterate, or the result when finished
	XDims       []int     // the iterate's shape (a solver may iterate on another grid, e.g. padded)
	RNG         []uint64  // the random-number state (nil for deterministic solvers)
	Aux         []auxTensor
	Residual    []float64 // per step, summed over the batch's images
	PSNRSteps   []int
	PSNR        []float64 // per snapshot step, summed over the batch's images
	Frames      []Frame
	Seconds     float64   // wall time so far
	Final       []float64 // each image's ‖y − A(x̂)‖ at the last step, when finished
	NFE         int       // network evaluations per image, when finished
}

// auxTensor is a solver's extra state (solver.State.Aux) in a checkpoint: float32 values
// and their dimensions.
type auxTensor struct {
	Dims   []int
	Values []float32
}

// batchJob is one solver run over images [lo, hi) (restart r of them).
type batchJob struct {
	lo, hi, restart int
	y               *tensors.Tensor
	path            string // its scratch state
	seed            uint64
	// Progress is reported as base + the job's image-steps, out of total.
	progressBase, progressTotal int
}

// sampleSolver is the solver a sample node runs: its solver input, or the DPS-family
// sampler that the wired likelihood, tweedie and update describe.
func sampleSolver(c *dag.Call) (solver.Solver, solver.Params, error) {
	spec, named := c.In("solver").(SolverSpec)
	l, hasL := c.In("likelihood").(LikelihoodSpec)
	t, hasT := c.In("tweedie").(TweedieSpec)
	u, hasU := c.In("update").(UpdateSpec)
	wired := hasL || hasT || hasU
	switch {
	case named && wired:
		return nil, nil, errors.New("inputs: wire either solver or likelihood + tweedie + update, not both")
	case named:
		return spec.Solver()
	case hasL && hasT && hasU:
		cfg := SamplerConfig(u, t, l)
		return dps.FromConfig(cfg.Guidance.Name(), cfg), nil, nil
	}
	return nil, nil, errors.New("inputs: wire a solver, or all three of likelihood, tweedie and update")
}

func runSample(c *dag.Call) error {
	sv, params, err := sampleSolver(c)
	if err != nil {
		return err
	}
	name := sv.Info().Name
	m := c.In("measurement").(*Measurement)
	truth, _ := c.In("truth").(*Images)
	n := m.Shape[0]
	C, H, W := m.View.C, m.View.H, m.View.W
	if truth != nil && (truth.N != n || truth.Size() != m.View.Size()) {
		return fmt.Errorf("input truth has %d images of %d values; the measurement has %d of %d", truth.N, truth.Size(), n, m.View.Size())
	}
	batch, every, ckEvery, restarts := c.Int("batch"), c.Int("snapshot_every"), c.Int("checkpoint_every"), c.Int("restarts")
	if batch < 1 || restarts < 1 {
		return fmt.Errorf("params batch %d and restarts %d must be at least 1", batch, restarts)
	}
	be, release, err := xla.Shared(c.String("backend"))
	if err != nil {
		return err
	}
	defer release()
	problem := solver.Problem{Schedule: schedule.Default(), Backend: be}
	if ps, ok := c.In("prior").(PriorSpec); ok {
		if ps.Channels != C || ps.ImageSize != H || ps.ImageSize != W {
			return fmt.Errorf("the prior takes %d×%d×%d images, but the measured images are %d×%d×%d",
				ps.Channels, ps.ImageSize, ps.ImageSize, C, H, W)
		}
		model, mctx, err := ps.Load()
		if err != nil {
			return err
		}
		problem.Prior = model.Prior(mctx)
	}
	if problem.Noise, err = c.In("noise").(NoiseSpec).Build(); err != nil {
		return err
	}
	opSpec := c.In("operator").(OperatorSpec)
	// An operator without random parts serves every batch, so its prepared (compiled) run
	// is reused; otherwise each batch has its images' own operators.
	shared := !operator.SeedDependent(opSpec.Name, opSpec.Params)
	var prepared solver.Run
	var preparedFor int
	prepare := func(lo, hi int) (solver.Run, error) {
		if shared && prepared != nil && preparedFor == hi-lo {
			return prepared, nil
		}
		op, err := opSpec.BuildBatch(H, W, lo, hi-lo)
		if err != nil {
			return nil, err
		}
		p := problem
		p.Operator, p.XShape = op, shapes.Make(dtypes.Float32, hi-lo, C, H, W)
		if err := solver.Check(sv, &p, params); err != nil {
			return nil, err
		}
		run, err := sv.Prepare(&p, params)
		if err != nil {
			return nil, err
		}
		prepared, preparedFor = run, hi-lo
		return run, nil
	}
	scratch, err := c.ScratchDir()
	if err != nil {
		return err
	}
	recon := &Images{N: n, C: C, H: H, W: W, Names: m.View.Names}
	tr := &Trace{Solver: name}
	var psnrSum map[int]float64
	var steps int
	// A sweep worker runs a block of the images (whole batches) and stops: the merge runs
	// the node again without a block and finds every batch saved.
	block, inBlock := sampleblock.From(c.Context())
	if inBlock {
		if block.Lo < 0 || block.Lo >= block.Hi || block.Lo%batch != 0 || (block.Hi%batch != 0 && block.Hi < n) {
			return fmt.Errorf("image block %d–%d is not whole batches of %d of the %d images", block.Lo, block.Hi-1, batch, n)
		}
		if block.Lo == 0 && block.Hi >= n {
			inBlock = false // the block is every image: the node completes
		}
	}
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		if inBlock && (lo < block.Lo || lo >= block.Hi) {
			continue
		}
		// Prepared (compiled) once per batch, and only when a restart still has steps to
		// run: finished batches, saved by an earlier or another run, are only read back.
		run := sync.OnceValues(func() (solver.Run, error) { return prepare(lo, hi) })
		best := make([]int, hi-lo) // the restart kept for each image
		runs := make([]*batchState, restarts)
		for r := range restarts {
			job := batchJob{lo: lo, hi: hi, restart: r, y: m.Tensor(lo, hi),
				path: filepath.Join(scratch, fmt.Sprintf("batch-%05d-run-%d.gob", lo/batch, r)),
				seed: c.Seed() + uint64(lo) + uint64(r)*restartSeedStride, progressBase: lo * restarts, progressTotal: n * restarts}
			st, err := runBatch(c, run, job, truth, every, ckEvery)
			if err != nil {
				return fmt.Errorf("images %d–%d: %w", lo, hi-1, err)
			}
			runs[r] = st
			for i := range hi - lo {
				if st.Final[i] < runs[best[i]].Final[i] {
					best[i] = r
				}
			}
		}
		if inBlock {
			continue
		}
		first := runs[0] // the trace follows the first run
		if tr.Residual == nil {
			steps = first.Steps
			tr.Steps, tr.Residual = steps, make([]float64, steps)
		}
		per := C * H * W
		var seconds float64
		nfe := 0
		for _, st := range runs {
			seconds += st.Seconds
			nfe += st.NFE
		}
		for i := range hi - lo {
			recon.Pixels = append(recon.Pixels, runs[best[i]].X[i*per:(i+1)*per]...)
			tr.Final = append(tr.Final, runs[best[i]].Final[i])
			tr.Seconds = append(tr.Seconds, seconds/float64(hi-lo))
			tr.NFE = append(tr.NFE, nfe)
		}
		for i, r := range first.Residual {
			tr.Residual[i] += r / float64(n)
		}
		if psnrSum == nil {
			psnrSum = map[int]float64{}
			tr.PSNRSteps = first.PSNRSteps
			tr.Frames = first.Frames
		}
		for i, step := range first.PSNRSteps {
			psnrSum[step] += first.PSNR[i]
		}
	}
	if inBlock {
		return sampleblock.ErrBlockDone
	}
	for _, step := range tr.PSNRSteps {
		tr.PSNR = append(tr.PSNR, psnrSum[step]/float64(n))
	}
	c.Set("recon", recon)
	c.Set("trace", tr)
	return nil
}

// maxFrames bounds the snapshot frames of a run's first image (progress/snapshots.png).
const maxFrames = 20

// restartSeedStride separates the seeds of restarts from those of batches.
const restartSeedStride = 1_000_000_007

// runBatch runs job, resuming from its scratch state when a killed run left one.
func runBatch(c *dag.Call, prepare func() (solver.Run, error), job batchJob, truth *Images, every, ckEvery int) (*batchState, error) {
	lo, hi := job.lo, job.hi
	st := &batchState{}
	var resume *solver.State
	if data, err := os.ReadFile(job.path); err == nil {
		saved := &batchState{}
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(saved); err != nil {
			return nil, fmt.Errorf("the saved state %s is unreadable or from another run; delete it: %v", job.path, err)
		}
		if saved.Finished {
			return saved, nil
		}
		st = saved
		resume = &solver.State{Done: st.Done, X: tensors.FromFlatDataAndDimensions(st.X, st.XDims...)}
		if st.RNG != nil {
			resume.RNG = tensors.FromFlatDataAndDimensions(st.RNG, len(st.RNG))
		}
		for _, a := range st.Aux {
			resume.Aux = append(resume.Aux, tensors.FromFlatDataAndDimensions(a.Values, a.Dims...))
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	start := time.Now()
	secondsBefore := st.Seconds
	label := fmt.Sprintf("images %d–%d", lo, hi-1)
	if job.restart > 0 {
		label += fmt.Sprintf(" (restart %d)", job.restart)
	}
	hooks := solver.Hooks{
		Resume: resume,
		Progress: func(done, total int, dist []float64) {
			if st.Residual == nil {
				st.Steps, st.Residual = total, make([]float64, total)
			}
			for _, d := range dist {
				st.Residual[done-1] += d
			}
			// Progress in image-steps: the job's images times the fraction of its steps done.
			c.Progress((job.progressBase+(hi-lo)*job.restart)*total+(hi-lo)*done, job.progressTotal*total,
				fmt.Sprintf("%s, step %d/%d", label, done, total))
		},
		SnapshotEvery: every,
		Snapshot: func(done int, xt, x0 *tensors.Tensor) {
			xs, x0s := tensors.MustCopyFlatData[float32](xt), tensors.MustCopyFlatData[float32](x0)
			if len(xs) != len(x0s) { // the iterate lives on another grid (phase retrieval's padding)
				xs = x0s
			}
			per := len(x0s) / (hi - lo)
			// Frames of image 0, at most about maxFrames of them (a 10 000-iteration solver
			// would otherwise make a thousand).
			if stride := max(every, 1) * max(1, st.Steps/(max(every, 1)*maxFrames)); lo == 0 && job.restart == 0 && (done%stride == 0 || done == st.Steps) {
				st.Frames = append(st.Frames, Frame{Step: done, Xt: xs[:per], X0: x0s[:per]})
			}
			if truth != nil {
				var sum float64
				for i := range hi - lo {
					sum += metrics.PSNR(clipped(x0s[i*per:(i+1)*per]), truth.Image(lo+i), 2)
				}
				st.PSNRSteps = append(st.PSNRSteps, done)
				st.PSNR = append(st.PSNR, sum)
			}
		},
		CheckpointEvery: ckEvery,
		Checkpoint: func(state solver.State) error {
			st.Done = state.Done
			st.X, st.XDims = tensors.MustCopyFlatData[float32](state.X), state.X.Shape().Dimensions
			st.RNG = nil
			if state.RNG != nil {
				st.RNG = tensors.MustCopyFlatData[uint64](state.RNG)
			}
			st.Aux = nil
			for _, a := range state.Aux {
				st.Aux = append(st.Aux, auxTensor{Dims: a.Shape().Dimensions, Values: tensors.MustCopyFlatData[float32](a)})
			}
			st.Seconds = secondsBefore + time.Since(start).Seconds()
			return writeGob(job.path, st)
		},
	}
	run, err := prepare()
	if err != nil {
		return nil, err
	}
	res, err := run.Solve(c.Context(), job.y, job.seed, hooks)
	if err != nil {
		return nil, err
	}
	st.Done, st.Finished, st.X, st.RNG, st.Aux, st.Final, st.NFE = st.Steps, true, tensors.MustCopyFlatData[float32](res.X), nil, nil, res.Distances, res.NFE
	st.Seconds = secondsBefore + time.Since(start).Seconds()
	return st, writeGob(job.path, st)
}

// writeGob writes v to path atomically.
func writeGob(path string, v any) error {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}
