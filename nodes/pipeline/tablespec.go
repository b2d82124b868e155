package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/dpsflow/dpsflow/internal/yamlerr"
	"github.com/dpsflow/dpsflow/nodes/task"
	"gopkg.in/yaml.v3"
)

// TableSpec is a table spec file: tasks × solvers on the same images, and the metrics to
// score them with. It is the one description of an evaluation (`dpsflow table`, and
// sweeps, which shard the same spec). Keys are spelled as in the file; unknown keys are
// errors naming the file and line.
//
//	tasks: [sr4, inpaint-box, my-task.yaml]   # presets, or task-config files (relative to the spec)
//	solvers:                                  # names (`dpsflow solvers`) or {name, params, label}
//	  - dps
//	  - {name: ddrm, params: {steps: 50}}
//	  - {name: dps, label: dps-scale2, params: {scale: 2}}
//	n: 8                 # images (default 8)
//	start: 0             # first MNIST test digit
//	images: digits/      # instead of MNIST: a PNG/JPEG folder or .npy (relative to the spec)
//	model-config: m.yaml # with checkpoint: a prior instead of the shipped MNIST one
//	checkpoint: m.pt
//	steps: 0             # every solver's steps; 0: each its own default (DPS family: 100)
//	seed: 0
//	noise: gaussian:0.05 # overrides every task's noise (gaussian:SIGMA or poisson:RATE[:FORM[:FLOOR]])
//	batch: 8
//	restarts: 1
//	backend: embedded
//	metrics:
//	  lpips: {net: alex, backbone: alexnet-owt-7be5be79.pth, lin: alex.pth}
//	  fid: mnist         # mnist (the shipped classifier's features), inception, or none
//	  fid-weights: pt_inception-2015-12-05-6726825d.pth
//	  kid-subsets: 100
//	  kid-subset-size: 1000
type TableSpec struct {
	Tasks       []string      `yaml:"tasks"`
	Solvers     []TableSolver `yaml:"solvers"`
	N           int           `yaml:"n"`
	Start       int           `yaml:"start"`
	Images      string        `yaml:"images"`
	ModelConfig string        `yaml:"model-config"`
	Checkpoint  string        `yaml:"checkpoint"`
	Steps       int           `yaml:"steps"`
	Seed        uint64        `yaml:"seed"`
	Noise       string        `yaml:"noise"`
	Batch       int           `yaml:"batch"`
	Restarts    int           `yaml:"restarts"`
	Backend     string        `yaml:"backend"`
	Metrics     TableMetrics  `yaml:"metrics"`

	file  string         // where it was read from ("" for a spec built in code)
	lines map[string]int // line of each key path, for errors
}

// TableSolver is one column of a table: a registered solver, its params, and the label
// that names it in the table (default: its name; two entries of one solver need labels).
type TableSolver struct {
	Name   string         `yaml:"name"`
	Label  string         `yaml:"label,omitempty"`
	Params map[string]any `yaml:"params,omitempty"`
}

// TableMetrics chooses the learned metrics; PSNR, SSIM, the residual, NFE and seconds are
// always scored.
type TableMetrics struct {
	// LPIPS, when set, scores every reconstruction against its truth with LPIPS v0.1.
	LPIPS *LPIPSSpec `yaml:"lpips,omitempty"`
	// FID is the feature network of FD/KID: FIDMNIST (default when the images are 1×32×32),
	// FIDInception (needs FIDWeights) or FIDNone.
	FID        string `yaml:"fid,omitempty"`
	FIDWeights string `yaml:"fid-weights,omitempty"`
	// KID's subsets and their size (defaults 100 and 1000, as torch-fidelity; a subset is
	// never larger than the image set).
	KIDSubsets    int `yaml:"kid-subsets,omitempty"`
	KIDSubsetSize int `yaml:"kid-subset-size,omitempty"`
}

// LPIPSSpec is an LPIPS network and the user's weight files: the torchvision backbone
// state dict and the lpips package's linear layers (weights/v0.1/NET.pth).
type LPIPSSpec struct {
	Net      string `yaml:"net"`
	Backbone string `yaml:"backbone"`
	Lin      string `yaml:"lin"`
}

// The feature networks of FD and KID.
const (
	FIDMNIST     = "mnist"
	FIDInception = "inception"
	FIDNone      = "none"
)

// Defaults of a table spec.
const (
	DefaultTableN         = 8
	DefaultKIDSubsets     = 100
	DefaultKIDSubsetSize  = 1000
	defaultTableBatchSize = 8
)

