package pipeline

import "github.com/dpsflow/dpsflow/nodes/metrics"

// Port types of the learned metrics.
const (
	TypeScores     = "scores"
	TypeFeatures   = "features"
	TypeSetMetrics = "set_metrics"
)

// Scores is one per-image metric of a set of reconstructions (LPIPS), in image order.
type Scores struct {
	Metric string    `json:"metric"`
	Values []float64 `json:"values"`
}

// Features are a feature network's vectors of a set of images (row-major [N, D]) and,
// for a classifier, its predicted classes; Labels are the images' own labels when known.
type Features struct {
	Net     string
	N, D    int
	Values  []float64
	Classes []int
	Labels  []int
}

// Row is image i's feature vector (no copy).
func (f *Features) Row(i int) []float64 { return f.Values[i*f.D : (i+1)*f.D] }

// SetMetrics compare a set of reconstructions with the truths as distributions: the
// Fréchet distance and KID (± its std over subsets) of their features, and whether the
// classifier sees each reconstruction as its truth's class (nil without a classifier).
type SetMetrics struct {
	Net     string  `json:"net"`
	N       int     `json:"n"`
	FD      float64 `json:"fd"`
	KID     float64 `json:"kid"`
	KIDStd  float64 `json:"kid_std"`
	Correct []bool  `json:"correct,omitempty"`
}

// Accuracy is the fraction of reconstructions classified as their truth's class, ± the
// population std of the 0/1 outcomes.
func (s *SetMetrics) Accuracy() Stat {
	xs := make([]float64, len(s.Correct))
	for i, c := range s.Correct {
		if c {
			xs[i] = 1
		}
	}
	mean, std := metrics.MeanStd(xs)
	return Stat{Mean: mean, Std: std}
}
