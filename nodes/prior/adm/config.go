package adm

import (
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Config holds the keys of the reference DPS model_config.yaml (guided-diffusion's
// create_model arguments). Unknown keys in a YAML file are errors.
type Config struct {
	ImageSize            int     `yaml:"image_size"`
	NumChannels          int     `yaml:"num_channels"`
	NumResBlocks         int     `yaml:"num_res_blocks"`
	ChannelMult          string  `yaml:"channel_mult"` // "" = guided-diffusion's default for the image size
	LearnSigma           bool    `yaml:"learn_sigma"`
	ClassCond            bool    `yaml:"class_cond"`
	UseCheckpoint        bool    `yaml:"use_checkpoint"` // gradient checkpointing in PyTorch; no effect here
	AttentionResolutions string  `yaml:"attention_resolutions"`
	NumHeads             int     `yaml:"num_heads"`
	NumHeadChannels      int     `yaml:"num_head_channels"`
	NumHeadsUpsample     int     `yaml:"num_heads_upsample"`
	UseScaleShiftNorm    bool    `yaml:"use_scale_shift_norm"`
	Dropout              float64 `yaml:"dropout"`
	ResblockUpdown       bool    `yaml:"resblock_updown"`
	UseFP16              bool    `yaml:"use_fp16"` // weights are loaded as float32; see the package doc
	UseNewAttentionOrder bool    `yaml:"use_new_attention_order"`
	ModelPath            string  `yaml:"model_path"`
	// InChannels is 3 for RGB (the reference) and 1 for MNIST; not a reference key.
	InChannels int `yaml:"in_channels"`
}

// FFHQConfig is the reference FFHQ 256 model (ffhq_10m.pt): 93.6 M parameters.
func FFHQConfig() Config {
	return Config{ImageSize: 256, NumChannels: 128, NumResBlocks: 1, LearnSigma: true,
		AttentionResolutions: "16", NumHeads: 4, NumHeadChannels: 64, NumHeadsUpsample: -1,
		UseScaleShiftNorm: true, ResblockUpdown: true, InChannels: 3, ModelPath: "models/ffhq_10m.pt"}
}

// SmallMNISTConfig is the prior dpsflow trains on MNIST padded to 32×32: the same
// architecture at 32 px, 32 channels, multipliers (1, 2, 2), attention at 8×8.
func SmallMNISTConfig() Config {
	return Config{ImageSize: 32, NumChannels: 32, NumResBlocks: 1, ChannelMult: "1,2,2",
		AttentionResolutions: "8", NumHeads: 2, NumHeadChannels: -1, NumHeadsUpsample: -1,
		UseScaleShiftNorm: true, ResblockUpdown: true, InChannels: 1}
}

// LoadConfig reads a reference-format model_config.yaml. Errors name the file and key.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig reads a reference-format model config from data; path names it in errors,
// with the line of the key in data.
func ParseConfig(data []byte, path string) (Config, error) {
	cfg := Config{NumHeads: 1, NumHeadChannels: -1, NumHeadsUpsample: -1, InChannels: 3}
	fail := func(line int, format string, args ...any) (Config, error) {
		where := "model config " + path
		if line > 0 {
			where += fmt.Sprintf(" line %d", line)
		}
		return Config{}, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// yaml.v3's syntax errors already say "yaml: line N: ...".
		return fail(0, "%v", err)
	}
	if len(doc.Content) == 0 {
		return fail(0, "the file is empty; it needs keys such as image_size and num_channels")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, "not a list of key: value lines")
	}
	// Each key is decoded on its own, from the file's own nodes, so that errors carry the
	// file's line numbers and say what the value should be in words.
	fields := configFieldsOf(&cfg)
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		for v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		f, ok := fields[k.Value]
		if !ok {
			return fail(k.Line, "unknown key %q (known: %s)", k.Value, strings.Join(configKeys(), ", "))
		}
		if prev, dup := seen[k.Value]; dup {
			return fail(k.Line, "key %q is given twice (first on line %d)", k.Value, prev)
		}
		seen[k.Value] = k.Line
		// channel_mult and attention_resolutions are strings in the reference, but YAML reads
		// "16" unquoted as an int: any scalar is taken as its text.
		if f.Kind() == reflect.String && v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
			f.SetString(v.Value)
			continue
		}
		dst := reflect.New(f.Type())
		if v.Kind != yaml.ScalarNode {
			return fail(v.Line, "%s: a list or map is not %s", k.Value, typeWords(f.Kind()))
		}
		if v.Decode(dst.Interface()) != nil {
			return fail(v.Line, "%s: %q is not %s", k.Value, v.Value, typeWords(f.Kind()))
		}
		f.Set(dst.Elem())
	}
	if _, err := cfg.resolve(); err != nil {
		return fail(0, "%v", err)
	}
	return cfg, nil
}

