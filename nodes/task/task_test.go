package task

import (
	"slices"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/nodes/guidance"
	"github.com/dpsflow/dpsflow/nodes/noise"
	"github.com/dpsflow/dpsflow/nodes/operator"
)

// The reference's super_resolution_config.yaml and box inpainting config, verbatim.
const srConfig = `conditioning:
  method: ps
  params:
    scale: 0.3

data:
  name: ffhq
  root: ./data/samples/

measurement:
  operator:
    name: super_resolution
    in_shape: !!python/tuple [1, 3, 256, 256]
    scale_factor: 4

  noise:
    name: gaussian
    sigma: 0.05
`

const boxConfig = `conditioning:
  method: ps
  params:
    scale: 0.5

data:
  name: ffhq
  root: ./data/samples/

measurement:
  operator:
    name: inpainting
  mask_opt:
    mask_type: box
    mask_len_range: !!python/tuple [128, 129]  # for box
    image_size: 256

  noise:
    name: gaussian
    sigma: 0.05
`

func TestReferenceConfigsBuild(t *testing.T) {
	c, err := Parse([]byte(srConfig), "sr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if g := c.Guidance(); g.Method != guidance.PS || g.Scale != 0.3 {
		t.Fatalf("guidance %+v", g)
	}
	op, err := c.Operator(256, 256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := op.(operator.Linear); !ok || op.Name() != "super_resolution" {
		t.Fatalf("operator %s", op.Name())
	}
	nm, err := c.Noise()
	if err != nil || nm.Name() != "gaussian" {
		t.Fatalf("noise %v %v", nm, err)
	}
	c, err = Parse([]byte(boxConfig), "box.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if op, err = c.Operator(256, 256, 1); err != nil || op.Name() != "inpainting" {
		t.Fatalf("inpainting: %v %v", op, err)
	}
}

func TestBadConfigsNameFileAndKey(t *testing.T) {
	cases := map[string]string{
		"unknown key":      strings.Replace(srConfig, "scale: 0.3", "scale: 0.3\n    step: 2", 1),
		"wrong type":       strings.Replace(srConfig, "scale: 0.3", "scale: high", 1),
		"no operator":      "conditioning:\n  method: ps\n",
		"bad noise":        strings.Replace(srConfig, "name: gaussian", "name: laplace", 1),
		"bad sigma":        strings.Replace(srConfig, "sigma: 0.05", "sigma: -1", 1),
		"bad op param":     strings.Replace(srConfig, "scale_factor: 4", "scale_factor: 3.5", 1),
		"wrong in_shape":   strings.Replace(srConfig, "256, 256]", "128, 128]", 1),
		"unknown operator": strings.Replace(srConfig, "name: super_resolution", "name: denoise", 1),
	}
	for name, text := range cases {
		c, err := Parse([]byte(text), "task.yaml")
		if err == nil {
			_, err = c.Operator(256, 256, 1)
		}
		if err == nil {
			_, err = c.Noise()
		}
		if err == nil || !strings.Contains(err.Error(), "task.yaml") {
			t.Errorf("%s: error %v, want one naming task.yaml", name, err)
		}
	}
}

// Every preset parses and builds its operator and noise for 32×32 digits.
func TestPresetsBuildFor32x32(t *testing.T) {
	want := []string{"deblur-gauss", "deblur-motion", "deblur-nonlinear", "inpaint-box", "inpaint-random", "phase-retrieval", "sr4"}
	if got := Presets(); !slices.Equal(got, want) {
		t.Fatalf("presets %v, want %v", got, want)
	}
	for _, name := range want {
		c, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Operator(32, 32, 1); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := c.Noise(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Preset("sr8"); err == nil || !strings.Contains(err.Error(), "sr4") {
		t.Errorf("unknown preset: error %v does not list the known ones", err)
	}
}

func TestPSPlusNumSampling(t *testing.T) {
	plus := strings.Replace(srConfig, "method: ps\n  params:\n    scale: 0.3", "method: ps+\n  params:\n    scale: 0.3\n    num_sampling: 5", 1)
	c, err := Parse([]byte(plus), "plus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Conditioning.Params.NumSampling; n != 5 {
		t.Fatalf("num_sampling %d, want 5", n)
	}
	if g := c.Guidance(); g.Method != guidance.PSPlus || g.Scale != 0.3 || g.PlusSamples != 5 {
		t.Fatalf("guidance %+v", g)
	}
	// Without num_sampling, guidance keeps its default.
	noN := strings.Replace(plus, "\n    num_sampling: 5", "", 1)
	if c, err = Parse([]byte(noN), "plus.yaml"); err != nil || c.Guidance().PlusSamples != 0 {
		t.Fatalf("ps+ without num_sampling: %v, %+v", err, c)
	}
	for name, text := range map[string]string{
		"not ps+":  strings.Replace(plus, "method: ps+", "method: ps", 1),
		"zero":     strings.Replace(plus, "num_sampling: 5", "num_sampling: 0", 1),
		"negative": strings.Replace(plus, "num_sampling: 5", "num_sampling: -2", 1),
		"not int":  strings.Replace(plus, "num_sampling: 5", "num_sampling: 2.5", 1),
	} {
		_, err := Parse([]byte(text), "plus.yaml")
		if err == nil || !strings.Contains(err.Error(), "plus.yaml") {
			t.Errorf("%s: error %v, want one naming plus.yaml", name, err)
			continue
		}
		if name != "not int" && !strings.Contains(err.Error(), "num_sampling") {
			t.Errorf("%s: error %v does not name num_sampling", name, err)
		}
	}
}

// A Poisson task without a likelihood form gets the paper's form floored at 32 counts; a
// named form gets its own one-count floor unless a floor is given; Gaussian noise refuses
// both keys.
func TestPoissonNoiseForm(t *testing.T) {
	for _, c := range []struct {
		noise string
		form  noise.PoissonForm
		floor float64
	}{
		{"{name: poisson, rate: 1.0}", noise.FormPaper, 32},
		{"{name: poisson, rate: 1.0, form: paper}", noise.FormPaper, 32},
		{"{name: poisson, rate: 1.0, form: nll}", noise.FormNLL, 1},
		{"{name: poisson, rate: 1.0, form: reference, floor: 4}", noise.FormReference, 4},
	} {
		cfg, err := Parse([]byte("measurement:\n  operator: {name: super_resolution}\n  noise: "+c.noise+"\n"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := cfg.Noise()
		if err != nil {
			t.Fatal(err)
		}
		p := m.(*noise.Poisson)
		if p.Form() != c.form || p.Floor() != c.floor {
			t.Errorf("%s: form %s floor %v, want %s %v", c.noise, p.Form(), p.Floor(), c.form, c.floor)
		}
	}
	for noiseYAML, want := range map[string]string{
		"{name: poisson, rate: 1.0, form: fancy}":    `unknown poisson form "fancy"`,
		"{name: gaussian, sigma: 0.05, form: paper}": "form and floor are for poisson noise",
	} {
		cfg, err := Parse([]byte("measurement:\n  operator: {name: super_resolution}\n  noise: "+noiseYAML+"\n"), "t.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.Noise(); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "t.yaml") {
			t.Errorf("%s: error %v, want %q naming the file", noiseYAML, err, want)
		}
	}
}
