#!/bin/bash
# The shipped video experiment (docs/videos.md): render, train the two encoders on both tasks, test on
# held-out virtual subjects (simulator and PainDiffusion motion), per view. One process, one thread.
# Smaller than the CLI defaults (87 subjects x 20 clips per class at 160 px would take hours of one core):
# N subjects (default 24: vs001..vs024 of the default 87-person population; 18 train / 6 val), 4 clips per
# class, views front and side, 96 px.
set -euo pipefail
D=${D:-data/videos}
N=${N:-24}
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 MKL_NUM_THREADS=1
py="python3 -m painface.cli"
if [ "${SKIP_RENDER:-0}" != 1 ]; then
  $py synth videos --out $D/sim96 --subjects $N --views front,side --size 96 --clips 4
  $py synth videos --out $D/pd96 --subjects $N --split val --source paindiffusion --views front,side --size 96 --clips 4
fi
mkdir -p $D/runs
for task in binary 5class; do
  $py train-video --data $D/sim96 --test $D/pd96 --encoder c3d --task $task --epochs 30 --lr 2e-3 \
    --cache $D/cache --out $D/runs/c3d_$task.safetensors --scores $D/runs/c3d_$task.csv --quiet
  $py train-video --data $D/sim96 --test $D/pd96 --encoder vit --task $task --width 32 --epochs 60 --lr 3e-3 \
    --cache $D/cache --out $D/runs/vit_$task.safetensors --scores $D/runs/vit_$task.csv --quiet
done
