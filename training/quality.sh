#!/usr/bin/env bash
# The model card's quality measurements for MODEL (default: training/reference.pt), written as
# JSON under training/quality/ (tables: training/tables.py).  Steps, each skippable by name:
#   validation  evaluate on the 16 validation photos, every style
#   gatys       the direct method (L-BFGS, VGG19) on 6 validation photos x 4 styles, scored
#               beside the network on the same photos (the optimiser side does not depend on
#               the model: rerun with GATYS=skip to keep it)
#   demo        the 3-minute demo model (demo --train, 286 steps: its CPU budget's worth) on the
#               same 16 photos
#   addstyle    add harvesters with the CIN-only fine-tune; time, losses, old rows bit-identical
# Usage: bash training/quality.sh [MODEL] [STEP...]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-training/reference.pt}
shift || true
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(validation gatys demo addstyle)
out=training/quality
mkdir -p "$out" runs
cs() { OMP_NUM_THREADS=${THREADS:-1} .venv/bin/cin-style "$@"; }
four=starry_night,great_wave,composition_viii,pere_tanguy
for step in "${steps[@]}"; do
    case $step in
    validation)
        cs evaluate "$model" --content training/validation.txt --limit 16 --json -q \
            --sheet runs/validation_sheet.jpg > "$out/validation.json" ;;
    gatys)
        cs evaluate "$model" --content training/validation.txt --limit 6 --only "$four" \
            --with-optimize --optimize-steps 40 --json -q --sheet runs/gatys_sheet.jpg > "$out/gatys.json" ;;
    demo)
        cs demo --train --steps 286 -o runs/demo3min > runs/demo3min.log 2>&1
        cs evaluate runs/demo3min/model.pt --content training/validation.txt --limit 16 --json -q \
            --sheet runs/demo3min_sheet.jpg > "$out/demo3min.json" ;;
    addstyle)
        start=$(date +%s)
        cs add-style "$model" styles/harvesters.jpg --content training/train.txt \
            -o runs/with_harvesters.pt --steps 500 -q
        seconds=$(( $(date +%s) - start ))
        cs evaluate runs/with_harvesters.pt --content training/validation.txt --limit 16 --json -q \
            --sheet runs/with_harvesters_sheet.jpg > "$out/with_harvesters.json"
        .venv/bin/python - "$model" runs/with_harvesters.pt "$seconds" > "$out/addstyle.json" <<'PY'
import json, sys, torch
from cin_style.nn.checkpoint import load_model
old, old_names = load_model(sys.argv[1])
new, new_names = load_model(sys.argv[2])
n = len(old_names)
same_rows = all(torch.equal(a.gamma, b.gamma[:n]) and torch.equal(a.beta, b.beta[:n])
                for a, b in zip(old.cin_layers(), new.cin_layers()))
rest = {k: v for k, v in new.state_dict().items() if not k.endswith(("gamma", "beta"))}
same_rest = all(torch.equal(v, old.state_dict()[k]) for k, v in rest.items())
x = torch.rand(2, 3, 96, 80, generator=torch.Generator().manual_seed(0))
w_old = torch.eye(n)[:2]
w_new = torch.cat([w_old, torch.zeros(2, len(new_names) - n)], dim=1)
with torch.no_grad():
    same_out = torch.equal(old(x, w_old), new(x, w_new))
print(json.dumps({"steps": 500, "seconds": int(sys.argv[3]), "styles": new_names,
                  "old_rows_bit_identical": same_rows, "shared_weights_bit_identical": same_rest,
                  "old_styles_outputs_bit_identical": same_out}, indent=2))
PY
        ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
    esac
done
