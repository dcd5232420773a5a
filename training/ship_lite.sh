#!/usr/bin/env bash
# Ship the lite model: a run in runs/lite_sweep/ (default tail, the cosine tail of
# training/lite_tail.sh) as
#   cin_style/assets/models/lite.pt    fp16 weights, no training state (parity-checked)
#   cin_style/assets/models/lite.onnx  its fp16-weights graph (the light install and the web page run it)
#   training/quality/lite_validation.json  evaluate on the 16 validation photos
# with the run's own scores kept as training/quality/lite_<run>.json.
# Usage: bash training/ship_lite.sh [RUN] [THREADS]   RUN: tail (default), direct or distill_feature
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-tail}
export OMP_NUM_THREADS=${2:-2}
cs() { .venv/bin/cin-style "$@"; }
mkdir -p training/quality
cs evaluate "runs/lite_sweep/$run.pt" --content training/validation.txt --limit 16 --json -q \
    --sheet "runs/lite_sweep/${run}_sheet.jpg" > "training/quality/lite_$run.json"
cs export "runs/lite_sweep/$run.pt" -o cin_style/assets/models/lite.pt --precision fp16
cs export cin_style/assets/models/lite.pt -o cin_style/assets/models/lite.onnx --precision fp16-weights
cp "training/quality/lite_$run.json" training/quality/lite_validation.json
