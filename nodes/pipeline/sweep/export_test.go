package sweep

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

func testPlan(t *testing.T, shards int) (string, *Plan) {
	t.Helper()
	return plan(t, writeSpec(t, "tasks: [sr4]\nsolvers: [pinv]\nn: 8\nbatch: 2\n"), shards)
}

// The Kubernetes manifests decode strictly (no unknown field) into batch/v1 Jobs with the
// fields a sweep needs.
func TestK8sManifestsAreIndexedJobs(t *testing.T) {
	dir, p := testPlan(t, 4)
	mount := filepath.Dir(dir)
	paths, err := ExportK8s(dir, p, K8sOptions{Image: "ghcr.io/lab/dpsflow:1.0", PVC: "sweeps", Mount: mount, GPUs: 1, CPUs: 4, Parallelism: 3})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(path string) *batchv1.Job {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var job batchv1.Job
		if err := yaml.UnmarshalStrict(b, &job); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, b)
		}
		if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Name == "" {
			t.Fatalf("%s: %+v", path, job.TypeMeta)
		}
		return &job
	}
	job := decode(paths[0])
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion || s.Completions == nil || *s.Completions != 4 ||
		s.Parallelism == nil || *s.Parallelism != 3 || s.BackoffLimitPerIndex == nil || *s.BackoffLimitPerIndex != 2 {
		t.Fatalf("job spec: %+v", s)
	}
	pod := s.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || len(pod.Containers) != 1 {
		t.Fatalf("pod spec: %+v", pod)
	}
	c := pod.Containers[0]
	if c.Image != "ghcr.io/lab/dpsflow:1.0" || !reflect.DeepEqual(c.Command, []string{"dpsflow", "sweep", "run", dir}) {
		t.Errorf("container: %q %q", c.Image, c.Command)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "JOB_COMPLETION_INDEX" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.FieldRef == nil ||
		c.Env[0].ValueFrom.FieldRef.FieldPath != "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
		t.Errorf("index env var: %+v", c.Env)
	}
	if g := c.Resources.Limits["nvidia.com/gpu"]; g.Cmp(resource.MustParse("1")) != 0 {
		t.Errorf("gpu limit %v", c.Resources.Limits)
	}
	if cpu := c.Resources.Requests[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("4")) != 0 {
		t.Errorf("cpu request %v", c.Resources.Requests)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != "sweeps" ||
		len(c.VolumeMounts) != 1 || c.VolumeMounts[0].Name != pod.Volumes[0].Name || c.VolumeMounts[0].MountPath != mount {
		t.Errorf("volumes %+v mounts %+v", pod.Volumes, c.VolumeMounts)
	}
	merge := decode(paths[1])
	mc := merge.Spec.Template.Spec.Containers[0]
	if merge.Spec.CompletionMode != nil || *merge.Spec.Completions != 1 || !reflect.DeepEqual(mc.Command, []string{"dpsflow", "sweep", "merge", dir}) ||
		mc.VolumeMounts[0].MountPath != mount || merge.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "sweeps" {
		t.Errorf("merge job: %+v", merge.Spec)
	}
	// Without GPUs or CPUs there are no resources; parallelism defaults to every shard.
	paths, err = ExportK8s(dir, p, K8sOptions{Image: "dpsflow", PVC: "sweeps"})
	if err != nil {
		t.Fatal(err)
	}
	job = decode(paths[0])
	if c := job.Spec.Template.Spec.Containers[0]; len(c.Resources.Limits)+len(c.Resources.Requests) != 0 || *job.Spec.Parallelism != 4 || c.VolumeMounts[0].MountPath != dir {
		t.Errorf("plain job: %+v", job.Spec)
	}
	for _, bad := range []struct {
		o    K8sOptions
		want string
	}{
		{K8sOptions{PVC: "x"}, "--image"},
		{K8sOptions{Image: "i", PVC: "Bad_Name"}, "not a Kubernetes object name"},
		{K8sOptions{Image: "i", PVC: "x", Mount: "/elsewhere"}, "must be an absolute folder that holds"},
		{K8sOptions{Image: "i", PVC: "x", GPUs: -1}, "must not be negative"},
	} {
		if _, err := ExportK8s(dir, p, bad.o); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.o, err, bad.want)
		}
	}
}

// The Slurm job array: one task per shard, logs per task, requeue, the resources asked;
// the submit script chains the merge after every shard succeeded. Both parse as shell.
func TestSlurmScripts(t *testing.T) {
	dir, p := testPlan(t, 4)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := ExportSlurm(dir, p, SlurmOptions{Dpsflow: bin, Partition: "gpu", GPUsPerTask: 1, CPUsPerTask: 8, Time: "2:00:00", ArrayLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	script, _ := os.ReadFile(paths[0])
	for _, want := range []string{"#SBATCH --array=0-3%2\n", "#SBATCH --requeue\n", "#SBATCH --output=" + dir + "/logs/%A_%a.out\n",
		"#SBATCH --partition=gpu\n", "#SBATCH --gpus-per-task=1\n", "#SBATCH --cpus-per-task=8\n", "#SBATCH --time=2:00:00\n",
		"\nexec " + bin + " sweep run " + dir + "\n"} {
		if !strings.Contains(string(script), want) {
			t.Errorf("sweep.sbatch lacks %q:\n%s", want, script)
		}
	}
	// Every #SBATCH line comes before the first command (Slurm stops reading them there).
	lines := strings.Split(string(script), "\n")
	seenCommand := false
	for _, l := range lines[1:] {
		switch {
		case strings.HasPrefix(l, "#SBATCH") && seenCommand:
			t.Errorf("#SBATCH after a command: %q", l)
		case l != "" && !strings.HasPrefix(l, "#"):
			seenCommand = true
		}
	}
	submit, _ := os.ReadFile(paths[1])
	for _, want := range []string{"sbatch --parsable " + dir + "/sweep.sbatch", `--dependency=afterok:"$array"`, "sweep merge " + dir} {
		if !strings.Contains(string(submit), want) {
			t.Errorf("submit.sh lacks %q:\n%s", want, submit)
		}
	}
	for _, path := range paths {
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v\n%s", path, err, out)
		}
	}
	for _, bad := range []struct {
		o    SlurmOptions
		want string
	}{
		{SlurmOptions{Dpsflow: "dpsflow"}, "absolute path"},
		{SlurmOptions{Dpsflow: dir}, "not an executable"},
		{SlurmOptions{Dpsflow: bin, Time: "2 hours"}, "--time"},
		{SlurmOptions{Dpsflow: bin, Partition: "a b"}, "--partition"},
	} {
		if _, err := ExportSlurm(dir, p, bad.o); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want %q", bad.o, err, bad.want)
		}
	}
}
