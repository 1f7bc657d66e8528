#!/usr/bin/env bash
# The GPU check: one command on a machine with a GPU, JAX and PyTorch, but no TensorFlow (see
# ../shared/gpu/README.md). Prepare once, on your own machine, from the project's root:
#
#     bash ../shared/gpu/prepare.sh        # Keras wheels into .whl/, the JPEG CIFAR-10 into .data/
#
# then, on the GPU machine, bringing .whl and .data along:
#
#     OUT=/some/folder bash bench/gpu_check.sh
#
# It installs the wheels, builds the data, and runs, most telling first: both default commands
# under JAX (the first also filling JAX's persistent compilation cache), the loss command under
# PyTorch, the loss command through Keras' distribution on the one GPU (--data-parallel on: the
# several-device code path), the loss command again under JAX with the cache warm and 5 steps
# per execution, and the throughput benchmark under JAX. STEPS=tutorial runs the 2019 tutorial's
# recipe in full (70 epochs, Method 2, JAX), which no default step does. It writes each run's JSON, the
# benchmark's output and summary.md to $OUT. Device time is scarce: a step that would start
# after BUDGET_S seconds (default 420) is skipped, so that the summary is always written, and
# STEPS="torch_loss throughput" (say) runs only the steps it names.
#
# A smoke test on any machine with the packages installed (no wheels, small runs):
#     OUT=/tmp/gpu_smoke SMOKE=1 bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the results}
mkdir -p "$OUT"
runs=/tmp/gpu_check_runs
rm -rf "$runs" && mkdir -p "$runs"

smoke=${SMOKE:-}
size=()  # every run's data and epochs: all of them, or a smoke test's few
bench_seconds=3   # a GPU trains the benchmark's 14 epochs of --images in seconds
bench_images=100000
budget=${BUDGET_S:-420}
if [ -n "$smoke" ]; then
  size=(--train-size 1200 --test-size 500 --epochs 2 --batch-size 100)
  bench_seconds=2
  bench_images=5000
fi
source bench/gpu_setup.sh
export PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices()); print('torch', torch.__version__)"
} > "$OUT/machine.txt" 2>&1

should_run() {  # name: whether the step is wanted (STEPS) and may still start (BUDGET_S)
  if [ -n "${STEPS:-}" ] && [[ " $STEPS " != *" $1 "* ]]; then return 1; fi
  if [ "$SECONDS" -gt "$budget" ]; then echo "== $1: skipped, ${SECONDS} s > BUDGET_S $budget"
    return 1; fi
}

train() {  # name backend script [flags]
  local name=$1 backend=$2 script=$3
  shift 3
  should_run "$name" || return 0
  echo "== $name: KERAS_BACKEND=$backend python3 $script --dataset $dataset --smoothing 0.1 $*"
  KERAS_BACKEND=$backend timeout "${RUN_TIMEOUT_S:-240}" python3 "$script" \
    --dataset "$dataset" --smoothing 0.1 --plot "$runs/$name.png" "${size[@]}" "$@" 2>&1 \
    | grep -v "^ \|^$" | tail -n 25 || true
  cp "$runs/$name.json" "$OUT/" 2>/dev/null || echo "$name: no JSON written"
}

{
  train jax_loss jax label_smoothing_loss.py
  train jax_func jax label_smoothing_func.py
  train torch_loss torch label_smoothing_loss.py
  train jax_loss_data_parallel_on jax label_smoothing_loss.py --data-parallel on
  train jax_loss_warm_cache_spe5 jax label_smoothing_loss.py --steps-per-execution 5
  if [ -n "${STEPS:-}" ]; then
    RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-540} train tutorial jax label_smoothing_loss.py --recipe tutorial
  fi
  if should_run throughput; then
    KERAS_BACKEND=jax timeout 180 python3 bench/throughput.py --seconds "$bench_seconds" \
      --images "$bench_images" > "$OUT/throughput_jax.txt" 2>&1 || true
  fi
} > "$OUT/runs.log" 2>&1

python3 - "$OUT" > "$OUT/summary.md" <<'PY'
import glob, json, os, statistics, sys
print("| run | backend | device | precision | test acc. (TTA) | one view | first epoch s "
      "| steady epoch s | end to end s | programs compiled (from cache) | phases s |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    run = json.load(open(path))
    seconds = run["history"]["seconds"]
    one_view = run.get("one_view", {}).get("test_metrics", {}).get("accuracy")
    print(f"| {os.path.basename(path)[:-5]} | {run['backend']} | {run['device']} | "
          f"{run['precision']} | {run['test_accuracy']:.2%} | "
          f"{one_view:.2%} | {seconds[0]:.1f} | {statistics.median(seconds[1:]):.2f} | "
          f"{run['wall_seconds']:.1f} | "
          + (f"{run['compiles']['programs']} ({run['compiles']['from_cache']})"
             if run.get("compiles") else "–")
          + " | " + ", ".join(f"{k} {v:.1f}" for k, v in run.get("phases", {}).items()) + " |")
PY
cat "$OUT/summary.md" "$OUT/throughput_jax.txt" 2>/dev/null || true
echo "total ${SECONDS} s"
