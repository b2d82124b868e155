package task

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The reference DPS configs/diffusion_config.yaml, verbatim.
const diffusionConfig = `sampler: ddpm
steps: 1000
noise_schedule: linear
model_mean_type: epsilon
model_var_type: learned_range
dynamic_threshold: False
clip_denoised: True
rescale_timesteps: False
timestep_respacing: 1000
`

func TestReferenceDiffusionConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "diffusion_config.yaml")
	if err := os.WriteFile(path, []byte(diffusionConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := LoadDiffusion(path)
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind() != "ddpm" || d.Steps() != 1000 || d.Eta() != 0 || d.Variance() != "learned_range" || !d.Clip() {
		t.Fatalf("kind %s, steps %d, eta %v, variance %s, clip %v", d.Kind(), d.Steps(), d.Eta(), d.Variance(), d.Clip())
	}
	if ts := d.Timesteps(); len(ts) != 1000 || ts[0] != 0 || ts[999] != 999 {
		t.Fatalf("timesteps %v…", ts[:3])
	}
	// No respacing at all is the same.
	d, err = ParseDiffusion([]byte(strings.Replace(diffusionConfig, "timestep_respacing: 1000\n", "", 1)), "d.yaml")
	if err != nil || d.Steps() != 1000 {
		t.Fatalf("without timestep_respacing: %v, %d steps", err, d.Steps())
	}
	if _, err := LoadDiffusion(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDiffusionRespacing(t *testing.T) {
	ddim := strings.NewReplacer("sampler: ddpm", "sampler: ddim", "timestep_respacing: 1000", `timestep_respacing: "ddim100"`+"\neta: 0.5",
		"model_var_type: learned_range", "model_var_type: fixed_small", "clip_denoised: True", "clip_denoised: false").Replace(diffusionConfig)
	d, err := ParseDiffusion([]byte(ddim), "ddim.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind() != "ddim" || d.Steps() != 100 || d.Eta() != 0.5 || d.Variance() != "fixed_small" || d.Clip() {
		t.Fatalf("kind %s, steps %d, eta %v, variance %s, clip %v", d.Kind(), d.Steps(), d.Eta(), d.Variance(), d.Clip())
	}
	if ts := d.Timesteps(); ts[1] != 10 || ts[99] != 990 {
		t.Fatalf("ddim100 keeps %v…%v, want 0, 10, …, 990", ts[:3], ts[97:])
	}
	for _, text := range []string{"timestep_respacing: 100", `timestep_respacing: "100"`} {
		d, err := ParseDiffusion([]byte(strings.Replace(diffusionConfig, "timestep_respacing: 1000", text, 1)), "d.yaml")
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		// guided-diffusion's space_timesteps(1000, [100]): stride 999/99, rounded half to even.
		if ts := d.Timesteps(); d.Kind() != "ddpm" || d.Steps() != 100 || ts[1] != 10 || ts[50] != 505 || ts[99] != 999 {
			t.Fatalf("%s: kind %s, timesteps %v", text, d.Kind(), ts)
		}
	}
	d, err = ParseDiffusion([]byte(strings.Replace(diffusionConfig, "timestep_respacing: 1000", `timestep_respacing: "1"`, 1)), "d.yaml")
	if err != nil || !slices.Equal(d.Timesteps(), []int{0}) {
		t.Fatalf("one step: %v %v", err, d)
	}
}

func TestDiffusionErrorsNameFileAndKey(t *testing.T) {
	re := func(old, new string) string { return strings.Replace(diffusionConfig, old, new, 1) }
	cases := map[string]struct{ text, key string }{
		"unknown key":       {diffusionConfig + "use_fp16: true\n", "use_fp16"},
		"missing key":       {re("clip_denoised: True\n", ""), "clip_denoised"},
		"wrong type":        {re("clip_denoised: True", "clip_denoised: often"), "often"},
		"fractional steps":  {re("steps: 1000", "steps: 1000.5"), "steps"},
		"sampler":           {re("sampler: ddpm", "sampler: dpm_solver"), "sampler"},
		"steps":             {re("steps: 1000", "steps: 4000"), "steps"},
		"noise schedule":    {re("noise_schedule: linear", "noise_schedule: cosine"), "noise_schedule"},
		"mean type":         {re("model_mean_type: epsilon", "model_mean_type: start_x"), "model_mean_type"},
		"var type":          {re("model_var_type: learned_range", "model_var_type: learned"), "model_var_type"},
		"dynamic threshold": {re("dynamic_threshold: False", "dynamic_threshold: True"), "dynamic_threshold"},
		"rescale":           {re("rescale_timesteps: False", "rescale_timesteps: True"), "rescale_timesteps"},
		"respacing 0":       {re("timestep_respacing: 1000", "timestep_respacing: 0"), "timestep_respacing"},
		"respacing big":     {re("timestep_respacing: 1000", "timestep_respacing: 2000"), "timestep_respacing"},
		"respacing text":    {re("timestep_respacing: 1000", "timestep_respacing: fast"), "timestep_respacing"},
		"respacing float":   {re("timestep_respacing: 1000", "timestep_respacing: 2.5"), "timestep_respacing"},
		"sections":          {re("timestep_respacing: 1000", `timestep_respacing: "10,20"`), "timestep_respacing"},
		"ddim stride":       {re("sampler: ddpm", "sampler: ddim") + "", "timestep_respacing"},
		"ddim with ddpm":    {re("timestep_respacing: 1000", "timestep_respacing: ddim100"), "timestep_respacing"},
		"eta for ddpm":      {diffusionConfig + "eta: 0.5\n", "eta"},
		"negative eta":      {re("sampler: ddpm", "sampler: ddim") + "eta: -1\n", "eta"},
	}
	// No integer stride gives exactly 300 of 1000 steps.
	c := cases["ddim stride"]
	c.text = strings.Replace(c.text, "timestep_respacing: 1000", "timestep_respacing: ddim300", 1)
	cases["ddim stride"] = c
	for name, c := range cases {
		_, err := ParseDiffusion([]byte(c.text), "diffusion_config.yaml")
		if err == nil || !strings.Contains(err.Error(), "diffusion_config.yaml") || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: error %v, want one naming diffusion_config.yaml and %s", name, err, c.key)
		}
	}
}
