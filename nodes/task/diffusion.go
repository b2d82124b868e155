package task

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/dpsflow/dpsflow/internal/yamlerr"
	"github.com/dpsflow/dpsflow/nodes/schedule"
	"gopkg.in/yaml.v3"
)

// ScheduleSteps is the length of the one noise schedule we have: the linear 1000-step DDPM
// schedule (schedule.Default).
const ScheduleSteps = 1000

// Diffusion is the reference DPS diffusion_config.yaml (the keyword arguments of its
// create_sampler), checked against what our sampler supports; read it with its accessors.
type Diffusion struct {
	kind      string
	timesteps []int
	eta       float64
	variance  string
	clip      bool
	stride    bool // "ddimN": every (1000/N)-th step
}

// diffusionFile is the file's layout; pointers tell missing keys apart.
type diffusionFile struct {
	Sampler           *string  `yaml:"sampler"`
	Steps             any      `yaml:"steps"` // yaml.v3 would truncate 1000.5 into an int
	NoiseSchedule     *string  `yaml:"noise_schedule"`
	ModelMeanType     *string  `yaml:"model_mean_type"`
	ModelVarType      *string  `yaml:"model_var_type"`
	DynamicThreshold  *bool    `yaml:"dynamic_threshold"`
	ClipDenoised      *bool    `yaml:"clip_denoised"`
	RescaleTimesteps  *bool    `yaml:"rescale_timesteps"`
	TimestepRespacing any      `yaml:"timestep_respacing"`
	Eta               *float64 `yaml:"eta"`
}

// LoadDiffusion reads a diffusion config file.
func LoadDiffusion(path string) (*Diffusion, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("diffusion config: %w", err)
	}
	return ParseDiffusion(data, path)
}

// ParseDiffusion reads a diffusion config from data; name is used in errors. Every key of
// the reference's create_sampler is required except timestep_respacing (default: no
// respacing); eta (DDIM's η, default 0 as the reference's DDIM) is our addition. Unknown
// keys, wrong types and settings our sampler does not have are errors naming the file and
// key.
func ParseDiffusion(data []byte, name string) (*Diffusion, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f diffusionFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("diffusion config %s: %w", name, yamlerr.Plain(err))
	}
	d, err := f.check()
	if err != nil {
		return nil, fmt.Errorf("diffusion config %s: %w", name, err)
	}
	return d, nil
}

// check validates f and maps it to our sampler's terms.
func (f *diffusionFile) check() (*Diffusion, error) {
	d := &Diffusion{}
	for _, k := range []struct {
		key   string
		given bool
	}{
		{"sampler", f.Sampler != nil}, {"steps", f.Steps != nil}, {"noise_schedule", f.NoiseSchedule != nil},
		{"model_mean_type", f.ModelMeanType != nil}, {"model_var_type", f.ModelVarType != nil},
		{"dynamic_threshold", f.DynamicThreshold != nil}, {"clip_denoised", f.ClipDenoised != nil},
		{"rescale_timesteps", f.RescaleTimesteps != nil},
	} {
		if !k.given {
			return nil, fmt.Errorf("%s is missing", k.key)
		}
	}
	d.kind = strings.ToLower(strings.TrimSpace(*f.Sampler))
	if d.kind != "ddpm" && d.kind != "ddim" {
		return nil, fmt.Errorf("sampler %q is not ddpm or ddim", *f.Sampler)
	}
	if n, ok := f.Steps.(int); !ok || n != ScheduleSteps || strings.ToLower(strings.TrimSpace(*f.NoiseSchedule)) != "linear" {
		return nil, fmt.Errorf("steps %v with noise_schedule %q: only the linear %d-step DDPM schedule is supported (steps: %d, noise_schedule: linear)",
			f.Steps, *f.NoiseSchedule, ScheduleSteps, ScheduleSteps)
	}
	if m := strings.ToLower(strings.TrimSpace(*f.ModelMeanType)); m != "epsilon" {
		return nil, fmt.Errorf("model_mean_type %q is not supported: our priors predict the noise (epsilon)", *f.ModelMeanType)
	}
	switch v := strings.ToLower(strings.TrimSpace(*f.ModelVarType)); v {
	case "learned_range", "fixed_small", "fixed_large":
		d.variance = v
	default:
		return nil, fmt.Errorf("model_var_type %q is not supported; valid: learned_range, fixed_small, fixed_large", *f.ModelVarType)
	}
	if *f.DynamicThreshold {
		return nil, fmt.Errorf("dynamic_threshold: true is not supported; set it to false")
	}
	if *f.RescaleTimesteps {
		return nil, fmt.Errorf("rescale_timesteps: true is not supported: our priors take the unrescaled timestep (0…%d); set it to false", ScheduleSteps-1)
	}
	ts, ddim, err := respacing(f.TimestepRespacing)
	if err != nil {
		return nil, err
	}
	d.timesteps, d.stride = ts, ddim
	if ddim && d.kind != "ddim" {
		// The reference would run DDPM on DDIM-strided steps; we refuse the mix rather than
		// guess which one was meant.
		return nil, fmt.Errorf("timestep_respacing %q means DDIM but sampler is %s; set sampler: ddim, or timestep_respacing: %d for DDPM", f.TimestepRespacing, d.kind, len(ts))
	}
	if f.Eta != nil {
		if d.kind != "ddim" {
			return nil, fmt.Errorf("eta is only for sampler ddim, not %s", d.kind)
		}
		if !(*f.Eta >= 0) {
			return nil, fmt.Errorf("eta must be ≥ 0, got %v", *f.Eta)
		}
		d.eta = *f.Eta
	}
	d.clip = *f.ClipDenoised
	return d, nil
}