// typeWords says in words what a value of kind k looks like.
func typeWords(k reflect.Kind) string {
	switch k {
	case reflect.Int:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return "text"
}

// configFieldsOf maps each yaml key of Config to its field in cfg.
func configFieldsOf(cfg *Config) map[string]reflect.Value {
	out := map[string]reflect.Value{}
	rv := reflect.ValueOf(cfg).Elem()
	for i := range rv.NumField() {
		if tag := rv.Type().Field(i).Tag.Get("yaml"); tag != "" {
			out[tag] = rv.Field(i)
		}
	}
	return out
}

// configKeys are the keys a model config may have, in declaration order.
func configKeys() []string {
	var keys []string
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("yaml"); tag != "" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// resolved is a Config with the derived values worked out.
type resolved struct {
	Config
	mult        []int
	attentionDS map[int]bool // downsampling factors with attention
	outChannels int
}

func (c Config) resolve() (resolved, error) {
	r := resolved{Config: c, attentionDS: map[int]bool{}}
	if c.InChannels == 0 {
		r.InChannels = 3
	}
	if c.ImageSize <= 0 {
		return r, fmt.Errorf("image_size must be positive, got %d", c.ImageSize)
	}
	if c.NumChannels <= 0 || c.NumResBlocks <= 0 {
		return r, fmt.Errorf("num_channels and num_res_blocks must be positive, got %d and %d", c.NumChannels, c.NumResBlocks)
	}
	if c.ClassCond {
		return r, fmt.Errorf("class_cond: class-conditional models are not supported (DPS uses unconditional priors)")
	}
	if c.NumHeadChannels <= 0 && c.NumHeads <= 0 {
		return r, fmt.Errorf("num_heads must be positive when num_head_channels is -1")
	}
	if c.ChannelMult == "" {
		defaults := map[int][]int{256: {1, 1, 2, 2, 4, 4}, 128: {1, 1, 2, 3, 4}, 64: {1, 2, 3, 4}}
		m, ok := defaults[c.ImageSize]
		if !ok {
			return r, fmt.Errorf("channel_mult: no default for image_size %d; give one, e.g. \"1,2,2\"", c.ImageSize)
		}
		r.mult = m
	} else {
		for _, p := range strings.Split(c.ChannelMult, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || v <= 0 {
				return r, fmt.Errorf("channel_mult: %q is not a list of positive integers", c.ChannelMult)
			}
			r.mult = append(r.mult, v)
		}
	}
	// Bounded first: 1<<63 and beyond would overflow the divisibility check below.
	if len(r.mult) > 16 {
		return r, fmt.Errorf("channel_mult: %d levels; at most 16 are supported", len(r.mult))
	}
	if c.ImageSize%(1<<(len(r.mult)-1)) != 0 {
		return r, fmt.Errorf("image_size %d is not divisible by the %d down-samplings of channel_mult", c.ImageSize, len(r.mult)-1)
	}
	if strings.TrimSpace(c.AttentionResolutions) != "" {
		for _, p := range strings.Split(c.AttentionResolutions, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || v <= 0 || c.ImageSize%v != 0 {
				return r, fmt.Errorf("attention_resolutions: %q must list feature-map sizes dividing image_size %d", c.AttentionResolutions, c.ImageSize)
			}
			r.attentionDS[c.ImageSize/v] = true
		}
	}
	if c.NumHeadsUpsample == -1 || c.NumHeadsUpsample == 0 {
		r.NumHeadsUpsample = c.NumHeads
	}
	if err := r.checkChannels(); err != nil {
		return r, err
	}
	r.outChannels = r.InChannels
	if c.LearnSigma {
		r.outChannels *= 2
	}
	return r, nil
}

// checkChannels checks, before any tensor is made, that every level's channels split into
// GroupNorm's 32 groups and, where there is attention (the levels of
// attention_resolutions and the middle block), into its heads.
func (r resolved) checkChannels() error {
	for level, mult := range r.mult {
		ch := mult * r.NumChannels
		where := fmt.Sprintf("num_channels %d × channel_mult %d = %d channels", r.NumChannels, mult, ch)
		if ch%32 != 0 {
			return fmt.Errorf("%s, not a multiple of GroupNorm's 32 groups", where)
		}
		ds := 1 << level
		attn := r.attentionDS[ds] || level == len(r.mult)-1
		if !attn {
			continue
		}
		size := r.ImageSize / ds
		if r.NumHeadChannels > 0 {
			if ch%r.NumHeadChannels != 0 {
				return fmt.Errorf("num_head_channels %d does not divide the %s of the attention at %d×%d", r.NumHeadChannels, where, size, size)
			}
			continue
		}
		type heads struct {
			key string
			n   int
		}
		check := []heads{{"num_heads", r.NumHeads}}
		if r.attentionDS[ds] { // the middle block has no upsampling attention
			check = append(check, heads{"num_heads_upsample", r.NumHeadsUpsample})
		}
		for _, h := range check {
			if h.n <= 0 {
				return fmt.Errorf("%s must be positive when num_head_channels is -1, got %d", h.key, h.n)
			}
			if ch%h.n != 0 {
				return fmt.Errorf("%s %d does not divide the %s of the attention at %d×%d", h.key, h.n, where, size, size)
			}
		}
	}
	return nil
}
