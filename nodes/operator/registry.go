package operator

// The registry builds operators by the task names and parameter keys of the reference's
// YAML configs (measurement.operator plus measurement.mask_opt), so those configs can be
// used as they are. Parameters left out take the reference values.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"

	num "github.com/dpsflow/dpsflow/internal/number"
)

// Tasks are the names New knows, with their parameters and defaults:
//
//	super_resolution  scale_factor (4), in_shape (optional, checked against h, w)
//	avgpool_sr        scale_factor (4)
//	inpainting        mask_type ("box" or "random"; default "box"); box: mask_len_range
//	                  ([lo, hi): side drawn as np.random.randint; default BoxInpaintingFor's
//	                  scaled 128 at 256), margin (16 at 256, scaled); random: mask_prob_range
//	                  ([lo, hi], reference [0.3, 0.7]; the default) or mask_prob (a fixed drop
//	                  fraction, the paper's 0.92); image_size (optional, must be h = w).
//	                  These may sit at the top level or inside a "mask_opt" map.
//	gaussian_blur     kernel_size (61), intensity (σ, 3.0)
//	motion_blur       kernel_size (61), intensity (0.5)
//	phase_retrieval   oversample (2.0)
//	nonlinear_blur    opt_yml_path (accepted and ignored: it names the reference's
//	                  pretrained bkse weights, which this network does not use)
//
// Every task also accepts "name" equal to the task name.
var Tasks = []string{"super_resolution", "avgpool_sr", "inpainting", "gaussian_blur", "motion_blur", "phase_retrieval", "nonlinear_blur"}

// New builds the operator of a task for h×w images; seed fixes its random parts (box
// position, random mask, motion kernel, latent code). Unknown tasks or parameters,
// parameters of the wrong type or out of range and sizes the operator cannot handle are
// errors that name the parameter.
func New(name string, h, w int, params map[string]any, seed uint64) (Operator, error) {
	if !slices.Contains(Tasks, name) {
		return nil, fmt.Errorf("operator: unknown task %q (known: %s)", name, strings.Join(Tasks, ", "))
	}
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("%s: image size %d×%d must be positive", name, h, w)
	}
	a := &args{task: name, m: map[string]any{}, used: map[string]bool{}}
	for k, v := range params {
		a.m[k] = v
	}
	if opt, ok := a.m["mask_opt"]; ok && name == "inpainting" {
		nested, ok := opt.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("inpainting: parameter mask_opt must be a map, got %v", opt)
		}
		delete(a.m, "mask_opt")
		for k, v := range nested {
			if _, dup := a.m[k]; dup {
				return nil, fmt.Errorf("inpainting: parameter %s is given both in mask_opt and outside it", k)
			}
			a.m[k] = v
		}
	}
	if v, ok := a.get("name"); ok && v != name {
		return nil, fmt.Errorf("%s: parameter name is %v, not the task name", name, v)
	}
	op, err := build(a, h, w, seed)
	if err != nil {
		return nil, err
	}
	return op, a.unknown()
}