// respacing reads timestep_respacing as the reference's space_timesteps(1000, …) does with
// one section: nil or "" keep every step; N or "N" keep N evenly spread steps; "ddimN"
// keeps range(0, 1000, stride) for the integer stride that gives exactly N steps (and
// needs sampler ddim). It returns the kept base steps, ascending.
func respacing(v any) (ts []int, ddim bool, err error) {
	var text string
	switch v := v.(type) {
	case nil:
		return schedule.Default().Timesteps, false, nil
	case int:
		text = strconv.Itoa(v)
	case string:
		text = strings.TrimSpace(v)
	default:
		return nil, false, fmt.Errorf("timestep_respacing %v is a %T, not an integer or a string such as \"100\" or \"ddim100\"", v, v)
	}
	if text == "" {
		return schedule.Default().Timesteps, false, nil
	}
	if strings.Contains(text, ",") {
		return nil, false, fmt.Errorf("timestep_respacing %q: sections are not supported; give one count such as \"100\" or \"ddim100\"", text)
	}
	digits, ddim := strings.CutPrefix(text, "ddim")
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 || n > ScheduleSteps {
		return nil, false, fmt.Errorf("timestep_respacing %q is not a step count in [1, %d], optionally prefixed by ddim", text, ScheduleSteps)
	}
	respace := schedule.Default().Respace
	if ddim {
		respace = schedule.Default().RespaceStride
	}
	sched, err := respace(n)
	if err != nil {
		return nil, false, fmt.Errorf("timestep_respacing %q: %w", text, err)
	}
	return sched.Timesteps, ddim, nil
}

// Kind is the sampler: "ddpm" or "ddim" (sampler.Kind's names).
func (d *Diffusion) Kind() string { return d.kind }

// Steps is the number of sampling steps after respacing (1000 without respacing).
func (d *Diffusion) Steps() int { return len(d.timesteps) }

// Timesteps are the base schedule steps kept by the respacing, ascending, as the
// reference's space_timesteps picks them (schedule.Respace for "N", schedule.RespaceStride
// for "ddimN": 0, 10, …, 990 for ddim100).
func (d *Diffusion) Timesteps() []int { return append([]int(nil), d.timesteps...) }

// Respacing is how the kept steps are picked, as sampler.Respacing names it: "stride" for
// "ddimN", else "even" (schedule.Respace's spread, which "N" and the reference agree on).
func (d *Diffusion) Respacing() string {
	if d.stride {
		return "stride"
	}
	return "even"
}

// Eta is DDIM's η (0 when not given, as the reference's DDIM).
func (d *Diffusion) Eta() float64 { return d.eta }

// Variance is the reverse-process variance as sampler.VarianceType names it:
// "learned_range", "fixed_small" or "fixed_large".
func (d *Diffusion) Variance() string { return d.variance }

// Clip is clip_denoised: whether x̂0 is clipped to [-1, 1].
func (d *Diffusion) Clip() bool { return d.clip }
