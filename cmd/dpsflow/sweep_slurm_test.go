package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpsflow/dpsflow/nodes/pipeline"
	"github.com/dpsflow/dpsflow/nodes/pipeline/sweep"
)

// The sweep test's table: 2 tasks × 2 solvers × 4 digits, one image per unit (16 units).
const slurmSweepSpec = `tasks: [sr4, inpaint-box]
solvers:
  - {name: dps, params: {steps: 40}}
  - {name: ddrm, params: {steps: 10}}
n: 4
batch: 1
`

// startSlurm starts a one-node Slurm cluster for the test (munge and the config from
// testdata/slurm/cluster.sh; slurmctld and slurmd in the foreground as children of the test,
// killed with it even if it times out) and stops it at the end; it returns the environment
// that points sbatch at it. The cluster needs root and Debian's slurm-wlm and munge, which
// ./test.sh installs: without them the test fails (DPSFLOW_SKIP_SLURM=1 skips it, saying so).
func startSlurm(t *testing.T) []string {
	t.Helper()
	if os.Getenv("DPSFLOW_SKIP_SLURM") == "1" {
		t.Skip("DPSFLOW_SKIP_SLURM=1: the Slurm sweep test is skipped")
	}
	if os.Getuid() != 0 {
		t.Fatal("the Slurm sweep test starts slurmctld and slurmd, which needs root (run ./test.sh as root, or set DPSFLOW_SKIP_SLURM=1 to skip it)")
	}
	for _, b := range []string{"sbatch", "slurmctld", "slurmd", "munged"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s is missing: run ./test.sh, which installs slurm-wlm and munge", b)
		}
	}
	script, err := filepath.Abs("../../testdata/slurm/cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "slurm")
	out, err := exec.Command(script, "config", state).CombinedOutput()
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", state).CombinedOutput(); err != nil {
			t.Errorf("stopping munge: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("configuring Slurm: %v\n%s", err, out)
	}
	env := append(os.Environ(), "SLURM_CONF="+filepath.Join(state, "slurm.conf"))
	for _, daemon := range []string{"slurmctld", "slurmd"} {
		d := exec.Command(daemon, "-D")
		d.Env = env
		logf, err := os.Create(filepath.Join(state, daemon+".out"))
		if err != nil {
			t.Fatal(err)
		}
		d.Stdout, d.Stderr = logf, logf
		d.SysProcAttr = daemonAttr()
		if err := d.Start(); err != nil {
			t.Fatalf("%s: %v", daemon, err)
		}
		t.Cleanup(func() {
			d.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { d.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				d.Process.Kill()
				<-done
			}
			logf.Close()
		})
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c := exec.Command("sinfo", "-h", "-o", "%t")
		c.Env = env
		if out, err := c.Output(); err == nil && (strings.HasPrefix(string(out), "idle") || strings.HasPrefix(string(out), "mix")) {
			return env
		}
		if time.Now().After(deadline) {
			logs, _ := exec.Command("sh", "-c", "tail -n 20 "+state+"/*.out "+state+"/log/*").CombinedOutput()
			t.Fatalf("the Slurm node did not come up in 30 s:\n%s", logs)
		}
	}
}

