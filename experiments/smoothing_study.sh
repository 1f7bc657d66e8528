#!/usr/bin/env bash
# The label-smoothing study of README "What label smoothing does here": smoothing 0, 0.05, 0.1
# and 0.2, seeds 42 and 43, Method 2 (loss), in one of two regimes:
#   default  the default recipe at its full 14 epochs on all 45,000 training images
#   long     recipe "overfit" (no augmentation, no lookahead, 30 epochs) on 5,000 training
#            images: the unsmoothed network ends over-confident
# Runs one after another (each uses every core); a run whose JSON exists is skipped and an
# interrupted one resumes from its backup, so the study can be spread over several sittings.
# Then compares the regime's runs. The default run of README's Results is this study's default
# regime at smoothing 0.1, seed 42: copy its files to OUT/loss_s0.1_seed42.* to reuse it.
#
#     bash experiments/smoothing_study.sh DATASET default|long [OUT]   # OUT: runs/study/REGIME
set -euo pipefail
dataset=${1:?usage: smoothing_study.sh DATASET default|long [OUT]}
regime=${2:?usage: smoothing_study.sh DATASET default|long [OUT]}
case "$regime" in
  default) flags=() ;;
  long) flags=(--recipe overfit --train-size 6000 --val-size 1000) ;;
  *) echo "smoothing_study.sh: regime must be default or long, got '$regime'" >&2; exit 2 ;;
esac
out=${3:-runs/study/$regime}
cd "$(dirname "$0")/.."
mkdir -p "$out"
for seed in 42 43; do
  for smoothing in 0 0.05 0.1 0.2; do
    plot="$out/loss_s${smoothing}_seed${seed}.png"
    if [ -f "${plot%.png}.json" ]; then echo "skip $plot (done)"; continue; fi
    python label_smoothing_loss.py --dataset "$dataset" "${flags[@]}" --smoothing "$smoothing" \
      --seed "$seed" --plot "$plot"
  done
done
python compare.py "$out"/*.json --plot "$out/compare.png"