func build(a *args, h, w int, seed uint64) (Operator, error) {
	task := a.task
	switch task {
	case "super_resolution", "avgpool_sr":
		f, err := a.int("scale_factor", 4)
		if err != nil {
			return nil, err
		}
		if f < 1 || h%f != 0 || w%f != 0 {
			return nil, fmt.Errorf("%s: scale_factor %d must be a positive integer that divides the image size %d×%d", task, f, h, w)
		}
		if task == "avgpool_sr" {
			return NewAvgPoolSR(f)
		}
		if err := a.inShape(h, w); err != nil {
			return nil, err
		}
		return NewBicubicSR(f)
	case "gaussian_blur", "motion_blur":
		k, err := a.int("kernel_size", 61)
		if err != nil {
			return nil, err
		}
		intensity, err := a.float("intensity", map[string]float64{"gaussian_blur": 3.0, "motion_blur": 0.5}[task])
		if err != nil {
			return nil, err
		}
		if k >= 1 && (h <= k/2 || w <= k/2) {
			return nil, fmt.Errorf("%s: kernel_size %d needs a reflect padding of %d, more than the image size %d×%d allows", task, k, k/2, h, w)
		}
		if task == "gaussian_blur" {
			return NewGaussianBlur(k, intensity)
		}
		return NewMotionBlur(k, intensity, seed)
	case "phase_retrieval":
		o, err := a.float("oversample", 2.0)
		if err != nil {
			return nil, err
		}
		if !(o >= 0) || math.IsInf(o, 0) {
			return nil, fmt.Errorf("phase_retrieval: oversample %v must be a finite number ≥ 0", o)
		}
		return NewPhaseRetrieval(o)
	case "nonlinear_blur":
		if _, err := a.str("opt_yml_path", ""); err != nil {
			return nil, err
		}
		if h < 3 || w < 3 {
			return nil, fmt.Errorf("nonlinear_blur: image size %d×%d must be at least 3×3", h, w)
		}
		return NewNonlinearBlur(seed), nil
	}
	return a.inpainting(h, w, seed)
}

func (a *args) inpainting(h, w int, seed uint64) (Operator, error) {
	kind, err := a.str("mask_type", "box")
	if err != nil {
		return nil, err
	}
	size, err := a.int("image_size", 0)
	if err != nil {
		return nil, err
	}
	if _, given := a.m["image_size"]; given && (size != h || size != w) {
		return nil, fmt.Errorf("inpainting: parameter image_size %d does not match the image size %d×%d", size, h, w)
	}
	lenRange, hasLen, err := a.pair("mask_len_range")
	if err != nil {
		return nil, err
	}
	margin, hasMargin, err := a.margin()
	if err != nil {
		return nil, err
	}
	probRange, hasRange, err := a.pair("mask_prob_range")
	if err != nil {
		return nil, err
	}
	_, hasProb := a.m["mask_prob"]
	prob, err := a.float("mask_prob", 0)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "box":
		for key, given := range map[string]bool{"mask_prob_range": hasRange, "mask_prob": hasProb} {
			if given {
				return nil, fmt.Errorf("inpainting: parameter %s applies to mask_type random, not box", key)
			}
		}
		if !hasLen && !hasMargin {
			return BoxInpaintingFor(h, w, seed)
		}
		lo, hi := int(lenRange[0]), int(lenRange[1])
		if !hasLen { // the scaled reference box
			lo = int(math.Round(float64(min(h, w)) / 2))
			hi = lo + 1
		} else if float64(lo) != lenRange[0] || float64(hi) != lenRange[1] || lo < 1 || hi <= lo {
			return nil, fmt.Errorf("inpainting: parameter mask_len_range %v must be two integers 1 ≤ lo < hi", lenRange)
		}
		if !hasMargin {
			margin = int(math.Round(float64(min(h, w)) / 16))
		}
		// Box sides drawn as the reference does, np.random.randint(lo, hi) each.
		rng := rand.New(rand.NewPCG(seed, 0x6c656e)) // stream "len"
		bh, bw := lo+rng.IntN(hi-lo), lo+rng.IntN(hi-lo)
		op, err := NewBoxInpainting(h, w, bh, bw, margin, seed)
		if err != nil {
			return nil, fmt.Errorf("%w (parameters mask_len_range, margin)", err)
		}
		return op, nil
	case "random":
		if hasLen || hasMargin {
			return nil, fmt.Errorf("inpainting: parameters mask_len_range and margin apply to mask_type box, not random")
		}
		switch {
		case hasProb && hasRange:
			return nil, fmt.Errorf("inpainting: give mask_prob (fixed drop fraction) or mask_prob_range, not both")
		case hasProb:
			op, err := NewRandomInpaintingFixed(h, w, prob, seed)
			if err != nil {
				return nil, fmt.Errorf("%w (parameter mask_prob)", err)
			}
			return op, nil
		case !hasRange:
			probRange = [2]float64{ReferenceDropLo, ReferenceDropHi}
		}
		op, err := NewRandomInpaintingRange(h, w, probRange[0], probRange[1], seed)
		if err != nil {
			return nil, fmt.Errorf("%w (parameter mask_prob_range)", err)
		}
		return op, nil
	}
	return nil, fmt.Errorf("inpainting: parameter mask_type %q must be \"box\" or \"random\"", kind)
}