// UnmarshalYAML takes a bare name or a {name, label, params} mapping, strictly.
func (s *TableSolver) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&s.Name)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a solver is a name or {name, label, params}", n.Line)
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := n.Content[i].Value; k != "name" && k != "label" && k != "params" {
			return fmt.Errorf("line %d: solver key %q is not name, label or params", n.Content[i].Line, k)
		}
	}
	type plain TableSolver
	return n.Decode((*plain)(s))
}

// LoadTableSpec reads and checks a table spec file. Relative paths in it are taken
// relative to the file's folder.
func LoadTableSpec(path string) (*TableSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("table spec: %w", err)
	}
	return ParseTableSpec(data, path)
}

// ParseTableSpec reads a table spec from data; file names it in errors and anchors its
// relative paths ("" for the current folder). Defaults are filled in and everything is
// checked (tasks exist, solver names and params are valid, files exist).
func ParseTableSpec(data []byte, file string) (*TableSpec, error) {
	s := &TableSpec{file: file}
	fail := func(err error) (*TableSpec, error) { return nil, fmt.Errorf("%s: %w", s.name(), err) }
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(errors.New("empty file"))
		}
		return fail(yamlerr.Plain(err))
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		s.lines = map[string]int{}
		collectLines(&root, "", s.lines)
	}
	dir := ""
	if file != "" {
		dir = filepath.Dir(file)
	}
	if err := s.complete(dir); err != nil {
		return fail(err)
	}
	return s, nil
}

// name is how errors name the spec: "table spec FILE", or "table spec" for one given as text.
func (s *TableSpec) name() string {
	if s.file == "" {
		return "table spec"
	}
	return "table spec " + s.file
}

// collectLines records the line of every mapping key and sequence item by its path
// ("solvers[2].params.scale").
func collectLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectLines(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			out[p] = n.Content[i].Line
			collectLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			collectLines(c, p, out)
		}
	}
}

