#!/usr/bin/env bash
# Dumoulin et al.'s claim, checked at a small budget: one 4-style model against four single-style
# models trained with the same recipe and the same steps per style (the 4-style model takes
# STEPS steps, each single-style model STEPS/4), all scored by `cin-style evaluate` on the 16
# validation photos.  Usage: bash training/dumoulin.sh [STEPS] [RECIPE ARGS...]  (runs/dumoulin/)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-800}
shift || true
recipe=("$@")
out=runs/dumoulin
mkdir -p "$out"
common=(--content training/train.txt --lr 2e-3 --content-weight 2 --style-weight 1e5 --tv-weight 0.1
        --checkpoint-every 200 --sample-every 1000000 --device cpu -q "${recipe[@]}")
train() {  # out name, steps, styles...  (a model already scored is kept)
    local name=$1 n=$2; shift 2
    [ -s "$out/${name}_eval.json" ] && return 0
    local styles=()
    for s in "$@"; do styles+=(--styles "$s"); done
    OMP_NUM_THREADS=1 .venv/bin/cin-style train "${styles[@]}" --steps "$n" --out "$out/$name.pt" \
        "${common[@]}" > "$out/$name.log" 2>&1
    .venv/bin/cin-style evaluate "$out/$name.pt" --content training/validation.txt --limit 16 \
        --json -q --sheet "$out/${name}_sheet.jpg" > "$out/${name}_eval.json"
}
mapfile -t paintings < <(grep -v '^#' training/sweep_styles.txt | sed 's#^#training/#')
train multi "$steps" "${paintings[@]}"
for p in "${paintings[@]}"; do
    train "single_$(basename "${p%.*}")" $((steps / 4)) "$p"
done
