#!/usr/bin/env bash
# The distillation study (Mueller, Kornblith & Hinton 2019, section 4: does a teacher trained
# with label smoothing make a worse student?), in the smoothing study's long regime (recipe
# "overfit": no augmentation, no lookahead, 30 epochs, on 5,000 training images, 1,000 held out
# for validation), Method 2 (loss):
#   teachers   recipe overfit at α 0 and 0.1, seeds 0 and 1
#   students   recipe overfit_small (the same net at half width), seeds 0 and 1:
#              alone at α 0 and 0.1, and at α 0 distilled from each teacher of their own
#              seed at T 1 and 4 (--distill-weight at its default)
# Every student trains on the teachers' own training images, which distillation from
# precomputed logits needs. Teachers first (the students need their .keras), then students;
# one after another (each uses every core). A run whose JSON exists is skipped (a teacher also
# needs its .keras) and an interrupted one resumes from its backup, so the study can be spread
# over several sittings. Then prints the table and draws the figure
# (experiments/distillation_table.py) into OUT/distillation.{md,png}.
#
#     bash experiments/distillation_study.sh DATASET [OUT]
#
# OUT defaults to runs/study/distillation. As in smoothing_study.sh, PARALLEL=N runs N at a
# time, each printing to OUT/<run>.log, and STUDY_FLAGS adds flags to every run (e.g.
# "--epochs 1 --test-size 200" for a smoke test). TEACHER_SMOOTHINGS (default "0 0.1"),
# STUDENT_SMOOTHINGS (the students alone, default "0 0.1"), TEMPERATURES (default "1 4") and
# SEEDS (default "0 1", teachers and students alike) replace the lists. With the defaults:
# 4 teachers, 4 students alone, 8 distilled students.
set -euo pipefail
usage="usage: distillation_study.sh DATASET [OUT]"
dataset=${1:?$usage}
out=${2:-runs/study/distillation}
parallel=${PARALLEL:-1}
read -r -a extra <<< "${STUDY_FLAGS:-}"
read -r -a teacher_smoothings <<< "${TEACHER_SMOOTHINGS:-0 0.1}"
read -r -a student_smoothings <<< "${STUDENT_SMOOTHINGS:-0 0.1}"
read -r -a temperatures <<< "${TEMPERATURES:-1 4}"
read -r -a seeds <<< "${SEEDS:-0 1}"
regime=(--train-size 6000 --val-size 1000)  # the long regime's images, as smoothing_study.sh
cd "$(dirname "$0")/.."
mkdir -p "$out"

# train PLOT FLAGS...: one run of label_smoothing_loss.py, in the background under PARALLEL
train() {
  local plot=$1
  shift
  local command=(python label_smoothing_loss.py --dataset "$dataset" "${regime[@]}" "$@"
                 --plot "$plot" "${extra[@]}")
  if [ "$parallel" -le 1 ]; then "${command[@]}"; return; fi
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  echo "start $plot"
  "${command[@]}" > "${plot%.png}.log" 2>&1 &
}

for seed in "${seeds[@]}"; do
  for smoothing in "${teacher_smoothings[@]}"; do
    plot="$out/teacher_s${smoothing}_seed${seed}.png"
    if [ -f "${plot%.png}.json" ] && [ -f "${plot%.png}.keras" ]; then
      echo "skip $plot (done)"; continue
    fi
    train "$plot" --recipe overfit --smoothing "$smoothing" --seed "$seed"
  done
done
wait  # every student after every teacher; a failed teacher shows in its log

for seed in "${seeds[@]}"; do
  for smoothing in "${student_smoothings[@]}"; do
    plot="$out/student_s${smoothing}_seed${seed}.png"
    if [ -f "${plot%.png}.json" ]; then echo "skip $plot (done)"; continue; fi
    train "$plot" --recipe overfit_small --smoothing "$smoothing" --seed "$seed"
  done
  for teacher_smoothing in "${teacher_smoothings[@]}"; do
    teacher="$out/teacher_s${teacher_smoothing}_seed${seed}.keras"
    for temperature in "${temperatures[@]}"; do
      name="student_from_s${teacher_smoothing}_seed${seed}_T${temperature}"
      plot="$out/${name}_seed${seed}.png"
      if [ -f "${plot%.png}.json" ]; then echo "skip $plot (done)"; continue; fi
      if [ ! -f "$teacher" ]; then echo "skip $plot (no teacher $teacher)"; continue; fi
      train "$plot" --recipe overfit_small --smoothing 0 --seed "$seed" \
        --teacher "$teacher" --distill-temperature "$temperature"
    done
  done
done
wait  # a failed run shows in its log and by its missing JSON
python experiments/distillation_table.py "$out"/*.json --plot "$out/distillation.png"