// A 4-shard sweep through a real Slurm job array gives the table `dpsflow table` computes
// on one machine; one array task killed with scancel in the middle and submitted again
// skips the units it had finished and completes the sweep.
func TestSweepOnSlurmMatchesTheOneMachineTable(t *testing.T) {
	env := startSlurm(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "dpsflow")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	spec := filepath.Join(tmp, "spec.yaml")
	must(t, os.WriteFile(spec, []byte(slurmSweepSpec), 0o644))
	dir := filepath.Join(tmp, "sweep")
	run := func(name string, args ...string) string {
		t.Helper()
		c := exec.Command(name, args...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run(bin, "sweep", "plan", spec, "--shards", "4", "--out", dir)
	run(bin, "sweep", "export", dir, "--slurm", "--dpsflow", bin, "--cpus-per-task", "1")

	start := time.Now()
	job := strings.TrimSpace(run("sbatch", "--parsable", filepath.Join(dir, sweep.SlurmScript)))
	job, _, _ = strings.Cut(job, ";")
	// Kill shard 1 once it has finished its first unit (it has 4).
	p, err := sweep.ReadPlan(dir)
	if err != nil {
		t.Fatal(err)
	}
	units := p.ShardUnits(1)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if _, err := sweep.ReadUnit(dir, units[0].ID); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shard 1 finished no unit in 5 minutes:\n%s", run("squeue"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	run("scancel", job+"_1")
	waitForJob(t, env, job, 10*time.Minute)
	sweepWall := time.Since(start)
	st := statusJSON(t, run(bin, "sweep", "status", dir, "--json"))
	if s := st.Shards[1]; s.State != sweep.StateFailed || s.Done == s.Units || s.Done == 0 {
		t.Fatalf("shard 1 after scancel: %+v", s)
	}
	if out, err := exec.Command(bin, "sweep", "merge", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "not finished (shard 1: ") {
		t.Fatalf("merge of an unfinished sweep: %v\n%s", err, out)
	}
	for i, s := range st.Shards {
		if i != 1 && s.State != sweep.StateDone {
			t.Errorf("shard %d: %+v", i, s)
		}
	}
	done := st.Shards[1].Done
	// Submit shard 1 again, as a user would.
	start2 := time.Now()
	run("sbatch", "--wait", "--array=1", filepath.Join(dir, sweep.SlurmScript))
	rerunWall := time.Since(start2)
	var ss sweep.ShardStatus
	readJSON(t, filepath.Join(dir, sweep.ShardsDir, "1.json"), &ss)
	if ss.State != sweep.StateDone || ss.Skipped != done || ss.Done != ss.Units {
		t.Fatalf("shard 1 rerun: %+v; want done with the %d units finished before skipped", ss, done)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, sweep.LogsDir, "*_1.out"))
	var log strings.Builder
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		log.Write(b)
	}
	if n := strings.Count(log.String(), "not recomputed"); n != done {
		t.Errorf("the rerun's log says %d units were not recomputed, want %d:\n%s", n, done, log.String())
	}
	start3 := time.Now()
	run(bin, "sweep", "merge", dir)
	mergeWall := time.Since(start3)

	start4 := time.Now()
	one := filepath.Join(tmp, "one")
	run(bin, "table", spec, "--out", one)
	oneWall := time.Since(start4)
	got, want := tableRows(t, dir), tableRows(t, one)
	if len(got) != 4 || !reflect.DeepEqual(got, want) {
		t.Fatalf("the sweep's table differs from one machine's:\n%v\nwant\n%v", got, want)
	}
	t.Logf("4-shard Slurm sweep %s (one shard cancelled midway; its rerun %s), merge %s; one-machine table %s",
		sweepWall.Round(time.Second), rerunWall.Round(time.Second), mergeWall.Round(time.Second), oneWall.Round(time.Second))
}

// waitForJob waits until Slurm no longer lists the job.
func waitForJob(t *testing.T, env []string, job string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c := exec.Command("squeue", "-h", "-j", job)
		c.Env = env
		out, err := c.Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("job %s still queued after %s", job, limit)
}

func statusJSON(t *testing.T, out string) *sweep.Report {
	t.Helper()
	var r sweep.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("sweep status --json: %v\n%s", err, out)
	}
	return &r
}

// tableRows are table.json's rows without timings, as comparable text.
func tableRows(t *testing.T, dir string) []string {
	t.Helper()
	var rows []pipeline.TableRow
	readJSON(t, filepath.Join(dir, pipeline.TableJSON), &rows)
	var out []string
	for _, r := range rows {
		r.SecondsPerImage = 0
		b, _ := json.Marshal(r)
		out = append(out, fmt.Sprint(string(b)))
	}
	return out
}
