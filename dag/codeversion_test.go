package dag

import "testing"

// withScaleCode is a copy of reg (the test kinds) with kind "scale" at another
// CodeVersion, as if code it depends on had changed.
func withScaleCode(reg *Registry, code string) *Registry {
	return withScale(reg, func(k *Kind) { k.CodeVersion = code })
}

// A new CodeVersion (a dependency's code changed; Version and params did not) changes
// the key: Explain says "code changed" and Run reruns the node and what depends on it.
func TestCodeVersionChangesKey(t *testing.T) {
	cnt := &counts{}
	cache := openCache(t)
	g := chainGraph()
	r1 := &Runner{Registry: withScaleCode(testRegistry(t, cnt), "aaaa"), Cache: cache}
	res1 := mustRun(t, r1, g)
	wantDecision(t, explain(t, r1, g), "c", "reuse", "cached")

	r2 := &Runner{Registry: withScaleCode(testRegistry(t, cnt), "bbbb"), Cache: cache}
	ds := explain(t, r2, g)
	wantDecision(t, ds, "b", "reuse", "cached")
	wantDecision(t, ds, "c", "run", "code changed aaaa → bbbb")
	cnt.reset()
	res2 := mustRun(t, r2, g)
	if res1.Keys["c"] == res2.Keys["c"] || res1.Keys["b"] != res2.Keys["b"] {
		t.Errorf("keys of b, c: %s %s, then %s %s", res1.Keys["b"], res1.Keys["c"], res2.Keys["b"], res2.Keys["c"])
	}
	if cnt.get("c") != 1 || cnt.get("b") != 0 {
		t.Errorf("after a code change ran %v, want c rerun and b reused", cnt.ran())
	}
	wantDecision(t, explain(t, r2, g), "c", "reuse", "cached")

	// Dropping the code version (a kind that does not set it) is a change too.
	r3 := &Runner{Registry: testRegistry(t, cnt), Cache: cache}
	wantDecision(t, explain(t, r3, g), "c", "run", `code changed bbbb → ""`)
}

// Kinds without CodeVersion keep the keys they had before it existed (golden key,
// computed before the field was added).
func TestKeyWithoutCodeVersionUnchanged(t *testing.T) {
	k := &keyComponents{Kind: "scale", Version: "1", Params: map[string]any{"factor": 2.5, "label": "x"}, Seed: 7, Inputs: map[string]string{"x": "ab"}}
	got, err := k.key()
	if err != nil {
		t.Fatal(err)
	}
	if want := "f5cecbc0af9546aea4875db664ab9baf7720cef4406923119595083c3494189f"; got != want {
		t.Errorf("key %s, want %s (as before Kind.CodeVersion)", got, want)
	}
	k.Code = "aaaa"
	if again, _ := k.key(); again == got {
		t.Error("Code did not change the key")
	}
}