// args reads a parameter map and remembers which keys were read.
type args struct {
	task string
	m    map[string]any
	used map[string]bool
}

func (a *args) get(key string) (any, bool) {
	a.used[key] = true
	v, ok := a.m[key]
	return v, ok
}

func (a *args) unknown() error {
	var extra, known []string
	for k := range a.m {
		if !a.used[k] {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	for k := range a.used {
		known = append(known, k)
	}
	slices.Sort(extra)
	slices.Sort(known)
	return fmt.Errorf("%s: unknown parameter %s (known: %s)", a.task, strings.Join(extra, ", "), strings.Join(known, ", "))
}

func (a *args) wrong(key string, v any, want string) error {
	return fmt.Errorf("%s: parameter %s must be %s, got %v", a.task, key, want, v)
}

func (a *args) float(key string, def float64) (float64, error) {
	v, ok := a.get(key)
	if !ok {
		return def, nil
	}
	f, ok := number(v)
	if !ok {
		return 0, a.wrong(key, v, "a number")
	}
	return f, nil
}

func (a *args) int(key string, def int) (int, error) {
	v, ok := a.get(key)
	if !ok {
		return def, nil
	}
	f, ok := number(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return 0, a.wrong(key, v, "an integer")
	}
	return int(f), nil
}

func (a *args) str(key, def string) (string, error) {
	v, ok := a.get(key)
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", a.wrong(key, v, "a string")
	}
	return s, nil
}

// numbers reads a list (slice or array) of numbers.
func (a *args) numbers(key string) ([]float64, bool, error) {
	v, ok := a.get(key)
	if !ok {
		return nil, false, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, true, a.wrong(key, v, "a list of numbers")
	}
	out := make([]float64, rv.Len())
	for i := range out {
		f, ok := number(rv.Index(i).Interface())
		if !ok {
			return nil, true, a.wrong(key, v, "a list of numbers")
		}
		out[i] = f
	}
	return out, true, nil
}

func (a *args) pair(key string) ([2]float64, bool, error) {
	v, ok, err := a.numbers(key)
	if err != nil || !ok {
		return [2]float64{}, ok, err
	}
	if len(v) != 2 {
		return [2]float64{}, true, a.wrong(key, a.m[key], "a pair [lo, hi]")
	}
	return [2]float64{v[0], v[1]}, true, nil
}

// margin reads "margin": one integer, or a pair of equal integers as the reference's
// (16, 16).
func (a *args) margin() (int, bool, error) {
	v, ok := a.m["margin"]
	if !ok {
		a.used["margin"] = true
		return 0, false, nil
	}
	if _, scalar := number(v); scalar {
		m, err := a.int("margin", 0)
		return m, true, err
	}
	p, _, err := a.pair("margin")
	if err == nil && (p[0] != p[1] || p[0] != math.Trunc(p[0])) {
		err = a.wrong("margin", v, "an integer or a pair of equal integers")
	}
	return int(p[0]), true, err
}

// inShape checks the reference's in_shape (B, C, H, W) against the image size.
func (a *args) inShape(h, w int) error {
	s, ok, err := a.numbers("in_shape")
	if err != nil || !ok {
		return err
	}
	if len(s) != 4 || s[2] != float64(h) || s[3] != float64(w) {
		return fmt.Errorf("%s: parameter in_shape %v must be [B, C, %d, %d]", a.task, s, h, w)
	}
	return nil
}

// number accepts every Go integer and float type (what YAML and JSON decoders give), not NaN.
func number(v any) (float64, bool) {
	f, ok := num.Float(v)
	return f, ok && !math.IsNaN(f)
}
