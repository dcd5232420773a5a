#!/usr/bin/env bash
# The lite model's last part: the direct run of training/lite.sh (constant rate 2e-3) goes on
# as a new run from its weights with a cosine schedule to 1 % of the rate (train --init-from):
# a constant-rate run cannot change schedule on --resume without breaking exact resume.
# Same recipe otherwise; seed 1 so the crops do not repeat the first run's opening.
# Usage: bash training/lite_tail.sh STEPS SECONDS [THREADS] [--resume]
#   the first call starts runs/lite_sweep/tail.pt from runs/lite_sweep/direct.pt; pass
#   --resume to continue it (then the starting model is not read again).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=$1 seconds=$2 threads=${3:-2}
start=(--init-from runs/lite_sweep/direct.pt)
[[ "${4:-}" == "--resume" ]] && start=(--resume)
OMP_NUM_THREADS=$threads .venv/bin/cin-style train --styles training/styles.txt --content training/train.txt \
    --validation training/validation.txt --steps "$steps" --max-seconds "$seconds" \
    --image-size 128 --photo-size 256 --style-size 256 --content-layers relu2_2 \
    --style-layers relu1_2,relu2_2,relu3_3 --content-weight 2 --style-weight 1e5 --tv-weight 0.1 \
    --lr 2e-3 --lr-schedule cosine --precision bf16 --batch-size 8 --seed 1 --checkpoint-every 250 \
    --sample-every 100000 --device cpu -q --out runs/lite_sweep/tail.pt "${start[@]}"
