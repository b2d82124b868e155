package pipeline

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"github.com/dpsflow/dpsflow/internal/atomicfile"
	"os"
	"path/filepath"
	"time"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/nodes/metrics"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// batchState is what the sample node keeps in its scratch folder for batch b: a
// checkpoint of the sampler (Done < Steps) or the finished batch (Done == Steps), with the
// trace so far. A killed run resumes from it bit for bit.
type batchState struct {
	Done, Steps int
	X           []float32 // x_t, or the result when finished
	RNG         []uint64
	Residual    []float64 // per step, summed over the batch's images
	PSNRSteps   []int
	PSNR        []float64 // per snapshot step, summed over the batch's images
	Frames      []Frame
	Seconds     float64   // wall time so far
	Final       []float64 // each image's ‖y − A(x̂0)‖ at the last step, when finished
}

// batchJob is one sampler run over images [lo, hi) (restart r of them).
type batchJob struct {
	lo, hi, restart int
	y               *tensors.Tensor
	shape           shapes.Shape
	path            string // its scratch state
	seed            uint64
	// Progress is reported as base + the job's image-steps, out of total.
	progressBase, progressTotal int
}

func runSample(c *dag.Call) error {
	ps := c.In("prior").(PriorSpec)
	m := c.In("measurement").(*Measurement)
	truth, _ := c.In("truth").(*Images)
	n := m.Shape[0]
	if ps.Channels != m.View.C || ps.ImageSize != m.View.H || ps.ImageSize != m.View.W {
		return fmt.Errorf("the prior takes %d×%d×%d images, but the measured images are %d×%d×%d",
			ps.Channels, ps.ImageSize, ps.ImageSize, m.View.C, m.View.H, m.View.W)
	}
	if truth != nil && (truth.N != n || truth.Size() != m.View.Size()) {
		return fmt.Errorf("input truth has %d images of %d values; the measurement has %d of %d", truth.N, truth.Size(), n, m.View.Size())
	}
	batch, every, ckEvery, restarts := c.Int("batch"), c.Int("snapshot_every"), c.Int("checkpoint_every"), c.Int("restarts")
	if batch < 1 || restarts < 1 {
		return fmt.Errorf("params batch %d and restarts %d must be at least 1", batch, restarts)
	}
	be, err := xla.New(c.String("backend"))
	if err != nil {
		return err
	}
	model, mctx, err := ps.Load()
	if err != nil {
		return err
	}
	op, err := c.In("operator").(OperatorSpec).Build(ps.ImageSize, ps.ImageSize)
	if err != nil {
		return err
	}
	nm, err := c.In("noise").(NoiseSpec).Build()
	if err != nil {
		return err
	}
	cfg := SamplerConfig(c.In("update").(UpdateSpec), c.In("tweedie").(TweedieSpec), c.In("likelihood").(LikelihoodSpec))
	s, err := sampler.New(be, model.Prior(mctx), schedule.Default(), op, nm, cfg)
	if err != nil {
		return err
	}
	scratch, err := c.ScratchDir()
	if err != nil {
		return err
	}
	steps := s.Schedule().Len()
	C, H, W := m.View.C, m.View.H, m.View.W
	recon := &Images{N: n, C: C, H: H, W: W, Names: m.View.Names}
	tr := &Trace{Steps: steps, Residual: make([]float64, steps)}
	var psnrSum map[int]float64
	total := n * steps * restarts
	for lo := 0; lo < n; lo += batch {
		hi := min(n, lo+batch)
		best := make([]int, hi-lo) // the restart kept for each image
		runs := make([]*batchState, restarts)
		for r := range restarts {
			job := batchJob{lo: lo, hi: hi, restart: r, y: m.Tensor(lo, hi), shape: shapes.Make(dtypes.Float32, hi-lo, C, H, W),
				path: filepath.Join(scratch, fmt.Sprintf("batch-%05d-run-%d.gob", lo/batch, r)),
				seed: c.Seed() + uint64(lo) + uint64(r)*restartSeedStride, progressBase: (lo*restarts + r*(hi-lo)) * steps, progressTotal: total}
			st, err := runBatch(c, s, job, truth, every, ckEvery, steps)
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
		first := runs[0] // the trace follows the first run
		per := C * H * W
		var seconds float64
		for _, st := range runs {
			seconds += st.Seconds
		}
		for i := range hi - lo {
			recon.Pixels = append(recon.Pixels, runs[best[i]].X[i*per:(i+1)*per]...)
			tr.Final = append(tr.Final, runs[best[i]].Final[i])
			tr.Seconds = append(tr.Seconds, seconds/float64(hi-lo))
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
	for _, step := range tr.PSNRSteps {
		tr.PSNR = append(tr.PSNR, psnrSum[step]/float64(n))
	}
	c.Set("recon", recon)
	c.Set("trace", tr)
	return nil
}

// restartSeedStride separates the seeds of restarts from those of batches.
const restartSeedStride = 1_000_000_007

// runBatch runs job, resuming from its scratch state when a killed run left one.
func runBatch(c *dag.Call, s *sampler.Sampler, job batchJob, truth *Images, every, ckEvery, steps int) (*batchState, error) {
	lo, hi := job.lo, job.hi
	st := &batchState{Steps: steps, Residual: make([]float64, steps)}
	var resume *sampler.State
	if data, err := os.ReadFile(job.path); err == nil {
		saved := &batchState{}
		if err := gob.NewDecoder(bytes.NewReader(data)).Decode(saved); err != nil || saved.Steps != steps {
			return nil, fmt.Errorf("the saved state %s is unreadable or from another run; delete it: %v", job.path, err)
		}
		if saved.Done == steps {
			return saved, nil
		}
		st = saved
		resume = &sampler.State{Done: st.Done, X: tensors.FromFlatDataAndDimensions(st.X, job.shape.Dimensions...),
			RNG: tensors.FromFlatDataAndDimensions(st.RNG, len(st.RNG))}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	start := time.Now()
	secondsBefore := st.Seconds
	label := fmt.Sprintf("images %d–%d", lo, hi-1)
	if job.restart > 0 {
		label += fmt.Sprintf(" (restart %d)", job.restart)
	}
	hooks := sampler.Hooks{
		Resume: resume,
		Progress: func(done, _ int, dist []float64) {
			for _, d := range dist {
				st.Residual[done-1] += d
			}
			c.Progress(job.progressBase+(hi-lo)*done, job.progressTotal, fmt.Sprintf("%s, step %d/%d", label, done, steps))
		},
		SnapshotEvery: every,
		Snapshot: func(done int, xt, x0 *tensors.Tensor) {
			xs, x0s := tensors.MustCopyFlatData[float32](xt), tensors.MustCopyFlatData[float32](x0)
			per := len(xs) / (hi - lo)
			if lo == 0 && job.restart == 0 {
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
		Checkpoint: func(state sampler.State) error {
			st.Done = state.Done
			st.X = tensors.MustCopyFlatData[float32](state.X)
			st.RNG = tensors.MustCopyFlatData[uint64](state.RNG)
			st.Seconds = secondsBefore + time.Since(start).Seconds()
			return writeGob(job.path, st)
		},
	}
	res, err := s.RunWith(c.Context(), job.y, job.shape, job.seed, hooks)
	if err != nil {
		return nil, err
	}
	st.Done, st.X, st.RNG, st.Final = steps, tensors.MustCopyFlatData[float32](res.X), nil, res.Distances
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
