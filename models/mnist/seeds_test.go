// Tests of seeds.sh, the script that compares MNIST priors over several seeds: its table
// is checked against statistics computed here from the runs' own metrics.json files.
package mnist_test

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var seedsTasks = []string{"sr4", "inpaint-box", "inpaint-random", "deblur-gauss", "deblur-motion", "phase-retrieval", "deblur-nonlinear"}

// runSeeds runs seeds.sh with seeds 0 and 1 on 1 digit and 2 steps per run (a check of the
// script, not a measurement) and extra environment env.
func runSeeds(t *testing.T, out string, env ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("seeds.sh needs jq (./test.sh installs it from Debian)")
	}
	cmd := exec.Command("bash", "seeds.sh", out)
	cmd.Env = append(os.Environ(), append([]string{"SEEDS=0 1", "TASK_FLAGS=--n 1 --steps 2"}, env...)...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// tableRows maps each task of seeds.md to its cells after the task name.
func tableRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells[1:]
	}
	return rows
}

func TestSeedsScriptTableMatchesItsRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 14 two-step DPS runs (about 15 s)")
	}
	out := filepath.Join(t.TempDir(), "prior")
	if log, err := runSeeds(t, out); err != nil {
		t.Fatalf("seeds.sh: %v\n%s", err, log)
	}
	rows := tableRows(t, filepath.Join(out, "seeds.md"))
	for _, task := range seedsTasks {
		var psnr []float64
		for _, seed := range []string{"0", "1"} {
			b, err := os.ReadFile(filepath.Join(out, "s"+seed, task, "metrics.json"))
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Seed    int `json:"seed"`
				Summary struct {
					PSNR struct{ Mean float64 } `json:"psnr"`
				} `json:"summary"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if strconv.Itoa(m.Seed) != seed {
				t.Errorf("%s, s%s: the run's seed is %d", task, seed, m.Seed)
			}
			psnr = append(psnr, m.Summary.PSNR.Mean)
		}
		mean := (psnr[0] + psnr[1]) / 2
		sd := math.Abs(psnr[0]-psnr[1]) / math.Sqrt2 // the sample standard deviation of two
		want := []string{round2(psnr[0]) + ", " + round2(psnr[1]), round2(mean) + " (" + round2(sd) + ")"}
		got := rows[task]
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("%s: seeds.md row %q, want %q", task, got, want)
		}
	}

	// Against itself: every run is kept (none is redone) and every difference is 0 ± 0.
	before, _ := os.Stat(filepath.Join(out, "s1", "sr4", "metrics.json"))
	if log, err := runSeeds(t, out, "AGAINST="+out); err != nil {
		t.Fatalf("seeds.sh with AGAINST: %v\n%s", err, log)
	}
	after, _ := os.Stat(filepath.Join(out, "s1", "sr4", "metrics.json"))
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("a second call redid a finished run")
	}
	rows = tableRows(t, filepath.Join(out, "seeds.md"))
	for _, task := range seedsTasks {
		if got := rows[task]; len(got) != 3 || got[2] != "0 ± 0" {
			t.Errorf("%s against itself: row %q, want a last cell 0 ± 0", task, got)
		}
	}

	// A comparison folder without the same seeds is refused before any run.
	other := filepath.Join(t.TempDir(), "other")
	log, err := runSeeds(t, other, "AGAINST="+filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(log, "no run of task sr4 with seed 0") {
		t.Errorf("a missing AGAINST folder: err %v, output %q; want a refusal naming the missing run", err, log)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("the refused call created %s", other)
	}
}

// round2 formats x as jq's (x * 100 | round) / 100 prints it: at most 2 decimals, no trailing zeros.
func round2(x float64) string {
	return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64)
}
