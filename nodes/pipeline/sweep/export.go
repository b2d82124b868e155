package sweep

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/dpsflow/dpsflow/internal/atomicfile"
)

// Files Export writes into the plan folder.
const (
	SlurmScript = "sweep.sbatch" // the job array: `sbatch --wait DIR/sweep.sbatch` runs every shard
	SlurmSubmit = "submit.sh"    // submits the array, then the merge with --dependency=afterok
	K8sSweepJob = "sweep-job.yaml"
	K8sMergeJob = "merge-job.yaml"
)

// SlurmOptions are the job array's resources. Zero values leave a setting to the
// cluster's defaults.
type SlurmOptions struct {
	Dpsflow     string // the dpsflow binary the workers run (absolute; on a path every node sees)
	Partition   string
	GPUsPerTask int
	CPUsPerTask int
	Time        string // Slurm's --time, e.g. 4:00:00
	ArrayLimit  int    // at most this many shards at once (the %L of --array)
}

// ExportSlurm writes the job array and its submit script into the plan folder dir and
// returns their paths.
func ExportSlurm(dir string, p *Plan, o SlurmOptions) ([]string, error) {
	if err := checkBinary(o.Dpsflow); err != nil {
		return nil, err
	}
	if strings.ContainsAny(dir, " \t\n'\"%") {
		return nil, fmt.Errorf("the plan folder %q holds a space, quote or %%, which #SBATCH --output cannot take; plan into a folder without them", dir)
	}
	if o.GPUsPerTask < 0 || o.CPUsPerTask < 0 || o.ArrayLimit < 0 {
		return nil, fmt.Errorf("--gpus-per-task %d, --cpus-per-task %d and --array-limit %d must not be negative", o.GPUsPerTask, o.CPUsPerTask, o.ArrayLimit)
	}
	if o.Time != "" && !slurmTime.MatchString(o.Time) {
		return nil, fmt.Errorf("--time %q: give minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS", o.Time)
	}
	if o.Partition != "" && strings.ContainsAny(o.Partition, " \t\n'\"$`\\") {
		return nil, fmt.Errorf("--partition %q: not a partition name", o.Partition)
	}
	array := fmt.Sprintf("0-%d", p.Shards-1)
	if o.ArrayLimit > 0 {
		array += fmt.Sprintf("%%%d", o.ArrayLimit)
	}
	data := map[string]any{"Dir": dir, "QDir": shellQuote(dir), "Bin": shellQuote(o.Dpsflow), "Array": array, "O": o,
		"Shards": p.Shards, "Units": len(p.Units)}
	return writeTemplates(dir, 0o755, data, SlurmScript, slurmScriptTmpl, SlurmSubmit, slurmSubmitTmpl)
}

var slurmTime = regexp.MustCompile(`^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$`)

// The job array. Slurm reads #SBATCH lines up to the first command; --output's path may
// not be quoted, so the plan folder's path must not hold spaces (checked by the exporter's
// caller through shellQuote's result).
const slurmScriptTmpl = `#!/bin/bash
# dpsflow sweep: one array task per shard ({{.Shards}} shards, {{.Units}} units) of the plan in
# {{.Dir}}
# Run every shard and wait:  sbatch --wait {{.Dir}}/sweep.sbatch
# Rerun one shard (e.g. 2):  sbatch --array=2 {{.Dir}}/sweep.sbatch
# A rerun or requeued shard skips finished units and resumes a half-done batch.
#SBATCH --job-name=dpsflow-sweep
#SBATCH --array={{.Array}}
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --output={{.Dir}}/logs/%A_%a.out
{{- if .O.Partition}}
#SBATCH --partition={{.O.Partition}}
{{- end}}
{{- if .O.GPUsPerTask}}
#SBATCH --gpus-per-task={{.O.GPUsPerTask}}
{{- end}}
{{- if .O.CPUsPerTask}}
#SBATCH --cpus-per-task={{.O.CPUsPerTask}}
{{- end}}
{{- if .O.Time}}
#SBATCH --time={{.O.Time}}
{{- end}}
# The shard is $SLURM_ARRAY_TASK_ID; dpsflow reads it. exec: scancel's SIGTERM reaches
# dpsflow, which saves where it is.
exec {{.Bin}} sweep run {{.QDir}}
`

const slurmSubmitTmpl = `#!/bin/sh
# Submits the sweep's job array, then the merge, which starts when every shard succeeded.
set -eu
array=$(sbatch --parsable {{.QDir}}/sweep.sbatch)
array=${array%%;*}
merge=$(sbatch --parsable --dependency=afterok:"$array" --job-name=dpsflow-merge --ntasks=1 \
{{- if .O.Partition}}
  --partition={{.O.Partition}} \
{{- end}}
{{- if .O.GPUsPerTask}}
  --gpus-per-task={{.O.GPUsPerTask}} \
{{- end}}
  --output={{.QDir}}/logs/merge-%j.out --wrap "exec {{.Bin}} sweep merge {{.QDir}}")
echo "submitted: sweep array $array ({{.Shards}} shards), merge $merge (after all succeed)"
echo "watch: {{.Bin}} sweep status {{.QDir}}"
`

// K8sOptions are the Indexed Job's settings.
type K8sOptions struct {
	Image       string // a container image with dpsflow on its PATH
	PVC         string // a ReadWriteMany claim holding the plan folder
	Mount       string // where the claim is mounted; "" is the plan folder itself
	GPUs        int    // nvidia.com/gpu limit per worker; 0: none
	CPUs        int    // cpu request per worker; 0: none
	Parallelism int    // workers at once; 0: every shard
}

