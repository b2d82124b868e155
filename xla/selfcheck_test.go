package xla

import "testing"

func TestSelfCheckPassesOnEmbedded(t *testing.T) {
	b := mustBackend(t)
	for _, r := range SelfCheck(b) {
		t.Logf("%-22s rel_error=%.2e ok=%v %s", r.Name, r.RelError, r.OK, r.Error)
		if !r.OK {
			t.Errorf("%s failed: rel_error=%g %s", r.Name, r.RelError, r.Error)
		}
	}
}
