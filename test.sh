#!/usr/bin/env bash
# The project's test command. Installs what the tests need from Debian when it is missing
# (gcc for cgo and test plugins; NumPy, SciPy, PyTorch and scikit-image, which serve as independent
# references in cross-checks; Jupyter for the kernel's conformance suite and the notebooks; Slurm
# and munge for the sweep test, which starts a one-node cluster as root; jq for models/mnist's
# scripts),
# then runs every Go test. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || need+=(python3-numpy)
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need+=(python3-torch)
/usr/bin/python3 -c 'import skimage' >/dev/null 2>&1 || need+=(python3-skimage)
/usr/bin/python3 -c 'import scipy' >/dev/null 2>&1 || need+=(python3-scipy)
# Jupyter, to run the kernel's conformance suite and execute the notebooks.
/usr/bin/python3 -c 'import jupyter_kernel_test, nbclient, nbconvert' >/dev/null 2>&1 ||
  need+=(jupyter-notebook jupyter-nbconvert python3-nbclient jupyter-client python3-zmq python3-jupyter-kernel-test)
# Slurm (with munge), for the sweep test that runs a real one-node cluster.
command -v sbatch >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need+=(munge)
# jq, for models/mnist's scripts (seeds_test.go runs seeds.sh).
command -v jq >/dev/null 2>&1 || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "the tests need: ${need[*]}; install them with: sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]} (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export GOTOOLCHAIN=local
export GOMLX_NO_AUTO_INSTALL=1 # never download PJRT plugins
# -timeout: the default 10 min per package is too tight for cmd/dpsflow on a loaded 2-core
# machine (its Slurm sweep test alone takes ~2 min); a later -timeout in "$@" wins.
go test -timeout 40m "$@" ./...
