#!/usr/bin/env bash
# The bundled reference model's training, run in parts: each call trains for SECONDS (default one
# hour) on THREADS CPU threads and leaves training/reference.pt resumable; the next call continues
# it with --resume (bit for bit at the same thread count).  Recipe and reasons: training/README.md.
# Usage: bash training/run.sh [SECONDS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3600}
threads=${2:-1}
resume=()
[ -f training/reference.pt ] && resume=(--resume)
OMP_NUM_THREADS=$threads exec .venv/bin/cin-style train \
    --styles training/styles.txt --content training/train.txt --validation training/validation.txt \
    --out training/reference.pt --steps 100000 --max-seconds "$seconds" \
    --base-width 32 --residual-blocks 5 --image-size 128 --photo-size 256 --style-size 256 \
    --content-layers relu2_2 --style-layers relu1_2,relu2_2,relu3_3 \
    --content-weight 2 --style-weight 1e5 --tv-weight 0.1 --lr 1e-3 --precision bf16 \
    --batch-size 4 --seed 0 --checkpoint-every 500 --sample-every 2500 --device cpu "${resume[@]}"
