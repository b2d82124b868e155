#!/usr/bin/env bash
# Runs every Go fuzz target of dpsflow for SECONDS each (default 60), one after the other,
# and prints a table: target, package, executions, wall seconds, result. A failing target's
# crasher is the file go writes under the package's testdata/fuzz/TARGET/; it becomes part
# of the seed corpus that plain 'go test' runs. Exits non-zero if any target failed.
#
#   ./fuzz.sh [SECONDS]
#
# Targets run with -parallel 1 (one fuzzing worker), so the run's length is about
# SECONDS × the number of targets plus build time, on one core. Each new interesting input
# is minimised for at most MINIMIZE seconds (default SECONDS/10, 1 to 10): go's default of
# 60 s stalls the packages that link GoMLX (checkpoint, pipeline) at a few executions a
# minute, as every minimising run compares their large coverage maps.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1)); then
	echo "usage: ./fuzz.sh [SECONDS]   (SECONDS: a positive integer, default 60)" >&2
	exit 2
fi

minimize=${MINIMIZE:-$((secs / 10 < 1 ? 1 : secs / 10 > 10 ? 10 : secs / 10))}

# target package
targets=(
	"FuzzReadPyTorch ./nodes/checkpoint"
	"FuzzReadSafetensors ./nodes/checkpoint"
	"FuzzRead ./nodes/npy"
	"FuzzParse ./nodes/task"
	"FuzzParseDiffusion ./nodes/task"
	"FuzzParseConfig ./nodes/prior/adm"
	"FuzzParse ./dag"
	"FuzzNotebookGraph ./cmd/dpsflow"
	"FuzzCellGraph ./kernel"
	"FuzzDecode ./kernel"
	"FuzzParseTableSpec ./nodes/pipeline"
	"FuzzReadPlan ./nodes/pipeline/sweep"
)

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
rows=()
failed=0
for t in "${targets[@]}"; do
	read -r name pkg <<<"$t"
	log="$logdir/$name-${pkg//\//_}.log"
	echo "== $name ($pkg, ${secs}s)" >&2
	start=$(date +%s)
	status=0
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" -fuzzminimizetime "${minimize}s" -parallel 1 "$pkg" >"$log" 2>&1 || status=$?
	wall=$(($(date +%s) - start))
	# The last "execs: N" line is the total; a run that failed early may have none.
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')
	if ((status == 0)); then
		result=ok
	else
		failed=1
		crasher=$(grep -o 'testdata/fuzz/[^ ]*' "$log" | head -n 1 || true)
		if [[ -n $crasher ]]; then
			result="FAILED ${pkg#./}/$crasher"
		else
			result="FAILED (no crasher; see below)"
		fi
		tail -n 40 "$log" >&2
	fi
	rows+=("$(printf '%-22s %-20s %12s %6s  %s' "$name" "$pkg" "${execs:-0}" "$wall" "$result")")
done

printf '\n%-22s %-20s %12s %6s  %s\n' TARGET PACKAGE EXECS WALL_S RESULT
printf '%s\n' "${rows[@]}"
exit $failed
