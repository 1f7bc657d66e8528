#!/usr/bin/env bash
# The study's long regimes on the GPU machine (JAX, no TensorFlow; prepare .whl and .data as for
# bench/gpu_check.sh), several runs at once, since one small run leaves the GPU mostly idle:
#   long           α 0, 0.05, 0.1, 0.2, seeds 42 and 43 (8 runs)
#   long_no_decay  the same without weight decay, and α 0.01 and 0.02 too (12 runs)
# PARALLEL runs of each regime at a time (default 4, so 8 processes). Runs still going after
# STUDY_SECONDS (default 240) are stopped, so that what finished comes back. Writes study.log
# (runs finished, each regime's log and mean ± std tables) and study.tgz (every run's JSON, log,
# report and figures and each regime's compare.md; not the models) to $OUT.
#
# Tried on an H100 (2026-11-26) with all 20 runs at once, after a first try in which every run
# failed to import numpy (a link, not this wrapper, stood in for `python`): none had finished
# after 195 s and the files did not come back, so why is not known (20 processes compiling on
# 16 cores, or GPU memory, are guesses). Untested since with the default of 8 at a time.
#
#     OUT=/some/folder bash experiments/gpu_study.sh
#     OUT=/tmp/gpu_study SMOKE=1 PARALLEL=1 bash experiments/gpu_study.sh  # here, small
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
runs=/tmp/gpu_study_runs
rm -rf "$runs" && mkdir -p "$runs"
if [ -n "${SMOKE:-}" ]; then
  export STUDY_FLAGS="--epochs 1 --train-size 600 --val-size 100 --test-size 200 --precision float32"
fi
source bench/gpu_setup.sh
# `python` for smoothing_study.sh: a wrapper, as a link would lose python3's virtual environment
mkdir -p /tmp/gpu_study_bin && printf '#!/bin/sh\nexec python3 "$@"\n' > /tmp/gpu_study_bin/python
chmod +x /tmp/gpu_study_bin/python
export PATH=/tmp/gpu_study_bin:$PATH KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false \
  PYTHONUNBUFFERED=1
study() {  # regime smoothings
  SMOOTHINGS=$2 PARALLEL=${PARALLEL:-4} timeout "${STUDY_SECONDS:-240}" \
    bash experiments/smoothing_study.sh "$dataset" "$1" "$runs/$1" > "$runs/$1.log" 2>&1 || true
}
study long "0 0.05 0.1 0.2" &
study long_no_decay "0 0.01 0.02 0.05 0.1 0.2" &
wait
{
  echo "study: ${SECONDS} s"
  for regime in long long_no_decay; do
    echo "== $regime: $(ls "$runs/$regime"/*.json 2>/dev/null | wc -l) runs finished"
    tail -n 40 "$runs/$regime.log"
  done
} > "$OUT/study.log" 2>&1
cat "$OUT/study.log"
tar czf "$OUT/study.tgz" -C "$runs" --exclude='*.keras' --exclude='*_backup' .
