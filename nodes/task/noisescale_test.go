package task

import (
	"strings"
	"testing"
)

// The Gaussian presets are the main job: their scale must stay what it was.
var gaussianScales = map[string]float64{"deblur-gauss": 4, "deblur-motion": 4, "deblur-nonlinear": 4,
	"inpaint-box": 4, "inpaint-random": 4, "phase-retrieval": 1, "sr4": 4}

func TestPresetsCarryAScalePerNoiseModel(t *testing.T) {
	for _, name := range Presets() {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		want, ok := gaussianScales[name]
		if !ok {
			t.Fatalf("preset %s: add its Gaussian scale to this test", name)
		}
		if c.Conditioning.Params.Scale != want || c.Measurement.Noise.Name != "gaussian" {
			t.Errorf("preset %s: scale %v with %s noise, want %v with gaussian", name, c.Conditioning.Params.Scale, c.Measurement.Noise.Name, want)
		}
		poisson, ok := c.Conditioning.Params.NoiseScales["poisson"]
		if !ok {
			t.Errorf("preset %s: no noise_scales.poisson", name)
			continue
		}
		if err := c.SetNoise("poisson:1"); err != nil {
			t.Fatal(err)
		}
		if c.Conditioning.Params.Scale != poisson {
			t.Errorf("preset %s with Poisson noise: scale %v, want its noise_scales.poisson %v", name, c.Conditioning.Params.Scale, poisson)
		}
		// Back to Gaussian noise: the Gaussian scale again.
		if err := c.SetNoise("gaussian:0.1"); err != nil {
			t.Fatal(err)
		}
		if c.Conditioning.Params.Scale != want {
			t.Errorf("preset %s back to Gaussian noise: scale %v, want %v", name, c.Conditioning.Params.Scale, want)
		}
	}
}

func TestNoiseScalesWithoutAnEntryKeepTheScale(t *testing.T) {
	c, err := Parse([]byte(yamlWithNoiseScales("")), "mine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetNoise("poisson:1"); err != nil || c.Conditioning.Params.Scale != 3 {
		t.Errorf("a task without noise_scales: scale %v after SetNoise (%v), want its own 3", c.Conditioning.Params.Scale, err)
	}
}

func TestBadNoiseScalesNameTheKey(t *testing.T) {
	for _, c := range []struct{ entry, want string }{
		{"laplace: 2", "noise_scales.laplace: not a noise model"},
		{"poisson: -1", "noise_scales.poisson must be a positive number, got -1"},
		{"poisson: .nan", "noise_scales.poisson must be a positive number"},
		{"poisson: .inf", "noise_scales.poisson must be a positive number"},
		{"poisson: lots", "line 6"}, // yaml.v3 names the line of a wrong type
	} {
		_, err := Parse([]byte(yamlWithNoiseScales("\n    noise_scales:\n      "+c.entry)), "mine.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mine.yaml") {
			t.Errorf("noise_scales %q: error %v, want one naming mine.yaml and %q", c.entry, err, c.want)
		}
	}
}

func yamlWithNoiseScales(extra string) string {
	return `conditioning:
  method: ps
  params:
    scale: 3.0` + extra + `
measurement:
  operator:
    name: super_resolution
    in_shape: [1, 1, 32, 32]
    scale_factor: 4
  noise:
    name: gaussian
    sigma: 0.05
`
}
