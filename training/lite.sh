#!/usr/bin/env bash
# Issue 15's lite model, continued from the 20-minute race of training/lite_sweep.sh: the
# distilled run (pixel + relu2_2 feature error, the --feature-weight default) and the direct
# run (the reference recipe's perceptual loss) each resume for SECONDS more on one thread,
# side by side, so both get the same CPU time; the better one on the validation photos ships.
# Usage: bash training/lite.sh [SECONDS]   (checkpoints in runs/lite_sweep/)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
common=(--styles training/styles.txt --content training/train.txt --validation training/validation.txt
        --steps 100000 --max-seconds "$seconds" --net lite --device cpu -q --resume)
OMP_NUM_THREADS=1 .venv/bin/cin-style train "${common[@]}" --out runs/lite_sweep/distill_feature.pt \
    --teacher bundled > runs/lite_sweep/distill_feature.part2.log 2>&1 &
OMP_NUM_THREADS=1 .venv/bin/cin-style train "${common[@]}" --out runs/lite_sweep/direct.pt \
    > runs/lite_sweep/direct.part2.log 2>&1 &
wait
