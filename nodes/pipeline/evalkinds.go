package pipeline

import (
	"fmt"
	"sync"

	"github.com/dpsflow/dpsflow/dag"
	"github.com/dpsflow/dpsflow/internal/codever"
	"github.com/dpsflow/dpsflow/nodes/metrics/fid"
	"github.com/dpsflow/dpsflow/nodes/metrics/inception"
	"github.com/dpsflow/dpsflow/nodes/metrics/lpips"
	"github.com/dpsflow/dpsflow/nodes/metrics/mnistnet"
	"github.com/dpsflow/dpsflow/xla"
	"github.com/gomlx/gomlx/backends"
)

// LPIPSNets are the LPIPS networks a spec may name.
var LPIPSNets = lpips.Nets

// MNISTFeaturesFit says whether the shipped MNIST classifier takes c×h×w images.
func MNISTFeaturesFit(c, h, w int) bool { return mnistnet.Accepts(c, h, w) }

// evalKinds are the learned metrics: per-image LPIPS, a feature network's features of an
// image set, and the set metrics comparing two feature sets.
func evalKinds() []dag.Kind {
	return []dag.Kind{
		{
			Name: "lpips", Version: "1", CodeVersion: codever.Of("nodes/metrics/lpips", "xla"), Fingerprint: fingerprintFiles("backbone", "lin"),
			Doc: "LPIPS v0.1 of each reconstruction against its truth (net alex|vgg|squeeze; the torchvision backbone and the lpips package's linear layers as the user has them)",
			Params: []dag.Param{{Name: "net", Type: "string", Default: "alex"}, {Name: "backbone", Type: "string", Required: true},
				{Name: "lin", Type: "string", Required: true}, {Name: "backend", Type: "string", Default: "embedded"}},
			Inputs:  []dag.Port{{Name: "recon", Type: TypeImages}, {Name: "truth", Type: TypeImages}},
			Outputs: []dag.Port{{Name: "scores", Type: TypeScores}},
			Run: func(c *dag.Call) error {
				spec := LPIPSSpec{Net: c.String("net"), Backbone: c.String("backbone"), Lin: c.String("lin")}
				values, err := LPIPSScores(spec, c.String("backend"), c.In("recon").(*Images), c.In("truth").(*Images))
				c.Set("scores", &Scores{Metric: "lpips", Values: values})
				return err
			},
		},
		{
			Name: "features", Version: "1", CodeVersion: codever.Of("nodes/metrics/mnistnet", "nodes/metrics/inception", "models/mnistnet", "xla"), Fingerprint: fingerprintFiles("weights"),
			Doc: "feature vectors of an image set for FD/KID: net mnist (the shipped classifier's 128-d features and its classes) or inception (pytorch-fid's 2048-d pool features, from weights)",
			Params: []dag.Param{{Name: "net", Type: "string", Default: FIDMNIST}, {Name: "weights", Type: "string"},
				{Name: "backend", Type: "string", Default: "embedded"}},
			Inputs:  []dag.Port{{Name: "images", Type: TypeImages}},
			Outputs: []dag.Port{{Name: "features", Type: TypeFeatures}},
			Run: func(c *dag.Call) error {
				f, err := ComputeFeatures(c.String("net"), optString(c, "weights"), c.String("backend"), c.In("images").(*Images))
				c.Set("features", f)
				return err
			},
		},
		{
			Name: "fd", Version: "1", CodeVersion: codever.Of("nodes/metrics/fid"),
			Doc: "set metrics of predictions against references: Fréchet distance and KID (mean ± std over subsets drawn from the node's seed) of their features, and the classifier's accuracy (prediction's class = reference's label)",
			Params: []dag.Param{{Name: "kid_subsets", Type: "int", Default: DefaultKIDSubsets},
				{Name: "kid_subset_size", Type: "int", Default: DefaultKIDSubsetSize}},
			Inputs:  []dag.Port{{Name: "pred", Type: TypeFeatures}, {Name: "ref", Type: TypeFeatures}},
			Outputs: []dag.Port{{Name: "set", Type: TypeSetMetrics}},
			Run: func(c *dag.Call) error {
				s, err := CompareFeatures(c.In("pred").(*Features), c.In("ref").(*Features),
					fid.KIDOptions{Subsets: c.Int("kid_subsets"), SubsetSize: c.Int("kid_subset_size"), Seed: c.Seed()})
				c.Set("set", s)
				return err
			},
		},
	}
}

// fingerprintFiles fingerprints the weight files named by the params (unset ones skipped),
// so that replacing a file reruns what depends on it.
func fingerprintFiles(params ...string) func(map[string]any) (string, error) {
	return func(p map[string]any) (string, error) {
		var paths []string
		for _, k := range params {
			if s, _ := p[k].(string); s != "" {
				paths = append(paths, s)
			}
		}
		return fileDigests(paths...)
	}
}

