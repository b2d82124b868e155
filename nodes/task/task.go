// Package task reads the reference DPS task YAML (configs/*_config.yaml of the reference
// code: conditioning, data, measurement.operator, measurement.mask_opt, measurement.noise)
// and builds the operator, noise model and guidance it describes; it also reads the
// reference diffusion_config.yaml (LoadDiffusion) into sampler settings. Unknown keys and
// wrong types are errors naming the file and key; PyYAML's !!python/tuple tags are read as
// lists.
package task

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/dpsflow/dpsflow/internal/yamlerr"
	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
	"gopkg.in/yaml.v3"
)

// Config is a reference task config.
type Config struct {
	Conditioning struct {
		Method string `yaml:"method"`
		Params struct {
			Scale float64 `yaml:"scale"`
			// NumSampling is ps+'s number of jittered x̂0 (0: not given, the default 5);
			// only ps+ accepts it.
			NumSampling int `yaml:"num_sampling"`
			// NoiseScales (dpsflow's key, not the reference's) is the scale to use per noise
			// model name: SetNoise switching to a listed model sets Scale to its entry, as a
			// scale tuned for Gaussian noise can be far off for Poisson noise.
			NoiseScales map[string]float64 `yaml:"noise_scales"`
		} `yaml:"params"`
	} `yaml:"conditioning"`
	Data struct {
		Name string `yaml:"name"`
		Root string `yaml:"root"`
	} `yaml:"data"`
	Measurement struct {
		Operator map[string]any `yaml:"operator"`
		MaskOpt  map[string]any `yaml:"mask_opt"`
		Noise    struct {
			Name  string  `yaml:"name"`
			Sigma float64 `yaml:"sigma"`
			Rate  float64 `yaml:"rate"`
			// Form and Floor choose Poisson's likelihood (noise.PoissonForms; floor in counts);
			// ours, not the reference's: unset means noise.DefaultPoissonForm and RunFloor.
			Form  string  `yaml:"form"`
			Floor float64 `yaml:"floor"`
		} `yaml:"noise"`
	} `yaml:"measurement"`

	path string
}

// Load reads a task config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("task config: %w", err)
	}
	return Parse(data, path)
}

// Parse reads a task config from data; name is used in errors.
func Parse(data []byte, name string) (*Config, error) {
	// PyYAML writes tuples with a Python-specific tag; they are plain lists to us.
	data = bytes.ReplaceAll(data, []byte("!!python/tuple"), nil)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	c := &Config{path: name}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("task config %s: %w", name, yamlerr.Plain(err))
	}
	if err := c.checkNumSampling(data); err != nil {
		return nil, err
	}
	if err := c.checkNoiseScales(); err != nil {
		return nil, err
	}
	if c.Measurement.Operator == nil {
		return nil, fmt.Errorf("task config %s: measurement.operator is missing", name)
	}
	if _, ok := c.Measurement.Operator["name"].(string); !ok {
		return nil, fmt.Errorf("task config %s: measurement.operator.name is missing or not a string", name)
	}
	return c, nil
}

// checkNumSampling refuses conditioning.params.num_sampling below 1 or for a method other
// than ps+ ("dps+" is its alias).
func (c *Config) checkNumSampling(data []byte) error {
	var given struct {
		Conditioning struct {
			Params struct {
				NumSampling any `yaml:"num_sampling"` // yaml.v3 would truncate 2.5 into an int
			} `yaml:"params"`
		} `yaml:"conditioning"`
	}
	if err := yaml.Unmarshal(data, &given); err != nil {
		return fmt.Errorf("task config %s: %w", c.path, yamlerr.Plain(err))
	}
	v := given.Conditioning.Params.NumSampling
	if v == nil {
		return nil
	}
	if m := strings.ToLower(strings.TrimSpace(c.Conditioning.Method)); m != string(guidance.PSPlus) && m != "dps+" {
		return fmt.Errorf("task config %s: conditioning.params.num_sampling is only for method ps+, not %q", c.path, c.Conditioning.Method)
	}
	if n, ok := v.(int); !ok || n < 1 {
		return fmt.Errorf("task config %s: conditioning.params.num_sampling must be an integer ≥ 1, got %v", c.path, v)
	}
	return nil
}

