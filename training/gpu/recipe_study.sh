#!/usr/bin/env bash
# Issue 38, before any GPU time: how the training crop size and the style images' size move
# `evaluate`'s scores (which draw the paintings' Grams at 256 px), at small scale on the CPU.
# The GPU run of issue 28 trained 256-px crops against Grams at 512 px and came out 3.7x
# further from the paintings than the shipped model (128-px crops, Grams at 256 px).
# Four runs of the lite net on four styles, the same steps, batch and seed, crop in {128, 256}
# x style size in {256, 512}; each scored on 8 validation photos.  Writes
# training/quality/recipe_study.json.  Usage: bash training/gpu/recipe_study.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
steps=${1:-120}
py=${PYTHON:-.venv-test/bin/python}
work=$(mktemp -d /tmp/cin-style-recipe.XXXX)
printf '%s\n' ../../styles/starry_night.jpg ../../styles/great_wave.jpg ../../styles/composition_viii.jpg \
    ../../styles/pere_tanguy.jpg | sed "s#^../../#$PWD/#" > "$work/styles.txt"
results=()
for crop in 128 256; do
    for style in 256 512; do
        run=$work/c${crop}_s${style}
        started=$(date +%s)
        "$py" -m cin_style.cli.main train --styles "$work/styles.txt" --content training/train.txt \
            --out "$run.pt" --net lite --steps "$steps" --batch-size 4 --seed 0 --image-size "$crop" \
            --photo-size $((crop * 2)) --style-size "$style" --content-layers relu2_2 \
            --style-layers relu1_2,relu2_2,relu3_3 --content-weight 2 --style-weight 1e5 --tv-weight 0.1 \
            --lr 1e-3 --device cpu -q
        seconds=$(( $(date +%s) - started ))
        "$py" -m cin_style.cli.main evaluate "$run.pt" --content training/validation.txt --limit 8 --json -q \
            > "$run.json"
        results+=("{\"crop\": $crop, \"style_size\": $style, \"steps\": $steps, \"train_seconds\": $seconds, \"evaluate\": $(cat "$run.json")}")
        echo "crop $crop, style size $style: trained in ${seconds} s" >&2
    done
done
mkdir -p training/quality
(IFS=,; echo "[${results[*]}]") | "$py" -c "import json, sys; print(json.dumps(json.load(sys.stdin), indent=1))" \
    > training/quality/recipe_study.json
rm -rf "$work"
echo "wrote training/quality/recipe_study.json" >&2
