package adm

import (
	"fmt"
	"os"
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

// ParseConfig reads a reference-format model config from data; path names it in errors.
func ParseConfig(data []byte, path string) (Config, error) {
	cfg := Config{NumHeads: 1, NumHeadChannels: -1, NumHeadsUpsample: -1, InChannels: 3}
	// channel_mult and attention_resolutions are strings in the reference, but YAML reads
	// "16" unquoted as an int: accept both through a raw pass.
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", path, err)
	}
	for _, key := range []string{"channel_mult", "attention_resolutions"} {
		if v, ok := raw[key]; ok {
			raw[key] = fmt.Sprint(v)
		}
	}
	fixed, err := yaml.Marshal(raw)
	if err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(fixed)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", path, err)
	}
	if _, err := cfg.resolve(); err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", path, err)
	}
	return cfg, nil
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
	r.outChannels = r.InChannels
	if c.LearnSigma {
		r.outChannels *= 2
	}
	return r, nil
}
