package pipeline

import (
	"encoding/gob"
	"fmt"
	"io"
	"slices"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Port types of the DPS kinds.
const (
	TypeImages      = "images"
	TypeMeasurement = "measurement"
	TypeTrace       = "trace"
	TypeMetrics     = "metrics"
	TypePrior       = "prior"
	TypeOperator    = "operator"
	TypeNoise       = "noise"
	TypeLikelihood  = "likelihood"
	TypeTweedie     = "tweedie"
	TypeUpdate      = "update"
	TypeSolver      = "solver"
)

// Images is a batch of images on the host: NCHW float32 in [-1, 1], row-major.
type Images struct {
	N, C, H, W int
	Pixels     []float32
	Names      []string // one per image
	Labels     []int    // class labels when known (MNIST digits), else nil
}

// Size is the number of values of one image.
func (im *Images) Size() int { return im.C * im.H * im.W }

// Image is image i (no copy).
func (im *Images) Image(i int) []float32 { return im.Pixels[i*im.Size() : (i+1)*im.Size()] }

// Tensor is images [lo, hi) as a float32 tensor [hi−lo, C, H, W].
func (im *Images) Tensor(lo, hi int) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(slices.Clone(im.Pixels[lo*im.Size():hi*im.Size()]), hi-lo, im.C, im.H, im.W)
}

// Measurement is y = A(x) + n for a batch, and a picture of each y for figures.
type Measurement struct {
	Shape []int // [N, ...]: the operator's measurement shape
	Y     []float32
	View  *Images // y shown as an image: itself, upscaled, or log-magnitudes
}

// Row is y of sample i.
func (m *Measurement) Row(i int) []float32 {
	per := len(m.Y) / m.Shape[0]
	return m.Y[i*per : (i+1)*per]
}

// Tensor is rows [lo, hi) of y.
func (m *Measurement) Tensor(lo, hi int) *tensors.Tensor {
	per := len(m.Y) / m.Shape[0]
	dims := append([]int{hi - lo}, m.Shape[1:]...)
	return tensors.FromFlatDataAndDimensions(slices.Clone(m.Y[lo*per:hi*per]), dims...)
}

// Frame is a snapshot of the first image of a run after Step steps.
type Frame struct {
	Step   int
	Xt, X0 []float32 // C·H·W each
}

// Trace is how a sampling run went, step by step. With restarts, the per-step curves
// and frames are those of the first run.
type Trace struct {
	Steps int
	// Residual is the mean over images of ‖y − A(x̂0)‖ after each step (len Steps).
	Residual []float64
	// PSNRSteps and PSNR: the mean PSNR of clip(x̂0) against the ground truth at the
	// snapshot steps (empty without ground truth).
	PSNRSteps []int
	PSNR      []float64
	// Frames are snapshots of image 0 every snapshot_every steps.
	Frames []Frame
	// Seconds is the sampling wall time per image (its batch's time, over all restarts,
	// shared equally).
	Seconds []float64
	// Final is each image's ‖y − A(x̂0)‖ at the last step of the run kept for it: with
	// restarts, the run where it is smallest (no ground truth involved).
	Final []float64
	// Solver names what made the images; NFE is its network evaluations per image (all
	// restarts together).
	Solver string
	NFE    []int
}

// ImageMetrics are one image's scores.
type ImageMetrics struct {
	Name     string  `json:"name"`
	PSNR     float64 `json:"psnr,omitempty"`
	SSIM     float64 `json:"ssim,omitempty"`
	Residual float64 `json:"residual"`
	Seconds  float64 `json:"seconds"`
	NFE      int     `json:"nfe"` // network evaluations (all restarts together)
}

// Stat is a mean ± (population) standard deviation.
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// Metrics is metrics.json.
type Metrics struct {
	Method  string          `json:"method"`
	Images  []ImageMetrics  `json:"images"`
	Summary map[string]Stat `json:"summary"` // psnr, ssim, residual, seconds
}

// gobCodec stores a value with encoding/gob. Only for types without maps (gob writes maps
// in random order, and the cache hashes the bytes).
type gobCodec[T any] struct{}

func (gobCodec[T]) Encode(w io.Writer, v any) error {
	t, ok := v.(T)
	if !ok {
		return fmt.Errorf("gob codec: got %T, want %T", v, *new(T))
	}
	return gob.NewEncoder(w).Encode(t)
}

func (gobCodec[T]) Decode(r io.Reader) (any, error) {
	var t T
	err := gob.NewDecoder(r).Decode(&t)
	return t, err
}

// CheckValue rejects values that are not a T.
func (gobCodec[T]) CheckValue(v any) error {
	if _, ok := v.(T); !ok {
		return fmt.Errorf("value of Go type %T, want %T", v, *new(T))
	}
	return nil
}

// RegisterTypes adds the DPS port types to reg.
func RegisterTypes(reg *dag.Registry) error {
	for name, c := range map[string]dag.Codec{
		TypeImages:      gobCodec[*Images]{},
		TypeMeasurement: gobCodec[*Measurement]{},
		TypeTrace:       gobCodec[*Trace]{},
		TypeMetrics:     dag.JSONCodec[*Metrics]{},
		TypePrior:       dag.JSONCodec[PriorSpec]{},
		TypeOperator:    dag.JSONCodec[OperatorSpec]{},
		TypeNoise:       dag.JSONCodec[NoiseSpec]{},
		TypeLikelihood:  dag.JSONCodec[LikelihoodSpec]{},
		TypeTweedie:     dag.JSONCodec[TweedieSpec]{},
		TypeUpdate:      dag.JSONCodec[UpdateSpec]{},
		TypeSolver:      dag.JSONCodec[SolverSpec]{},
		TypeScores:      dag.JSONCodec[*Scores]{},
		TypeFeatures:    gobCodec[*Features]{},
		TypeSetMetrics:  dag.JSONCodec[*SetMetrics]{},
	} {
		if err := reg.RegisterType(name, c); err != nil {
			return err
		}
	}
	return nil
}
