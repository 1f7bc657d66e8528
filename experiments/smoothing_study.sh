#!/usr/bin/env bash
# The label-smoothing study of docs/study.md: smoothing 0, 0.05, 0.1
# and 0.2, seeds 42 and 43, Method 2 (loss), in one of three regimes:
#   default        recipe "fast" (the default before airbench's settings) at its 14 epochs on
#                  all 45,000 training images
#   long           recipe "overfit" (no augmentation, no lookahead, 30 epochs) on 5,000 training
#                  images: the unsmoothed network ends over-confident
#   long_no_decay  the same without weight decay (--weight-decay 0)
# Runs one after another (each uses every core); a run whose JSON exists is skipped and an
# interrupted one resumes from its backup, so the study can be spread over several sittings.
# Then compares the regime's runs. The previous default run (results/previous/default_fbd2c01)
# is this study's default regime at smoothing 0.1, seed 42: copy its files to
# OUT/loss_s0.1_seed42.* to reuse it.
#
#     bash experiments/smoothing_study.sh DATASET default|long|long_no_decay [OUT]
#
# OUT defaults to runs/study/REGIME. PARALLEL=N runs N at a time instead, each printing to
# OUT/<run>.log: for a GPU, where one small run leaves it mostly idle (under JAX, set
# XLA_PYTHON_CLIENT_PREALLOCATE=false so that the processes share its memory). STUDY_FLAGS
# adds flags to every run (e.g. "--epochs 1 --test-size 200" for a smoke test), and
# SMOOTHINGS replaces the list of α (default "0 0.05 0.1 0.2").
set -euo pipefail
usage="usage: smoothing_study.sh DATASET default|long|long_no_decay [OUT]"
dataset=${1:?$usage}
regime=${2:?$usage}
parallel=${PARALLEL:-1}
read -r -a extra <<< "${STUDY_FLAGS:-}"
read -r -a smoothings <<< "${SMOOTHINGS:-0 0.05 0.1 0.2}"
case "$regime" in
  default) flags=(--recipe fast) ;;
  long) flags=(--recipe overfit --train-size 6000 --val-size 1000) ;;
  long_no_decay) flags=(--recipe overfit --train-size 6000 --val-size 1000 --weight-decay 0) ;;
  *) echo "smoothing_study.sh: regime must be default, long or long_no_decay, got '$regime'" >&2
     exit 2 ;;
esac
out=${3:-runs/study/$regime}
cd "$(dirname "$0")/.."
mkdir -p "$out"
for seed in 42 43; do
  for smoothing in "${smoothings[@]}"; do
    plot="$out/loss_s${smoothing}_seed${seed}.png"
    if [ -f "${plot%.png}.json" ]; then echo "skip $plot (done)"; continue; fi
    command=(python label_smoothing_loss.py --dataset "$dataset" "${flags[@]}"
             --smoothing "$smoothing" --seed "$seed" --plot "$plot" "${extra[@]}")
    if [ "$parallel" -le 1 ]; then "${command[@]}"; continue; fi
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
    echo "start $plot"
    "${command[@]}" > "${plot%.png}.log" 2>&1 &
  done
done
wait  # a failed run shows in its log and by its missing JSON
python compare.py "$out"/*.json --plot "$out/compare.png"
