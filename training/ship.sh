#!/usr/bin/env bash
# After a training part: ship training/reference.pt as the bundled model and refresh what the
# README and the model card show.  Usage: bash training/ship.sh [THREADS]
#   cin_style/assets/models/reference.pt   fp16 weights, no training state (parity-checked)
#   cin_style/assets/models/reference.onnx the same weights as an fp16-weights graph (fp32 arithmetic;
#                                    the light install runs it)
#   docs/contact_sheet.jpg           every style and three blends on the sample photos
#   training/quality/validation.json evaluate: the 16 validation photos, every style
#   training/quality/gatys_network.json  the network on the 6 photos x 4 styles of the
#                                     optimiser comparison (training/quality/*/gatys.json)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${1:-2}
cs() { .venv/bin/cin-style "$@"; }
cs export training/reference.pt -o cin_style/assets/models/reference.pt --precision fp16
cs export cin_style/assets/models/reference.pt -o cin_style/assets/models/reference.onnx --precision fp16-weights  # torch-free installs
cs demo -o runs/ship_demo --cell 112
mkdir -p docs training/quality
.venv/bin/python -c "from PIL import Image; Image.open('runs/ship_demo/contact_sheet.jpg').save('docs/contact_sheet.jpg', quality=80, optimize=True)"
cs evaluate --content training/validation.txt --limit 16 --json -q \
    --sheet runs/validation_sheet.jpg > training/quality/validation.json
cs evaluate --content training/validation.txt --limit 6 --only starry_night,great_wave,composition_viii,pere_tanguy \
    --json -q --sheet runs/gatys_network_sheet.jpg > training/quality/gatys_network.json
