#!/usr/bin/env bash
# Issue 38's device check, the last of its calls: the earlier calls each carried one part of
# .gpu-carry/ort/ (training/gpu/ort_gpu.sh pack) and moved it to $PARTS, outside the checkout;
# this one joins them into $SITE (sha256 checked), installs the packages of ours the GPU image
# lacks (.gpu-carry/wheels/, from training/gpu/prepare.sh) outside the checkout too, and runs
# training/gpu/ort_check.py; the results file and the log go to $OUT.
# DRY_RUN=1 here: the join and its check on this machine, then the check with this venv's own
# onnxruntime on the CPU provider (the joined cp312 build is for the device's Python 3.12).
set -euo pipefail
cd "$(dirname "$0")/../.."
parts=${PARTS:-/tmp/cin-style-ort-parts}
site=${SITE:-/tmp/cin-style-ort-site}
out=${OUT:-/tmp/cin-style-ort-out}
mkdir -p "$out"
[ -d "$site/onnxruntime" ] || bash training/gpu/ort_gpu.sh unpack "$parts" "$site"
if [ "${DRY_RUN:-0}" = 1 ]; then
    py=${PYTHON:-.venv-test/bin/python}
    export DRY_RUN=1
else
    py=python3
    "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/cin-style-deps .gpu-carry/wheels/*.whl
    export PYTHONPATH=$site:/tmp/cin-style-deps:$PWD
fi
"$py" training/gpu/ort_check.py "$out/ort_cuda.json" 2>&1 | tee "$out/ort_check.log"
