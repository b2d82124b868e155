package adm

import (
	"os"
	"strings"
	"testing"

	"github.com/dpsflow/dpsflow/internal/fuzzguard"
)

// FuzzParseConfig: any bytes read as a model_config.yaml give a config that resolves, or
// an error naming the file; never a panic.
func FuzzParseConfig(f *testing.F) {
	b, err := os.ReadFile("../../../models/mnist/model_config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("image_size: 256\nnum_channels: 128\nnum_res_blocks: 1\nchannel_mult: \"\"\nlearn_sigma: True\nclass_cond: False\nuse_checkpoint: False\nattention_resolutions: 16\nnum_heads: 4\nnum_head_channels: 64\nnum_heads_upsample: -1\nuse_scale_shift_norm: True\ndropout: 0.0\nresblock_updown: True\nuse_fp16: False\nuse_new_attention_order: False\nmodel_path: models/ffhq_10m.pt\n"))
	f.Add([]byte("image_size: 64\nnum_channels: 8\nnum_res_blocks: 1\nchannel_mult: " + strings.Repeat("1,", 70) + "1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		defer fuzzguard.Hang()()
		c, err := ParseConfig(b, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		r, _ := c.resolve() // ParseConfig resolved it already
		if len(r.mult) == 0 || r.outChannels <= 0 {
			t.Fatalf("resolved to %d levels, %d output channels", len(r.mult), r.outChannels)
		}
	})
}
