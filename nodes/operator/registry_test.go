package operator

// The registry and bad input: every error names what is wrong.

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

func TestNewBuildsEveryTask(t *testing.T) {
	cases := []struct {
		name   string
		params map[string]any
		linear bool
		proj   bool
	}{
		{"super_resolution", map[string]any{"scale_factor": 4, "in_shape": []any{1, 3, 64, 64}, "name": "super_resolution"}, true, true},
		{"avgpool_sr", map[string]any{"scale_factor": 2.0}, true, true},
		{"inpainting", map[string]any{"mask_opt": map[string]any{"mask_type": "box", "mask_len_range": []int{32, 33}, "image_size": 64, "margin": []int{4, 4}}}, true, true},
		{"inpainting", map[string]any{"mask_type": "random", "mask_prob_range": [2]float64{0.3, 0.7}}, true, true},
		{"inpainting", map[string]any{"mask_type": "random", "mask_prob": 0.92}, true, true},
		{"gaussian_blur", map[string]any{"kernel_size": 61, "intensity": 3.0}, true, false},
		{"motion_blur", map[string]any{"kernel_size": int64(61), "intensity": float32(0.5)}, true, false},
		{"phase_retrieval", map[string]any{"oversample": 2}, false, false},
		{"nonlinear_blur", map[string]any{"opt_yml_path": "./bkse/options/generate_blur/default.yaml"}, false, false},
		{"gaussian_blur", nil, true, false},
	}
	for _, c := range cases {
		op, err := New(c.name, 64, 64, c.params, 1)
		if err != nil {
			t.Errorf("%s %v: %v", c.name, c.params, err)
			continue
		}
		_, linear := op.(Linear)
		_, proj := op.(Projector)
		if op.Name() != c.name || linear != c.linear || proj != c.proj {
			t.Errorf("%s: got %s (Linear %v, Projector %v)", c.name, op.Name(), linear, proj)
		}
	}
	op, _ := New("inpainting", 64, 64, map[string]any{"mask_len_range": []int{32, 33}, "margin": 4}, 1)
	if zeros := 64*64 - int(dot(op.(*Inpainting).Mask(), ones(64*64))); zeros != 32*32 {
		t.Errorf("mask_len_range [32, 33) dropped %d pixels, want 32² = 1024", zeros)
	}
}

func TestErrorsNameTheParameter(t *testing.T) {
	cases := []struct {
		name   string
		h, w   int
		params map[string]any
		want   []string // substrings of the error
	}{
		{"deblur", 64, 64, nil, []string{"unknown task", "deblur"}},
		{"super_resolution", 64, 64, map[string]any{"scale": 4}, []string{"unknown parameter", "scale"}},
		{"super_resolution", 64, 64, map[string]any{"scale_factor": "4"}, []string{"scale_factor", "integer"}},
		{"super_resolution", 64, 64, map[string]any{"scale_factor": 2.5}, []string{"scale_factor", "integer"}},
		{"super_resolution", 60, 64, map[string]any{"scale_factor": 8}, []string{"scale_factor", "divides"}},
		{"super_resolution", 64, 64, map[string]any{"in_shape": []int{1, 3, 256, 256}}, []string{"in_shape"}},
		{"avgpool_sr", 64, 64, map[string]any{"scale_factor": 0}, []string{"scale_factor"}},
		{"gaussian_blur", 64, 64, map[string]any{"intensity": 0.0}, []string{"intensity", "positive"}},
		{"gaussian_blur", 64, 64, map[string]any{"intensity": -1}, []string{"intensity"}},
		{"gaussian_blur", 64, 64, map[string]any{"kernel_size": 60}, []string{"kernel_size", "odd"}},
		{"gaussian_blur", 16, 16, nil, []string{"kernel_size", "padding"}},
		{"motion_blur", 64, 64, map[string]any{"intensity": 1.5}, []string{"intensity"}},
		{"phase_retrieval", 64, 64, map[string]any{"oversample": -1.0}, []string{"oversample"}},
		{"phase_retrieval", 64, 64, map[string]any{"oversample": true}, []string{"oversample", "number"}},
		{"inpainting", 64, 64, map[string]any{"mask_type": "stripes"}, []string{"mask_type"}},
		{"inpainting", 64, 64, map[string]any{"mask_prob_range": []float64{0.3, 0.7}}, []string{"mask_prob_range", "random"}},
		{"inpainting", 64, 64, map[string]any{"mask_type": "random", "mask_prob_range": []float64{0.7, 0.3}}, []string{"mask_prob_range"}},
		{"inpainting", 64, 64, map[string]any{"mask_type": "random", "mask_prob": 1.5}, []string{"mask_prob"}},
		{"inpainting", 64, 64, map[string]any{"mask_len_range": []int{128, 129}}, []string{"mask_len_range"}},
		{"inpainting", 64, 64, map[string]any{"mask_len_range": []float64{1}}, []string{"mask_len_range", "pair"}},
		{"inpainting", 64, 64, map[string]any{"image_size": 256}, []string{"image_size"}},
		{"inpainting", 64, 64, map[string]any{"mask_opt": "box"}, []string{"mask_opt"}},
		{"nonlinear_blur", 64, 64, map[string]any{"opt_yml_path": 3}, []string{"opt_yml_path"}},
	}
	for _, c := range cases {
		_, err := New(c.name, c.h, c.w, c.params, 1)
		if err == nil {
			t.Errorf("%s %v: no error", c.name, c.params)
			continue
		}
		for _, s := range c.want {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s %v: error %q does not mention %q", c.name, c.params, err, s)
			}
		}
	}

	// Constructors.
	mask := ones(16)
	mask[5] = 0.5
	if _, err := NewMaskInpainting(mask, 4, 4); err == nil || !strings.Contains(err.Error(), "mask[5]") {
		t.Errorf("a mask value 0.5: error %v, want one naming mask[5]", err)
	}
	if _, err := NewBlur(ones(9), 3, "box3"); err == nil || !strings.Contains(err.Error(), "kernel") {
		t.Errorf("a kernel summing to 9: error %v, want one naming the kernel", err)
	}
	if _, err := NewBlur(ones(4), 2, ""); err == nil || !strings.Contains(err.Error(), "kernel") {
		t.Errorf("an even kernel: error %v, want one naming the kernel", err)
	}

	// MeasurementShape names the operator and the dimension.
	box, _ := BoxInpaintingFor(32, 32, 1)
	gauss, _ := NewGaussianBlur(61, 3)
	sr, _ := NewBicubicSR(4)
	for _, c := range []struct {
		op   Operator
		dims []int
		want []string
	}{
		{box, []int{1, 3, 32, 48}, []string{"inpainting", "width", "dimension 3"}},
		{gauss, []int{1, 3, 20, 64}, []string{"gaussian_blur", "height", "dimension 2"}},
		{sr, []int{1, 3, 64, 30}, []string{"super_resolution", "width", "dimension 3"}},
		{sr, []int{3, 64, 64}, []string{"super_resolution", "rank 4"}},
	} {
		_, err := c.op.MeasurementShape(shapes.Make(dtypes.Float32, c.dims...))
		for _, s := range c.want {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("%s on %v: error %v does not mention %q", c.op.Name(), c.dims, err, s)
			}
		}
	}
	if _, err := sr.MeasurementShape(shapes.Make(dtypes.Int32, 1, 3, 64, 64)); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("int32 input: error %v, want one naming the dtype", err)
	}
}
