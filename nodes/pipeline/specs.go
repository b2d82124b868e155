package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/dpsflow/dpsflow/models"
	"github.com/dpsflow/dpsflow/nodes/checkpoint"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"github.com/dpsflow/dpsflow/nodes/prior/adm"
	"github.com/dpsflow/dpsflow/nodes/sampler"
	"github.com/dpsflow/dpsflow/nodes/solver"
	_ "github.com/dpsflow/dpsflow/nodes/solver/builtin" // every solver registers
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
)

// BuiltinMNIST names the prior shipped in the binary (package models).
const BuiltinMNIST = "mnist"

// PriorSpec names a score network and pins the bytes of its config and weights.
type PriorSpec struct {
	Builtin      string `json:"builtin,omitempty"` // "mnist", or empty for files
	ModelConfig  string `json:"model_config,omitempty"`
	Checkpoint   string `json:"checkpoint,omitempty"`
	ConfigSHA256 string `json:"config_sha256"`
	WeightSHA256 string `json:"weights_sha256"`
	ImageSize    int    `json:"image_size"`
	Channels     int    `json:"channels"`
}

// NewPriorSpec reads and hashes a prior's config and weights: builtin "mnist", or a
// model_config.yaml and a checkpoint. The config is parsed here, so a bad one fails early.
func NewPriorSpec(builtin, modelConfig, ckpt string) (PriorSpec, error) {
	var cfgData []byte
	var err error
	s := PriorSpec{Builtin: builtin, ModelConfig: modelConfig, Checkpoint: ckpt}
	switch {
	case builtin == BuiltinMNIST && modelConfig == "" && ckpt == "":
		cfgData = models.MNISTConfig
		s.WeightSHA256 = hash(bytes.NewReader(models.MNISTWeights))
	case builtin != "":
		return s, fmt.Errorf("prior: builtin %q is not %q, or is given together with model_config/checkpoint", builtin, BuiltinMNIST)
	case modelConfig == "" || ckpt == "":
		return s, fmt.Errorf("prior: give both model_config and checkpoint (or builtin: mnist)")
	default:
		if cfgData, err = os.ReadFile(modelConfig); err != nil {
			return s, fmt.Errorf("prior: model config: %w", err)
		}
		if s.WeightSHA256, err = fileDigest(ckpt); err != nil {
			return s, fmt.Errorf("prior: checkpoint: %w", err)
		}
	}
	cfg, err := adm.ParseConfig(cfgData, s.configName())
	if err != nil {
		return s, err
	}
	s.ConfigSHA256 = hash(bytes.NewReader(cfgData))
	s.ImageSize, s.Channels = cfg.ImageSize, cfg.InChannels
	if s.Channels == 0 {
		s.Channels = 3
	}
	return s, nil
}

func (s PriorSpec) configName() string {
	if s.Builtin != "" {
		return "builtin " + s.Builtin + " model_config.yaml"
	}
	return s.ModelConfig
}

// Load builds the network and loads its weights into a fresh variable context. Weights
// that do not fit the config are errors naming the tensor.
func (s PriorSpec) Load() (*adm.Model, *mlctx.Context, error) {
	var cfgData []byte
	var err error
	if s.Builtin != "" {
		cfgData = models.MNISTConfig
	} else if cfgData, err = os.ReadFile(s.ModelConfig); err != nil {
		return nil, nil, fmt.Errorf("prior: model config: %w", err)
	}
	cfg, err := adm.ParseConfig(cfgData, s.configName())
	if err != nil {
		return nil, nil, err
	}
	m, err := adm.New(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("prior: model config %s: %w", s.configName(), err)
	}
	w, err := s.readWeights()
	if err != nil {
		return nil, nil, err
	}
	ctx := mlctx.New()
	if err := m.Load(ctx, w); err != nil {
		return nil, nil, fmt.Errorf("prior: checkpoint %s does not match model config %s: %w", s.weightsName(), s.configName(), err)
	}
	return m, ctx, nil
}

// readWeights reads the checkpoint and checks it is still the one the spec hashed.
func (s PriorSpec) readWeights() (map[string]*tensors.Tensor, error) {
	if s.Builtin != "" {
		w, _, err := checkpoint.ReadSafetensorsFrom(bytes.NewReader(models.MNISTWeights), int64(len(models.MNISTWeights)), s.weightsName())
		return w, err
	}
	got, err := fileDigest(s.Checkpoint)
	if err != nil {
		return nil, fmt.Errorf("prior: checkpoint: %w", err)
	}
	if got != s.WeightSHA256 {
		return nil, fmt.Errorf("prior: checkpoint %s changed since it was hashed (sha256 %s, now %s)", s.Checkpoint, s.WeightSHA256[:12], got[:12])
	}
	return checkpoint.Read(s.Checkpoint)
}

