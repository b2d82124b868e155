package adm

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Model config errors give the key's line in the file itself (comments and all), say in
// words what the value should be, and find channels that do not split into heads or
// GroupNorm groups before any tensor is made.
func TestParseConfigLinesWordsAndChannels(t *testing.T) {
	shipped, err := os.ReadFile("../../../models/mnist/model_config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(text, key string) int {
		for i, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, key+":") {
				return i + 1
			}
		}
		t.Fatalf("no %s", key)
		return 0
	}
	base := string(shipped)
	for _, c := range []struct {
		name, old, new string
		want           []string
		not            []string
	}{
		{"word for an int", "num_res_blocks: 1", "num_res_blocks: one", []string{"line " + strconv.Itoa(lineOf(base, "num_res_blocks")), `num_res_blocks: "one" is not a whole number`}, []string{"int", "!!"}},
		{"list for a float", "dropout: 0.0", "dropout: [1, 2]", []string{"line " + strconv.Itoa(lineOf(base, "dropout")), "dropout: a list or map is not a number"}, []string{"float64"}},
		{"word for a bool", "learn_sigma: False", "learn_sigma: maybe", []string{"learn_sigma: \"maybe\" is not true or false"}, []string{"bool"}},
		{"unknown key", "dropout: 0.0", "dropout: 0.0\nwobble: 1", []string{"line " + strconv.Itoa(lineOf(base, "dropout")+1), `unknown key "wobble"`}, nil},
		{"key twice", "dropout: 0.0", "dropout: 0.0\ndropout: 0.1", []string{"line " + strconv.Itoa(lineOf(base, "dropout")+1)}, nil},
		{"heads", "num_heads: 2", "num_heads: 3", []string{"num_heads 3 does not divide", "64 channels", "8×8"}, nil},
		{"upsampling heads", "num_heads_upsample: -1", "num_heads_upsample: 5", []string{"num_heads_upsample 5 does not divide"}, nil},
		{"head channels", "num_head_channels: -1", "num_head_channels: 48", []string{"num_head_channels 48 does not divide"}, nil},
		{"groups", "num_channels: 32", "num_channels: 40", []string{"num_channels 40", "32 groups"}, nil},
		{"not a map", base, "- a\n- b\n", []string{"not a list of key: value lines"}, nil},
		{"empty", base, "", []string{"the file is empty"}, nil},
	} {
		text := strings.Replace(base, c.old, c.new, 1)
		if text == base {
			t.Fatalf("%s: %q not found", c.name, c.old)
		}
		_, err := ParseConfig([]byte(text), "m.yaml")
		if err == nil || !strings.Contains(err.Error(), "model config m.yaml") {
			t.Errorf("%s: %v, want an error naming m.yaml", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", c.name, err, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q names %q", c.name, err, w)
			}
		}
	}
	// Quoted or not, channel_mult and attention_resolutions read as text.
	cfg, err := ParseConfig([]byte(strings.NewReplacer(`channel_mult: "1,2,2"`, "channel_mult: 1,2,2", `attention_resolutions: "8"`, "attention_resolutions: 8").Replace(base)), "m.yaml")
	if err != nil || cfg.ChannelMult != "1,2,2" || cfg.AttentionResolutions != "8" {
		t.Errorf("unquoted lists: %+v, %v", cfg, err)
	}
}
