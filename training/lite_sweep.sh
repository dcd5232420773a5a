#!/usr/bin/env bash
# Issue 15's lite-model race: the lite net (--net lite) trained three ways for the same time,
# one thread each, side by side.  Validation scores the perceptual loss of the reference
# recipe every 500 steps, so the three and the reference model compare directly.
#   distill_pixel   learns the bundled reference model's outputs (pixel MSE only)
#   distill_feature the same plus the relu2_2 feature error (weight 0.01)
#   direct          the reference recipe's perceptual loss, no teacher
# Usage: bash training/lite_sweep.sh [SECONDS]   (results in runs/lite_sweep/)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-1200}
mkdir -p runs/lite_sweep
common=(--styles training/styles.txt --content training/train.txt --validation training/validation.txt
        --steps 100000 --max-seconds "$seconds" --net lite --image-size 128 --photo-size 256
        --style-size 256 --content-layers relu2_2 --style-layers relu1_2,relu2_2,relu3_3
        --content-weight 2 --style-weight 1e5 --tv-weight 0.1 --lr 2e-3 --precision bf16
        --batch-size 8 --seed 0 --checkpoint-every 250 --sample-every 100000 --device cpu -q)
run() { local name=$1; shift
        OMP_NUM_THREADS=1 .venv/bin/cin-style train "${common[@]}" --out "runs/lite_sweep/$name.pt" "$@" \
            > "runs/lite_sweep/$name.log" 2>&1; }
run distill_pixel --teacher bundled --feature-weight 0 &
run distill_feature --teacher bundled --feature-weight 0.01 &
run direct &
wait