func (s PriorSpec) weightsName() string {
	if s.Builtin != "" {
		return "builtin " + s.Builtin + " model.safetensors"
	}
	return s.Checkpoint
}

func hash(r io.Reader) string {
	h := sha256.New()
	_, _ = io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

// OperatorSpec is a measurement operator by the reference task name and parameters; Seed
// fixes its random parts (mask, kernel).
type OperatorSpec struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params,omitempty"`
	Seed   uint64         `json:"seed"`
}

// Build makes the operator for h×w images with the spec's seed: the one operator of a run
// for tasks without randomness, and the check that the spec builds at all.
func (s OperatorSpec) Build(h, w int) (operator.Operator, error) {
	return operator.New(s.Name, h, w, s.Params, s.Seed)
}

// BuildBatch makes the operator for images [first, first+n) of a run: each image's random
// parts (mask, box, kernel, latent code) are drawn from (Seed, its index), so every image
// of an evaluation gets its own and a rerun the same; tasks without randomness get Build's
// operator.
func (s OperatorSpec) BuildBatch(h, w, first, n int) (operator.Operator, error) {
	return operator.NewBatch(s.Name, h, w, s.Params, s.Seed, first, n)
}

// SolverSpec is a named solver of the nodes/solver registry with its resolved parameters
// (every declared one, defaults filled in).
type SolverSpec struct {
	Name   string         `json:"name"`
	Params map[string]any `json:"params"`
}

// NewSolverSpec resolves name (or an alias) and the given parameters; unknown names and
// bad parameters are errors naming the solver and the parameter.
func NewSolverSpec(name string, given map[string]any) (SolverSpec, error) {
	s, err := solver.Lookup(name)
	if err != nil {
		return SolverSpec{}, err
	}
	params, err := solver.Resolve(s, given)
	if err != nil {
		return SolverSpec{}, err
	}
	return SolverSpec{Name: s.Info().Name, Params: params}, nil
}

// Solver is the registered solver and its parameters, resolved again (a spec read back
// from JSON holds float64 numbers).
func (s SolverSpec) Solver() (solver.Solver, solver.Params, error) {
	sv, err := solver.Lookup(s.Name)
	if err != nil {
		return nil, nil, err
	}
	params, err := solver.Resolve(sv, s.Params)
	return sv, params, err
}

// NoiseSpec is the measurement noise: gaussian with Sigma ([-1, 1] units) or poisson with
// Rate, whose likelihood is Form (noise.PoissonForms; empty: noise.DefaultPoissonForm)
// guarded by Floor counts (0: noise.RunFloor of the form).
type NoiseSpec struct {
	Name  string  `json:"name"`
	Sigma float64 `json:"sigma,omitempty"`
	Rate  float64 `json:"rate,omitempty"`
	Form  string  `json:"form,omitempty"`
	Floor float64 `json:"floor,omitempty"`
}

// Build makes the noise model.
func (s NoiseSpec) Build() (noise.Model, error) {
	switch s.Name {
	case "gaussian":
		if s.Form != "" || s.Floor != 0 {
			return nil, fmt.Errorf("noise: form and floor are for poisson noise, not gaussian")
		}
		return noise.NewGaussian(s.Sigma)
	case "poisson":
		form, floor := noise.PoissonForm(s.Form), s.Floor
		if form == "" {
			form = noise.DefaultPoissonForm
		}
		if floor == 0 {
			floor = noise.RunFloor(form)
		}
		return noise.NewPoissonForm(s.Rate, form, floor)
	}
	return nil, fmt.Errorf("noise: name %q is not gaussian or poisson", s.Name)
}

// LikelihoodSpec is the guidance configuration.
type LikelihoodSpec = guidance.Config

// TweedieSpec configures the x̂0 estimate.
type TweedieSpec struct {
	Clip bool `json:"clip"`
}

// UpdateSpec configures the posterior update.
type UpdateSpec struct {
	Kind     string  `json:"kind"`
	Steps    int     `json:"steps"`
	Eta      float64 `json:"eta,omitempty"`
	Variance string  `json:"variance,omitempty"`
	Return   string  `json:"return,omitempty"`
}

// SamplerConfig assembles the sampler configuration from the graph-level specs.
func SamplerConfig(u UpdateSpec, t TweedieSpec, l LikelihoodSpec) sampler.Config {
	return sampler.Config{
		Kind: sampler.Kind(u.Kind), Steps: u.Steps, Eta: u.Eta, NoClip: !t.Clip,
		Variance: sampler.VarianceType(u.Variance), Return: sampler.Return(u.Return), Guidance: l,
	}
}
