#!/bin/bash
# The video experiment (docs/videos.md): render, train classifiers, test them on held-out virtual subjects
# (simulator and PainDiffusion motion), per view. One process, one thread per run.
# Smaller than the CLI defaults (87 subjects x 20 clips per class at 160 px would take hours of one core).
# Settings (environment):
#   D        output folder (default data/videos)
#   N        subjects (default 24: vs001..vs024 of the default 87-person population)
#   CLIPS    clips per class per subject (default 4)
#   CLASSES  classes to film (default all five; BL1,PA4 for the binary task alone)
#   TASKS    default "binary 5class"
#   RUNS     classifiers (default "c3d vit-gru"): c3d, vit-gru (ViTPain + GRU head), and with the stats head
#            vit, face, vit+face, code (the face-code reader, fine-tuned here)
#   READER_STEPS  fine-tuning steps per face-code reader of the code encoder (default 3000; 3 readers are tuned)
#   SKIP_RENDER=1 to reuse the clips
# The held-out subjects' PainDiffusion clips: pd96 (the val subjects, where the classifier is chosen) and pdtest96
# (the test subjects, reported). The shipped run: D=data/videos87 N=87 CLIPS=10 CLASSES=BL1,PA4 TASKS=binary RUNS="c3d vit-gru vit face vit+face code" READER_STEPS=2000
set -euo pipefail
D=${D:-data/videos}
N=${N:-24}
CLIPS=${CLIPS:-4}
CLASSES=${CLASSES:-BL1,PA1,PA2,PA3,PA4}
TASKS=${TASKS:-"binary 5class"}
RUNS=${RUNS-"c3d vit-gru"}
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 MKL_NUM_THREADS=1
py="python3 -m painface.cli"
if [ "${SKIP_RENDER:-0}" != 1 ]; then
  $py synth videos --out $D/sim96 --subjects $N --views front,side --size 96 --clips $CLIPS --classes $CLASSES --quiet
  for split in val test; do  # PainDiffusion clips of the held-out subjects: pd96 (val), pdtest96 (test)
    out=$D/pd96; [ $split = test ] && out=$D/pdtest96
    $py synth videos --out $out --subjects $N --split $split --source paindiffusion --views front,side --size 96 \
      --clips $CLIPS --classes $CLASSES --quiet
  done
fi
tests=$D/pd96
[ -d $D/pdtest96 ] && tests="$tests $D/pdtest96"
mkdir -p $D/runs
for task in $TASKS; do
  for run in $RUNS; do
    case $run in
      c3d) opts="--encoder c3d --epochs 30 --lr 2e-3" ;;
      vit-gru) opts="--encoder vit --head gru --width 32 --epochs 60 --lr 3e-3" ;;
      code) opts="--encoder code --head stats --reader-steps ${READER_STEPS:-3000}" ;;
      *) opts="--encoder $run --head stats" ;;
    esac
    $py train-video --data $D/sim96 --test $tests $opts --task $task --cache $D/cache \
      --out $D/runs/${run}_$task.safetensors --scores $D/runs/${run}_$task.csv --quiet
  done
done
