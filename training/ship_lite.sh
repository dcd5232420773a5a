#!/usr/bin/env bash
# Ship the lite model: the chosen run of training/lite.sh (default the distilled one) as
#   cin_style/models/lite.pt    fp16 weights, no training state (parity-checked)
#   cin_style/models/lite.onnx  its fp16-weights graph (the light install and the web page run it)
#   training/quality/lite_validation.json  evaluate on the 16 validation photos
# and its rival's scores beside it (training/quality/lite_<run>.json).
# Usage: bash training/ship_lite.sh [RUN] [THREADS]   RUN: distill_feature (default) or direct
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-distill_feature}
export OMP_NUM_THREADS=${2:-2}
cs() { .venv/bin/cin-style "$@"; }
mkdir -p training/quality
for name in distill_feature direct; do
    cs evaluate "runs/lite_sweep/$name.pt" --content training/validation.txt --limit 16 --json -q \
        --sheet "runs/lite_sweep/${name}_sheet.jpg" > "training/quality/lite_$name.json"
done
cs export "runs/lite_sweep/$run.pt" -o cin_style/models/lite.pt --precision fp16
cs export cin_style/models/lite.pt -o cin_style/models/lite.onnx --precision fp16-weights
cp "training/quality/lite_$run.json" training/quality/lite_validation.json
