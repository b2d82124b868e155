package dag

import (
	"slices"
	"testing"
)

// A map param (a solver's params) is diffed key by key, so explain says which entry changed.
func TestDiffJSONNamesChangedKeys(t *testing.T) {
	got := diffJSON("params", `{"scale":4,"steps":100,"opt":{"a":1},"gone":true}`, `{"scale":4,"steps":50,"opt":{"a":2},"new":"x"}`)
	want := []string{"params.gone true → (unset)", `params.new (unset) → "x"`, "params.opt.a 1 → 2", "params.steps 100 → 50"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := diffJSON("steps", "100", "50"); !slices.Equal(got, []string{"steps 100 → 50"}) {
		t.Errorf("scalar: %q", got)
	}
}
