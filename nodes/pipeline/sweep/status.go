package sweep

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
)

// LostAfter is how long a running shard's heartbeat may be silent before Status calls it
// lost (three heartbeats).
const LostAfter = 90 * time.Second

// ShardReport is one shard in a Report.
type ShardReport struct {
	Shard   int        `json:"shard"`
	State   string     `json:"state"` // done, running, failed, lost, not started
	Units   int        `json:"units"`
	Done    int        `json:"done"`
	Host    string     `json:"host,omitempty"`
	Job     string     `json:"job,omitempty"`
	Updated *time.Time `json:"updated,omitempty"`
	Error   string     `json:"error,omitempty"`
}

// Report is what Status says of a sweep.
type Report struct {
	Dir     string        `json:"dir"`
	Units   int           `json:"units"`
	Done    int           `json:"done"`
	Left    int           `json:"left"`
	Running int           `json:"running"` // shards running now
	Shards  []ShardReport `json:"shards"`
	// MeanUnitSeconds is the mean wall time of the units finished so far (0: none yet);
	// ETASeconds the units left at that pace over the running shards (at least one), or
	// null when nothing has finished to measure it.
	MeanUnitSeconds float64  `json:"mean_unit_seconds"`
	ETASeconds      *float64 `json:"eta_seconds"`
	Merged          bool     `json:"merged"` // table.json is there
}

// Status reads a sweep's progress from its plan folder: shard status files and unit
// records. now is the time heartbeats are judged against.
func Status(dir string, now time.Time) (*Report, error) {
	p, err := ReadPlan(dir)
	if err != nil {
		return nil, err
	}
	r := &Report{Dir: dir, Units: len(p.Units)}
	var seconds float64
	done := make([]int, p.Shards)
	for _, u := range p.Units {
		rec, err := ReadUnit(dir, u.ID)
		if err != nil {
			continue
		}
		r.Done++
		done[u.Shard]++
		seconds += rec.Seconds
	}
	r.Left = r.Units - r.Done
	if r.Done > 0 {
		r.MeanUnitSeconds = seconds / float64(r.Done)
	}
	for i := range p.Shards {
		sr := ShardReport{Shard: i, Units: len(p.ShardUnits(i)), Done: done[i], State: StateNotStarted}
		var st ShardStatus
		err := readJSON(shardPath(dir, i), &st)
		switch {
		case err == nil:
			sr.State, sr.Host, sr.Job, sr.Error = st.State, st.Host, st.Job, st.Error
			updated := st.Updated
			sr.Updated = &updated
			if st.State == StateRunning && now.Sub(st.Updated) > LostAfter {
				sr.State = StateLost
				sr.Error = fmt.Sprintf("no heartbeat since %s (killed, or its machine is gone); run the shard again to resume", st.Updated.Format(time.RFC3339))
			}
		case !errors.Is(err, fs.ErrNotExist):
			sr.Error = err.Error()
		}
		if sr.Done == sr.Units && sr.State != StateRunning {
			sr.State, sr.Error = StateDone, ""
		}
		if sr.State == StateRunning {
			r.Running++
		}
		r.Shards = append(r.Shards, sr)
	}
	if r.Done > 0 {
		eta := r.MeanUnitSeconds * float64(r.Left) / float64(max(1, r.Running))
		r.ETASeconds = &eta
	}
	if _, err := os.Stat(filepath.Join(dir, pipeline.TableJSON)); err == nil {
		r.Merged = true
	}
	return r, nil
}

// Text is the report as a few lines and a table of shards.
func (r *Report) Text(now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "sweep %s: %d units, %d done, %d left; %d shards running", r.Dir, r.Units, r.Done, r.Left, r.Running)
	if r.ETASeconds != nil && r.Left > 0 {
		fmt.Fprintf(&b, "; ETA %s (%.1f s per unit)", (time.Duration(*r.ETASeconds) * time.Second).Round(time.Second), r.MeanUnitSeconds)
	}
	switch {
	case r.Merged:
		b.WriteString("; merged")
	case r.Left == 0:
		b.WriteString("; ready to merge")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "shard\tstate\tunits\tdone\thost\tjob\tupdated\terror")
	for _, s := range r.Shards {
		updated := "-"
		if s.Updated != nil {
			updated = now.Sub(*s.Updated).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Shard, s.State, s.Units, s.Done, dash(s.Host), dash(s.Job), updated, s.Error)
	}
	tw.Flush()
	return b.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