// at prefixes an error with the line of a key path, when known.
func (s *TableSpec) at(path string, err error) error {
	if line, ok := s.lines[path]; ok {
		return fmt.Errorf("line %d: %s: %w", line, path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// labelPattern is what a solver label may be: it names DAG nodes and files.
var labelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+\-]*$`)

// complete fills defaults and checks the spec; dir anchors relative paths.
func (s *TableSpec) complete(dir string) error {
	abs := func(p string) (string, error) {
		if p == "" || filepath.IsAbs(p) {
			return p, nil
		}
		return filepath.Abs(filepath.Join(dir, p))
	}
	if s.Noise != "" {
		if err := (&task.Config{}).SetNoise(s.Noise); err != nil {
			return s.at("noise", err)
		}
	}
	if len(s.Tasks) == 0 {
		return s.at("tasks", errors.New("no tasks"))
	}
	seenTask := map[string]bool{}
	for i, t := range s.Tasks {
		key := fmt.Sprintf("tasks[%d]", i)
		if strings.HasSuffix(t, ".yaml") || strings.HasSuffix(t, ".yml") {
			p, err := abs(t)
			if err != nil {
				return s.at(key, err)
			}
			s.Tasks[i] = p
		}
		name := TaskLabel(s.Tasks[i])
		if seenTask[name] {
			return s.at(key, fmt.Errorf("task %q twice", name))
		}
		seenTask[name] = true
		if _, err := s.Task(i); err != nil {
			return s.at(key, err)
		}
	}
	if len(s.Solvers) == 0 {
		return s.at("solvers", errors.New("no solvers"))
	}
	seen := map[string]bool{}
	for i := range s.Solvers {
		sv := &s.Solvers[i]
		key := fmt.Sprintf("solvers[%d]", i)
		if sv.Label == "" {
			sv.Label = sv.Name
		}
		if !labelPattern.MatchString(sv.Label) {
			return s.at(key, fmt.Errorf("label %q: use letters, digits, _, + and -", sv.Label))
		}
		if seen[sv.Label] {
			return s.at(key, fmt.Errorf("%q twice: give the second a label", sv.Label))
		}
		seen[sv.Label] = true
		if _, err := NewSolverSpec(sv.Name, sv.Params); err != nil {
			return s.at(key, err)
		}
	}
	if s.N == 0 {
		s.N = DefaultTableN
	}
	if s.Batch == 0 {
		s.Batch = min(defaultTableBatchSize, s.N)
	}
	if s.Restarts == 0 {
		s.Restarts = 1
	}
	for _, c := range []struct {
		key string
		v   int
	}{{"n", s.N}, {"batch", s.Batch}, {"restarts", s.Restarts}} {
		if c.v < 1 {
			return s.at(c.key, fmt.Errorf("%d: must be at least 1", c.v))
		}
	}
	for _, c := range []struct {
		key string
		v   int
	}{{"steps", s.Steps}, {"start", s.Start}} {
		if c.v < 0 {
			return s.at(c.key, fmt.Errorf("%d: must not be negative", c.v))
		}
	}
	var err error
	if s.Images, err = abs(s.Images); err != nil {
		return s.at("images", err)
	}
	if (s.ModelConfig == "") != (s.Checkpoint == "") {
		return s.at("model-config", errors.New("give both model-config and checkpoint, or neither (the shipped MNIST prior)"))
	}
	if s.ModelConfig, err = abs(s.ModelConfig); err != nil {
		return s.at("model-config", err)
	}
	if s.Checkpoint, err = abs(s.Checkpoint); err != nil {
		return s.at("checkpoint", err)
	}
	m := &s.Metrics
	switch m.FID {
	case "", FIDMNIST, FIDNone:
		if m.FIDWeights != "" {
			return s.at("metrics.fid-weights", fmt.Errorf("only for fid: %s", FIDInception))
		}
	case FIDInception:
		if m.FIDWeights == "" {
			return s.at("metrics.fid", errors.New("inception needs fid-weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth)"))
		}
		if m.FIDWeights, err = abs(m.FIDWeights); err != nil {
			return s.at("metrics.fid-weights", err)
		}
		if _, err := os.Stat(m.FIDWeights); err != nil {
			return s.at("metrics.fid-weights", err)
		}
	default:
		return s.at("metrics.fid", fmt.Errorf("%q: want %s, %s or %s", m.FID, FIDMNIST, FIDInception, FIDNone))
	}
	// FD's covariance needs two images; found here rather than after every solver ran.
	if m.FID != FIDNone && s.N < 2 {
		return s.at("n", fmt.Errorf("%d image: FD and KID need at least 2 (or metrics: {fid: %s})", s.N, FIDNone))
	}
	if m.KIDSubsets == 0 {
		m.KIDSubsets = DefaultKIDSubsets
	}
	if m.KIDSubsetSize == 0 {
		m.KIDSubsetSize = DefaultKIDSubsetSize
	}
	if m.KIDSubsets < 1 {
		return s.at("metrics.kid-subsets", fmt.Errorf("%d: must be at least 1", m.KIDSubsets))
	}
	if m.KIDSubsetSize < 2 {
		return s.at("metrics.kid-subset-size", fmt.Errorf("%d: must be at least 2", m.KIDSubsetSize))
	}
	if l := m.LPIPS; l != nil {
		if !slices.Contains(LPIPSNets, l.Net) {
			return s.at("metrics.lpips.net", fmt.Errorf("%q: want one of %s", l.Net, strings.Join(LPIPSNets, ", ")))
		}
		for _, f := range []struct {
			key string
			p   *string
		}{{"backbone", &l.Backbone}, {"lin", &l.Lin}} {
			if *f.p == "" {
				return s.at("metrics.lpips", fmt.Errorf("%s: the weight file is missing", f.key))
			}
			if *f.p, err = abs(*f.p); err != nil {
				return s.at("metrics.lpips."+f.key, err)
			}
			if _, err := os.Stat(*f.p); err != nil {
				return s.at("metrics.lpips."+f.key, err)
			}
		}
	}
	return nil
}

// Task reads task i of the spec with the spec's noise applied.
func (s *TableSpec) Task(i int) (*task.Config, error) {
	name := s.Tasks[i]
	var t *task.Config
	var err error
	if filepath.IsAbs(name) || strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
		t, err = task.Load(name)
	} else {
		t, err = task.Preset(name)
	}
	if err != nil {
		return nil, err
	}
	if s.Noise != "" {
		if err := t.SetNoise(s.Noise); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// TaskLabel is how a task is named in a table: a preset's name, a file's base name.
func TaskLabel(task string) string {
	base := filepath.Base(task)
	return strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
}

// Labels are the solver labels in table order.
func (s *TableSpec) Labels() []string {
	out := make([]string, len(s.Solvers))
	for i, sv := range s.Solvers {
		out[i] = sv.Label
	}
	return out
}