// checkNoiseScales refuses noise_scales entries for unknown noise models and scales that
// are not finite and positive, naming the key.
func (c *Config) checkNoiseScales() error {
	names := make([]string, 0, len(c.Conditioning.Params.NoiseScales))
	for name := range c.Conditioning.Params.NoiseScales {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := c.Conditioning.Params.NoiseScales[name]
		if name != "gaussian" && name != "poisson" {
			return fmt.Errorf("task config %s: conditioning.params.noise_scales.%s: not a noise model (gaussian or poisson)", c.path, name)
		}
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("task config %s: conditioning.params.noise_scales.%s must be a positive number, got %v", c.path, name, v)
		}
	}
	return nil
}

// OperatorName is measurement.operator.name.
func (c *Config) OperatorName() string { return c.Measurement.Operator["name"].(string) }

// OperatorParams are the operator's parameters as operator.New takes them: the keys of
// measurement.operator other than name, and mask_opt when given.
func (c *Config) OperatorParams() map[string]any {
	params := map[string]any{}
	for k, v := range c.Measurement.Operator {
		if k != "name" {
			params[k] = v
		}
	}
	if c.Measurement.MaskOpt != nil {
		params["mask_opt"] = c.Measurement.MaskOpt
	}
	return params
}

// Operator builds the measurement operator for h×w images; seed fixes its random parts.
func (c *Config) Operator(h, w int, seed uint64) (operator.Operator, error) {
	op, err := operator.New(c.OperatorName(), h, w, c.OperatorParams(), seed)
	if err != nil {
		return nil, fmt.Errorf("task config %s: measurement.operator: %w", c.path, err)
	}
	return op, nil
}

// NoiseSyntax is the one-string form of a noise model that SetNoise reads (the CLI's
// --noise, a table spec's noise).
const NoiseSyntax = "gaussian:SIGMA or poisson:RATE[:FORM[:FLOOR]]"

// SetNoise replaces the task's noise by the one spec describes in NoiseSyntax: SIGMA in
// [-1, 1] units; RATE, the Poisson likelihood FORM (noise.PoissonForms) and its FLOOR in
// counts. The result is checked by building the model. When conditioning.params.noise_scales
// lists the new noise model, the scale becomes its entry.
func (c *Config) SetNoise(spec string) error {
	name, val, ok := strings.Cut(spec, ":")
	val, form, _ := strings.Cut(val, ":")
	form, floorText, hasFloor := strings.Cut(form, ":")
	v, err := strconv.ParseFloat(val, 64)
	floor := 0.0
	if err == nil && hasFloor {
		floor, err = strconv.ParseFloat(floorText, 64)
	}
	if !ok || err != nil || (name != "gaussian" && name != "poisson") || (name == "gaussian" && form != "") {
		return fmt.Errorf("noise %q: want %s", spec, NoiseSyntax)
	}
	n := &c.Measurement.Noise
	n.Name, n.Sigma, n.Rate, n.Form, n.Floor = name, 0, 0, "", 0
	if scale, ok := c.Conditioning.Params.NoiseScales[name]; ok {
		c.Conditioning.Params.Scale = scale // an explicit --scale is applied after this
	}
	if name == "gaussian" {
		n.Sigma = v
	} else {
		n.Rate, n.Form, n.Floor = v, form, floor
	}
	_, err = c.Noise()
	return err
}

// Noise builds the measurement noise model.
func (c *Config) Noise() (noise.Model, error) {
	n := c.Measurement.Noise
	var m noise.Model
	var err error
	switch strings.ToLower(n.Name) {
	case "gaussian":
		if n.Form != "" || n.Floor != 0 {
			return nil, fmt.Errorf("task config %s: measurement.noise.form and floor are for poisson noise, not gaussian", c.path)
		}
		m, err = noise.NewGaussian(n.Sigma)
	case "poisson":
		form, floor := noise.PoissonForm(n.Form), n.Floor
		if form == "" {
			form = noise.DefaultPoissonForm
		}
		if floor == 0 {
			floor = noise.RunFloor(form)
		}
		m, err = noise.NewPoissonForm(n.Rate, form, floor)
	default:
		return nil, fmt.Errorf("task config %s: measurement.noise.name %q is not gaussian or poisson", c.path, n.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("task config %s: measurement.noise: %w", c.path, err)
	}
	return m, nil
}

// Guidance is the conditioning method with the reference's conventions: the constant
// scale on the unsquared norm (RuleReference), and for ps+ num_sampling as PlusSamples
// (0 when not given: guidance's default).
func (c *Config) Guidance() guidance.Config {
	return guidance.Config{Method: guidance.Method(c.Conditioning.Method), Scale: c.Conditioning.Params.Scale,
		PlusSamples: c.Conditioning.Params.NumSampling}
}
