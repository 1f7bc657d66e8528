#!/usr/bin/env bash
# Full-size work for the GPU machine (JAX, no TensorFlow; prepare .whl and .data as for
# bench/gpu_check.sh), as one call, in three lanes side by side, since one run leaves the GPU
# mostly idle:
#   search   experiments/recipe_search.py, every candidate at seeds 42 and 43, then 44,
#            SEARCH_PARALLEL (default 5) at a time; and Method 1 of `airbench10` at seed 42,
#            which must be bit-identical to the search's Method 2 run of it
#   distill  experiments/distillation_study.sh, DISTILL_PARALLEL (default 3) at a time
#   no_decay the smoothing study's regime (c), long_no_decay, at α 0, 0.01, 0.02, 0.05 and 0.1,
#            seeds 42 and 43, NO_DECAY_PARALLEL (default 2) at a time
# No run starts after START_S seconds (default 400); runs still going at STOP_S (default 520)
# are stopped. Every 30 s and at the end, $OUT/gpu_runs.tgz is repacked with every finished
# run's JSON and log and each study's table (no models), so a call cut short still returns what
# finished; $OUT/gpu_runs.log has the lanes' logs and the machine.
#
#     OUT=/some/folder bash experiments/gpu_runs.sh
#     OUT=/tmp/gpu_runs SMOKE=1 bash experiments/gpu_runs.sh    # here, tiny runs
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
runs=/tmp/gpu_runs
rm -rf "$runs" && mkdir -p "$runs/search" "$runs/distillation" "$runs/long_no_decay"
start_s=${START_S:-400}
stop_s=${STOP_S:-520}
search_flags=()
study_flags=""
search_seeds=${SEARCH_SEEDS:-42 43 44}
search_only=()
if [ -n "${SMOKE:-}" ]; then
  search_flags=(--train-size 600 --val-size 100 --test-size 200 --epochs 1 --batch-size 100)
  study_flags="--epochs 1 --train-size 600 --val-size 100 --test-size 200 --batch-size 100"
  search_seeds=42 search_only=(--only airbench10 batch256)
  export SEEDS=0 TEMPERATURES=4
fi
source bench/gpu_setup.sh
# `python` for the study scripts: a wrapper, as a link would lose python3's environment
mkdir -p /tmp/gpu_runs_bin && printf '#!/bin/sh\nexec python3 "$@"\n' > /tmp/gpu_runs_bin/python
chmod +x /tmp/gpu_runs_bin/python
export PATH=/tmp/gpu_runs_bin:$PATH KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false \
  PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  nproc; date -u +%FT%TZ; git rev-parse --short HEAD 2>/dev/null || true
} > "$runs/machine.txt" 2>&1

pack() {  # every finished run's JSON and log, the tables; no models or backups
  tar czf "$OUT/gpu_runs.tgz.part" -C "$runs" --exclude='*.keras' --exclude='*_backup' \
    --exclude='*.png' --exclude='*.lock' . 2>/dev/null && mv "$OUT/gpu_runs.tgz.part" "$OUT/gpu_runs.tgz"
}

search() {
  timeout $((stop_s - SECONDS)) python3 experiments/recipe_search.py "$dataset" "$runs/search" \
    --seeds $search_seeds "${search_only[@]}" --parallel "${SEARCH_PARALLEL:-5}" --stop-after-seconds "$start_s" \
    -- "${search_flags[@]}" || true
  # Method 1 beside the search's Method 2 run of the same recipe and seed
  if [ "$SECONDS" -lt "$start_s" ]; then
    timeout $((stop_s - SECONDS)) python3 label_smoothing_func.py --dataset "$dataset" \
      --recipe airbench10 --smoothing 0.1 --seed 42 --plot "$runs/search/func_airbench10_seed42.png" \
      "${search_flags[@]}" || true
  fi
}

distill() {
  STUDY_FLAGS=$study_flags PARALLEL=${DISTILL_PARALLEL:-3} timeout $((stop_s - SECONDS)) \
    bash experiments/distillation_study.sh "$dataset" "$runs/distillation" || true
}

no_decay() {
  STUDY_FLAGS=$study_flags SMOOTHINGS="0 0.01 0.02 0.05 0.1" PARALLEL=${NO_DECAY_PARALLEL:-2} \
    timeout $((stop_s - SECONDS)) bash experiments/smoothing_study.sh "$dataset" long_no_decay \
    "$runs/long_no_decay" || true
}

lanes="search distill no_decay"
for lane in $lanes; do "$lane" > "$runs/$lane.log" 2>&1 & done
while [ -n "$(jobs -rp)" ]; do
  sleep 30
  pack
done
{
  cat "$runs/machine.txt"
  echo "total ${SECONDS} s"
  for lane in $lanes; do echo "== $lane"; grep -v "^ \|^$" "$runs/$lane.log" | tail -n 60; done
} > "$OUT/gpu_runs.log" 2>&1
pack
cat "$OUT/gpu_runs.log"
