package sweep

import "testing"

// A plan file ends in a plan or an error, never a panic.
func FuzzReadPlan(f *testing.F) {
	f.Add([]byte(`{"format":1,"version":"v","kinds":{"sample":"3 abc"},"spec":"/s.yaml","spec_sha256":"00","graph_sha256":"00",` +
		`"shards":2,"block":2,"batch":2,"n":4,"units":[{"id":"sr4~dps~00000-00002","task":"sr4","solver":"dps","node":"sample/sr4/dps","lo":0,"hi":2,"shard":1}],` +
		`"created":"2026-12-02T00:00:00Z"}`))
	f.Add([]byte(`{"format":1,"shards":1,"block":1,"units":[{"id":"a~b~00000-00001","task":"a","solver":"b","lo":0,"hi":1,"shard":5}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePlan(data, PlanFile)
		if err != nil {
			return
		}
		// What it accepts is consistent: every unit is in a shard of the plan.
		for _, u := range p.Units {
			if u.Shard < 0 || u.Shard >= p.Shards || u.Hi <= u.Lo {
				t.Fatalf("accepted unit %+v of a %d-shard plan", u, p.Shards)
			}
		}
	})
}