// ExportK8s writes the Indexed Job of the shards and the merge Job into the plan folder.
// The claim is mounted at the plan folder's own path (or at Mount, a folder above it that
// also holds the spec's inputs), so the absolute paths of the plan hold in the pods.
func ExportK8s(dir string, p *Plan, o K8sOptions) ([]string, error) {
	if o.Image == "" || o.PVC == "" {
		return nil, fmt.Errorf("--k8s needs --image (a container image with dpsflow) and --pvc (a ReadWriteMany claim holding %s)", dir)
	}
	if !dnsLabel.MatchString(o.PVC) {
		return nil, fmt.Errorf("--pvc %q is not a Kubernetes object name (lower-case letters, digits and '-')", o.PVC)
	}
	if strings.ContainsAny(o.Image, " \t\n\"'") {
		return nil, fmt.Errorf("--image %q is not an image reference", o.Image)
	}
	if o.Mount == "" {
		o.Mount = dir
	}
	if rel, err := filepath.Rel(o.Mount, dir); err != nil || rel == ".." || strings.HasPrefix(rel, "../") || !filepath.IsAbs(o.Mount) {
		return nil, fmt.Errorf("--mount %s must be an absolute folder that holds the plan folder %s", o.Mount, dir)
	}
	if o.Parallelism <= 0 || o.Parallelism > p.Shards {
		o.Parallelism = p.Shards
	}
	if o.GPUs < 0 || o.CPUs < 0 {
		return nil, fmt.Errorf("--gpus-per-task %d and --cpus-per-task %d must not be negative", o.GPUs, o.CPUs)
	}
	name := "dpsflow-sweep-" + p.GraphSHA256[:10]
	data := map[string]any{"Name": name, "Dir": yamlQuote(dir), "Mount": yamlQuote(o.Mount), "Bin": yamlQuote("dpsflow"),
		"Image": yamlQuote(o.Image), "O": o, "Shards": p.Shards}
	return writeTemplates(dir, 0o644, data, K8sSweepJob, k8sJobTmpl, K8sMergeJob, k8sMergeTmpl)
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// The shard is the pod's completion index: Kubernetes sets JOB_COMPLETION_INDEX in every
// container of an Indexed Job, and dpsflow reads it.
const k8sJobTmpl = `# dpsflow sweep: an Indexed Job, one completion per shard. kubectl apply -f this, wait for it
# (kubectl wait --for=condition=complete job/{{.Name}} --timeout=-1s), then apply merge-job.yaml.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{.Name}}
  labels:
    app.kubernetes.io/name: dpsflow-sweep
spec:
  completionMode: Indexed
  completions: {{.Shards}}
  parallelism: {{.O.Parallelism}}
  backoffLimitPerIndex: 2 # retries of one shard
  template:
    metadata:
      labels:
        app.kubernetes.io/name: dpsflow-sweep
    spec:
      restartPolicy: Never
      containers:
        - name: shard
          image: {{.Image}}
          command: [{{.Bin}}, "sweep", "run", {{.Dir}}]
          env:
            # Also set by Kubernetes itself since 1.28; spelled out for older clusters.
            - name: JOB_COMPLETION_INDEX
              valueFrom:
                fieldRef:
                  fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
{{- if or .O.GPUs .O.CPUs}}
          resources:
{{- if .O.CPUs}}
            requests:
              cpu: "{{.O.CPUs}}"
{{- end}}
{{- if .O.GPUs}}
            limits:
              nvidia.com/gpu: "{{.O.GPUs}}"
{{- end}}
{{- end}}
          volumeMounts:
            - name: sweep
              mountPath: {{.Mount}}
      volumes:
        - name: sweep
          persistentVolumeClaim:
            claimName: {{.O.PVC}}
`

const k8sMergeTmpl = `# dpsflow sweep merge: run after the sweep Job completed; writes table.md/csv/json and the grids
# into the plan folder on the claim.
apiVersion: batch/v1
kind: Job
metadata:
  name: {{.Name}}-merge
  labels:
    app.kubernetes.io/name: dpsflow-sweep-merge
spec:
  completions: 1
  backoffLimit: 2
  template:
    metadata:
      labels:
        app.kubernetes.io/name: dpsflow-sweep-merge
    spec:
      restartPolicy: Never
      containers:
        - name: merge
          image: {{.Image}}
          command: [{{.Bin}}, "sweep", "merge", {{.Dir}}]
{{- if .O.GPUs}}
          resources:
            limits:
              nvidia.com/gpu: "{{.O.GPUs}}"
{{- end}}
          volumeMounts:
            - name: sweep
              mountPath: {{.Mount}}
      volumes:
        - name: sweep
          persistentVolumeClaim:
            claimName: {{.O.PVC}}
`

// writeTemplates renders each (name, template) pair with data and writes it into dir
// atomically; it returns the paths written.
func writeTemplates(dir string, perm os.FileMode, data any, nameTmpl ...string) ([]string, error) {
	var paths []string
	for i := 0; i+1 < len(nameTmpl); i += 2 {
		b, err := render(nameTmpl[i+1], data)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, nameTmpl[i])
		if err := atomicfile.Write(path, b, perm); err != nil {
			return nil, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}

func render(tmpl string, data any) ([]byte, error) {
	t, err := template.New("").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkBinary refuses a dpsflow path the workers could not run.
func checkBinary(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("--dpsflow %q: give the absolute path of the dpsflow binary the workers run", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--dpsflow: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("--dpsflow %s is not an executable file", path)
	}
	return nil
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./:=+-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// yamlQuote is s as a YAML double-quoted string (JSON's escapes are YAML's).
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
