#!/usr/bin/env bash
# Measures an MNIST prior the way the README's "Shipped models" and every-task tables were
# measured, and writes OUT/summary.md with both tables' rows:
#
#   models/mnist/measure.sh OUT [--model-config M.yaml --checkpoint W.safetensors]
#
# Without model flags it measures the shipped prior. In OUT: loss.json (`model loss`, all
# 10 000 test digits, seed 0), samples/ and quality.json (1000 samples of 250 steps, seed 0,
# scored by `model quality`), samples.png (the README's 36-sample grid), tasks/T/ (each
# preset task on the 8 held-out digits, 100 steps, seed 0, with the vanilla baseline; phase
# retrieval also with 4 restarts) and summary.md. About 35–42 min and 8 GB on 2 idle cores, most of
# it the 1000 samples. Environment: N (samples, 1000), SAMPLE_STEPS (250), LOSS_N (10000),
# TASK_FLAGS (extra flags for every `run`, e.g. "--n 2 --steps 2" for a quick check).
set -euo pipefail
if [ $# -lt 1 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
out=$(realpath -m "$1")
shift
model=("$@")
N=${N:-1000}
SAMPLE_STEPS=${SAMPLE_STEPS:-250}
LOSS_N=${LOSS_N:-10000}
read -r -a task_flags <<<"${TASK_FLAGS:-}"
root=$(realpath "$(dirname "$0")/../..")
mkdir -p "$out"
if [ -e "$out/summary.md" ]; then
  echo "$out already holds a measurement (summary.md); give a new folder" >&2
  exit 2
fi
dpsflow=$out/dpsflow
go build -C "$root" -o "$dpsflow" ./cmd/dpsflow

log() { echo "$(date -u +%H:%M:%S) $*" >&2; }
log "held-out ε-loss ($LOSS_N test digits)"
"$dpsflow" model loss "${model[@]}" --n "$LOSS_N" --json >"$out/loss.json"
log "$N unconditional samples, $SAMPLE_STEPS steps"
"$dpsflow" model sample "${model[@]}" --n "$N" --steps "$SAMPLE_STEPS" --seed 0 --quiet \
  --images "$out/samples" --out "$out/samples-grid.png"
"$dpsflow" model quality --images "$out/samples" --json >"$out/quality.json"
"$dpsflow" model sample "${model[@]}" --n 36 --scale 3 --steps "$SAMPLE_STEPS" --seed 0 --quiet --out "$out/samples.png"

tasks=(sr4 inpaint-box inpaint-random deblur-gauss deblur-motion phase-retrieval deblur-nonlinear)
for task in "${tasks[@]}"; do
  log "task $task"
  "$dpsflow" run "${model[@]}" --task "$task" --baseline vanilla "${task_flags[@]}" --out "$out/tasks/$task" >/dev/null 2>&1
done
log "task phase-retrieval, 4 restarts"
"$dpsflow" run "${model[@]}" --task phase-retrieval --restarts 4 --baseline vanilla "${task_flags[@]}" \
  --out "$out/tasks/phase-retrieval-restarts4" >/dev/null 2>&1

r='def r(d): (. * pow(10; d) | round) / pow(10; d);'
{
  echo "| measure | value |"
  echo "|---|---|"
  jq -r "$r"'"| held-out ε-loss (\(.images) test digits, seed \(.seed)) | \(.mean | r(5)) ± \(.std_err | r(5)) |"' "$out/loss.json"
  jq -r "$r"'"| the classifier'"'"'s mean confidence (\(.n) samples) | \(.mean_confidence | r(3)) |",
    "| classified with confidence ≥ \(.confident_at) | \(.confident_fraction * 100 | r(1)) % |",
    "| rarest class | \(.class_fractions | to_entries | min_by(.value) | "\(.key): \(.value * 100 | r(1)) %") (commonest \(.class_fractions | to_entries | max_by(.value) | "\(.key): \(.value * 100 | r(1)) %")) |",
    "| FD to the test digits (train-to-test floor) | \(.to_test.fd | r(1)) (\(.floor_train_to_test.fd | r(1))) |",
    "| KID, same | \(.to_test.kid | r(2)) (\(.floor_train_to_test.kid | r(2))) |"' "$out/quality.json"
  echo
  echo "| task | DPS PSNR (dB) | DPS SSIM | vanilla PSNR (dB) | s / image |"
  echo "|---|---|---|---|---|"
  for task in "${tasks[@]}" phase-retrieval-restarts4; do
    jq -r --arg t "$task" "$r"'"| \($t) | \(.summary.psnr.mean | r(2)) ± \(.summary.psnr.std | r(2)) | \(.summary.ssim.mean | r(3)) ± \(.summary.ssim.std | r(3)) | \(.baseline.summary.psnr.mean | r(2)) ± \(.baseline.summary.psnr.std | r(2)) | \(.summary.seconds.mean | r(1)) |"' \
      "$out/tasks/$task/metrics.json"
  done
} >"$out/summary.md"
log "wrote $out/summary.md"
cat "$out/summary.md"
