package task

import (
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
)

// FuzzParse: any bytes read as a task file give a config whose accessors work, or an
// error naming the file; never a panic.
func FuzzParse(f *testing.F) {
	for _, name := range Presets() {
		b, err := PresetYAML(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("measurement:\n  operator: {name: super_resolution, in_shape: !!python/tuple [1, 3, 256, 256], scale_factor: 4}\n  noise: {name: gaussian, sigma: 0.05}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		c, err := Parse(b, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		c.OperatorName()
		c.OperatorParams()
		c.Guidance()
		if _, err := c.Noise(); err != nil && !strings.Contains(err.Error(), "fuzz.yaml") {
			t.Fatalf("noise error %q does not name the file", err)
		}
	})
}

// FuzzParseDiffusion: the same for a diffusion_config.yaml.
func FuzzParseDiffusion(f *testing.F) {
	f.Add([]byte(diffusionConfig))
	f.Add([]byte("sampler: ddpm\nsteps: 1000\nnoise_schedule: linear\nmodel_mean_type: epsilon\nmodel_var_type: learned_range\ndynamic_threshold: False\nclip_denoised: True\nrescale_timesteps: False\ntimestep_respacing: 1000\n"))
	f.Add([]byte("sampler: ddim\nsteps: 1000\nnoise_schedule: linear\nmodel_mean_type: epsilon\nmodel_var_type: fixed_small\ndynamic_threshold: False\nclip_denoised: True\nrescale_timesteps: False\ntimestep_respacing: ddim50\neta: 0.5\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		d, err := ParseDiffusion(b, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		ts := d.Timesteps()
		if len(ts) != d.Steps() || len(ts) == 0 {
			t.Fatalf("%d timesteps, Steps() = %d", len(ts), d.Steps())
		}
		d.Respacing()
	})
}
