package yamlerr

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type sample struct {
	Scale  float64         `yaml:"scale"`
	Steps  int             `yaml:"steps"`
	On     bool            `yaml:"on"`
	Shape  []int           `yaml:"shape"`
	Nested struct{ X int } `yaml:"nested"`
}

func TestPlainHasNoGoTypeNames(t *testing.T) {
	cases := map[string]string{
		"scale: abc\n":     "line 1: `abc` is not a number",
		"steps: x\n":       "line 1: `x` is not a whole number",
		"on: maybe\n":      "line 1: `maybe` is not true or false",
		"shape: 3\n":       "line 1: `3` is not a list",
		"scale: [1, 2]\n":  "line 1: a list is not a number",
		"nested: 7\n":      "line 1: `7` is not a map (key: value lines)",
		"- a\n":            "line 1: a list is not a map (key: value lines)",
		"bogus: 1\n":       `line 1: unknown key "bogus"`,
		"nested: {y: 1}\n": `line 1: unknown key "y"`,
	}
	for text, want := range cases {
		var s sample
		dec := yaml.NewDecoder(strings.NewReader(text))
		dec.KnownFields(true)
		err := Plain(dec.Decode(&s))
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", text, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "float64") || strings.Contains(err.Error(), "yamlerr.") || strings.Contains(err.Error(), "!!")) {
			t.Errorf("%q: %v names a Go type or a YAML tag", text, err)
		}
	}
	if err := Plain(yaml.NewDecoder(strings.NewReader("")).Decode(&sample{})); err == nil || err.Error() != "the file is empty" {
		t.Errorf("empty file: %v", err)
	}
	if err := Plain(nil); err != nil {
		t.Errorf("Plain(nil) = %v", err)
	}
}
