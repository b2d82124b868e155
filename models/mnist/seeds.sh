#!/usr/bin/env bash
# Runs the every-task table's tasks (8 held-out digits, 100 steps, DPS only) with several seeds,
# so that two priors can be compared beyond one seed's draw of masks, noise and sampler draws
# (README, "Shipped models"), and writes OUT/seeds.md:
#
#   models/mnist/seeds.sh OUT [--model-config M.yaml --checkpoint W.safetensors]
#
# Without model flags it runs the shipped prior. OUT/sS/T/ is the run of task T with seed S (an
# OUT holds one prior's runs: finished ones are not redone, whatever the flags). For each task
# seeds.md gives every seed's 8-digit mean PSNR, their mean and standard deviation; with
# AGAINST=DIR (another OUT of this script, same seeds) also the mean over seeds of the paired
# difference OUT − DIR ± its standard error over seeds. Called again, it skips finished runs and
# resumes an interrupted one. About 2.3 min per seed on 2 idle cores. Environment: SEEDS ("0 1 2
# 3 4 5 6"), TASK_FLAGS (extra flags for every `run`, e.g. "--n 2 --steps 2").
set -euo pipefail
if [ $# -lt 1 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
if ! command -v jq >/dev/null 2>&1; then
  echo "seeds.sh needs jq for its table (Debian: apt-get install jq)" >&2
  exit 2
fi
out=$(realpath -m "$1")
shift
model=("$@")
read -r -a seeds <<<"${SEEDS:-0 1 2 3 4 5 6}"
read -r -a task_flags <<<"${TASK_FLAGS:-}"
if [ "${#seeds[@]}" -lt 2 ]; then
  echo "SEEDS must name at least two seeds (got: ${SEEDS:-})" >&2
  exit 2
fi
tasks=(sr4 inpaint-box inpaint-random deblur-gauss deblur-motion phase-retrieval deblur-nonlinear)
against=""
if [ -n "${AGAINST:-}" ]; then
  against=$(realpath -m "$AGAINST")
  for seed in "${seeds[@]}"; do
    for task in "${tasks[@]}"; do
      if [ ! -e "$against/s$seed/$task/metrics.json" ]; then
        echo "seeds.sh: AGAINST=$AGAINST has no run of task $task with seed $seed ($against/s$seed/$task/metrics.json); it must hold the same seeds" >&2
        exit 2
      fi
    done
  done
fi
root=$(realpath "$(dirname "$0")/../..")
mkdir -p "$out"
dpsflow=$out/dpsflow
go build -C "$root" -o "$dpsflow" ./cmd/dpsflow

log() { echo "$(date -u +%H:%M:%S) $*" >&2; }
for seed in "${seeds[@]}"; do
  for task in "${tasks[@]}"; do
    run=$out/s$seed/$task
    if [ -e "$run/metrics.json" ]; then
      continue
    fi
    log "seed $seed, task $task"
    mkdir -p "$out/s$seed" # an interrupted run resumes in its folder (`dpsflow run`)
    if ! "$dpsflow" run "${model[@]}" --task "$task" --seed "$seed" "${task_flags[@]}" --out "$run" >"$run.log" 2>&1; then
      echo "seeds.sh: task $task, seed $seed failed; its output is in $run.log" >&2
      exit 1
    fi
  done
done

# means DIR TASK: the mean PSNR of each seed's run (checked to exist above), one per line.
means() {
  for seed in "${seeds[@]}"; do
    jq '.summary.psnr.mean' "$1/s$seed/$2/metrics.json"
  done
}
stats='def r(d): (. * pow(10; d) | round) / pow(10; d);
  (add / length) as $m | ((map((. - $m) * (. - $m)) | add) / (length - 1) | sqrt) as $sd'
{
  echo "Seeds ${seeds[*]}; DPS PSNR (dB), the mean of each run's images."
  echo
  if [ -n "$against" ]; then
    echo "| task | per seed | mean over seeds (sd) | minus $against: mean ± s.e. over seeds |"
    echo "|---|---|---|---|"
  else
    echo "| task | per seed | mean over seeds (sd) |"
    echo "|---|---|---|"
  fi
  for task in "${tasks[@]}"; do
    mine=$(means "$out" "$task")
    row=$(jq -rs "$stats"' | "| '"$task"' | \(map(r(2)) | join(", ")) | \($m | r(2)) (\($sd | r(2))) |"' <<<"$mine")
    if [ -n "$against" ]; then
      diff=$(paste <(echo "$mine") <(means "$against" "$task") | awk '{print $1 - $2}' |
        jq -rs "$stats"' | "\($m | r(2)) ± \($sd / (length | sqrt) | r(2)) |"')
      row="$row $diff"
    fi
    echo "$row"
  done
} >"$out/seeds.md"
log "wrote $out/seeds.md"
cat "$out/seeds.md"
