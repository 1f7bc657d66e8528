#!/usr/bin/env bash
# The study's long regimes on the GPU machine (JAX, no TensorFlow; prepare .whl and .data as for
# bench/gpu_check.sh), every run at once (one small run leaves the GPU mostly idle):
#   long           α 0, 0.05, 0.1, 0.2, seeds 42 and 43 (8 runs)
#   long_no_decay  the same without weight decay, and α 0.01 and 0.02 too (12 runs)
# Runs still going after STUDY_SECONDS (default 240) are stopped, so that what finished comes
# back. Writes study.tgz (every run's JSON, log, report and figures and each regime's compare.md;
# not the models) to $OUT.
#
#     OUT=/some/folder bash experiments/gpu_study.sh
#     OUT=/tmp/gpu_study SMOKE=1 PARALLEL=1 bash experiments/gpu_study.sh  # here, small, ../shared
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
runs=/tmp/gpu_study_runs
rm -rf "$runs" && mkdir -p "$runs"
if [ -n "${SMOKE:-}" ]; then
  export STUDY_FLAGS="--epochs 1 --train-size 600 --val-size 100 --test-size 200 --precision float32"
  python3 ../shared/datasets/build_cifar10.py /tmp/cifar10 --archive
else
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  python3 .data/build_cifar10.py /tmp/cifar10 --archive
fi
mkdir -p /tmp/gpu_study_bin && ln -sf "$(command -v python3)" /tmp/gpu_study_bin/python
export PATH=/tmp/gpu_study_bin:$PATH KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false \
  PYTHONUNBUFFERED=1
dataset=/tmp/cifar10/cifar-10-python.tar.gz
study() {  # regime smoothings runs-at-once
  SMOOTHINGS=$2 PARALLEL=${PARALLEL:-$3} timeout "${STUDY_SECONDS:-240}" \
    bash experiments/smoothing_study.sh "$dataset" "$1" "$runs/$1" > "$runs/$1.log" 2>&1 || true
}
study long "0 0.05 0.1 0.2" 8 &
study long_no_decay "0 0.01 0.02 0.05 0.1 0.2" 12 &
wait
echo "study: ${SECONDS} s"
for regime in long long_no_decay; do
  echo "== $regime: $(ls "$runs/$regime"/*.json 2>/dev/null | wc -l) runs finished"
  grep -A 12 "^## Mean ± std over seeds, one view" "$runs/$regime/compare.md" || true
done
tar czf "$OUT/study.tgz" -C "$runs" --exclude='*.keras' --exclude='*_backup' .