// Networks are read once per process and file: a table scores many cells with one. They
// keep their weights on the backend they first ran on, so the backends they run on are
// held for the life of the process (xla.Shared would finalize a backend, and the weights on
// it, when its last other user releases it).
var (
	netMu     sync.Mutex
	lpipsNets = map[LPIPSSpec]*lpips.Model{}
	inceptNet = map[string]*inception.Net{}
	mnistNet  *mnistnet.Net
	evalHeld  = map[string]backends.Backend{}
)

// evalBackend is the backend of spec, held for the process. Callers hold netMu.
func evalBackend(spec string) (backends.Backend, error) {
	if b, ok := evalHeld[spec]; ok {
		return b, nil
	}
	b, _, err := xla.Shared(spec) // never released: see evalHeld
	if err != nil {
		return nil, err
	}
	evalHeld[spec] = b
	return b, nil
}

// LPIPSScores is LPIPS(recon[i], truth[i]) for every image, on the backend spec.
func LPIPSScores(spec LPIPSSpec, backend string, recon, truth *Images) ([]float64, error) {
	if err := sameShape(recon, truth); err != nil {
		return nil, fmt.Errorf("lpips: %w", err)
	}
	netMu.Lock()
	defer netMu.Unlock()
	b, err := evalBackend(backend)
	if err != nil {
		return nil, err
	}
	m, ok := lpipsNets[spec]
	if !ok {
		if m, err = lpips.Load(spec.Net, spec.Backbone, spec.Lin); err != nil {
			return nil, err
		}
		lpipsNets[spec] = m
	}
	return m.Distances(b, clipped(recon.Pixels), truth.Pixels, recon.N, recon.C, recon.H, recon.W)
}

// ComputeFeatures runs a feature network (FIDMNIST, or FIDInception with its weights
// file) over images, on the backend spec.
func ComputeFeatures(net, weights, backend string, im *Images) (*Features, error) {
	netMu.Lock()
	defer netMu.Unlock()
	b, err := evalBackend(backend)
	if err != nil {
		return nil, err
	}
	f := &Features{Net: net, N: im.N, Labels: im.Labels}
	var rows [][]float64
	pixels := clipped(im.Pixels)
	switch net {
	case FIDMNIST:
		if !mnistnet.Accepts(im.C, im.H, im.W) {
			return nil, fmt.Errorf("features: the MNIST classifier takes 1×32×32 images, these are %d×%d×%d", im.C, im.H, im.W)
		}
		if mnistNet == nil {
			if mnistNet, err = mnistnet.Load(); err != nil {
				return nil, err
			}
		}
		rows, f.Classes, err = mnistNet.Run(b, pixels, im.N)
	case FIDInception:
		n, ok := inceptNet[weights]
		if !ok {
			if n, err = inception.Load(weights); err != nil {
				return nil, err
			}
			inceptNet[weights] = n
		}
		rows, err = n.Features(b, pixels, im.N, im.C, im.H, im.W)
	default:
		return nil, fmt.Errorf("features: net %q is not %s or %s", net, FIDMNIST, FIDInception)
	}
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		f.D = len(r)
		f.Values = append(f.Values, r...)
	}
	return f, nil
}

// CompareFeatures scores pred against ref as sets: FD, KID, and — when pred has classes —
// whether each prediction's class is its reference's label (or, without labels, the
// class the network gives the reference).
func CompareFeatures(pred, ref *Features, o fid.KIDOptions) (*SetMetrics, error) {
	if pred.D != ref.D || pred.Net != ref.Net {
		return nil, fmt.Errorf("fd: %s features of dimension %d against %s features of dimension %d", pred.Net, pred.D, ref.Net, ref.D)
	}
	rows := func(f *Features) [][]float64 {
		out := make([][]float64, f.N)
		for i := range out {
			out[i] = f.Row(i)
		}
		return out
	}
	a, b := rows(pred), rows(ref)
	sa, err := fid.NewStats(a)
	if err != nil {
		return nil, fmt.Errorf("fd: predictions: %w", err)
	}
	sb, err := fid.NewStats(b)
	if err != nil {
		return nil, fmt.Errorf("fd: references: %w", err)
	}
	s := &SetMetrics{Net: pred.Net, N: pred.N}
	if s.FD, err = fid.FrechetDistance(sa, sb); err != nil {
		return nil, fmt.Errorf("fd: %w", err)
	}
	if s.KID, s.KIDStd, err = fid.KID(a, b, o); err != nil {
		return nil, fmt.Errorf("kid: %w", err)
	}
	if pred.Classes != nil && pred.N == ref.N {
		want := ref.Labels
		if want == nil {
			want = ref.Classes
		}
		for i, c := range pred.Classes {
			s.Correct = append(s.Correct, c == want[i])
		}
	}
	return s, nil
}

// sameShape refuses two image sets that cannot be compared image by image.
func sameShape(a, b *Images) error {
	if a.N != b.N || a.C != b.C || a.H != b.H || a.W != b.W {
		return fmt.Errorf("%d images %d×%d×%d against %d images %d×%d×%d", a.N, a.C, a.H, a.W, b.N, b.C, b.H, b.W)
	}
	return nil
}
