#!/usr/bin/env bash
# The README's label-smoothing study: smoothing 0, 0.05, 0.1 and 0.2 with the default (fast)
# recipe shortened to the same 3 epochs for every run, two seeds each, with Method 2 (loss);
# plus Method 1 (func) at smoothing 0.1, seed 1, to show that the two methods agree.
# Runs one after another (each uses both cores), then compares them.
#
#     bash experiments/smoothing_study.sh /tmp/cifar10/cifar-10-python.tar.gz [runs/study]
set -euo pipefail
dataset=${1:?usage: smoothing_study.sh DATASET [OUT]}
out=${2:-runs/study}
epochs=3
cd "$(dirname "$0")/.."
mkdir -p "$out"
run() {  # method smoothing seed
  local plot="$out/$1_s$2_seed$3.png"
  if [ -f "${plot%.png}.json" ]; then echo "skip $plot (done)"; return; fi
  python "label_smoothing_$1.py" --dataset "$dataset" --epochs "$epochs" --smoothing "$2" \
    --seed "$3" --plot "$plot"
}
for seed in 1 2; do
  for smoothing in 0 0.05 0.1 0.2; do
    run loss "$smoothing" "$seed"
  done
done
run func 0.1 1
python compare.py "$out"/*.json --plot "$out/compare.png"
