#!/usr/bin/env bash
# onnxruntime-gpu for a lent GPU machine that can fetch nothing (issue 38).  Its image has a
# CPU-only onnxruntime; the CUDA provider's wheel is 256 MB and one device call carries 64 MiB
# in all, the working tree included.  So:
#
#   pack   on this (networked) machine: download the onnxruntime-gpu wheel for the device's
#          Python (cp312), drop what the Python module never loads (capi/libonnxruntime.so.*,
#          the C API library; the TensorRT provider), tar | xz -9, and split it into parts
#          small enough to ride beside the working tree, in .gpu-carry/ort/ (ignored by git)
#          with the archive's sha256.
#   unpack on the device: join the parts (each carried by one call, moved out of the checkout
#          at once: a warm machine keeps what calls leave outside it), check the sha256, untar
#          into SITE; then PYTHONPATH=SITE, and onnxruntime.preload_dlls() (or importing torch
#          first) finds the CUDA 13 libraries of torch's nvidia wheels.
#   dry-run pack (unless packed), unpack here and import the result with a Python 3.12
#          with numpy ($PYTHON312, default python3.12): the CPU provider of the same wheel runs the
#          bundled lite graph, and the providers it offers are listed.
#
# Usage: bash training/gpu/ort_gpu.sh pack | unpack PARTS_DIR SITE | dry-run
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${ORT_VERSION:-1.31.1}
carry=.gpu-carry/ort
call_limit_mb=64

pack() {
    grep -qx "/.gpu-carry/" .git/info/exclude 2>/dev/null || echo "/.gpu-carry/" >> .git/info/exclude
    rm -rf "$carry" && mkdir -p "$carry"
    local work
    work=$(mktemp -d)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 -d "$work" "onnxruntime-gpu==$version"
    (cd "$work" && python3 -m zipfile -e onnxruntime_gpu-*.whl site >/dev/null)
    rm -f "$work"/site/onnxruntime/capi/libonnxruntime.so.* "$work"/site/onnxruntime/capi/libonnxruntime_providers_tensorrt.so
    tar -C "$work/site" -cf - . | xz -9 -T"${XZ_THREADS:-1}" > "$work/ort.tar.xz"
    # What the working tree leaves of one call, with 4 MiB to spare.
    local tree_mb part_mb
    tree_mb=$(git ls-files -z | xargs -0 du -cb | tail -1 | awk '{print int($1 / 1048576) + 1}')
    part_mb=$((call_limit_mb - tree_mb - 4))
    [ "$part_mb" -ge 8 ] || { echo "the working tree (${tree_mb} MiB) leaves no room for parts" >&2; exit 2; }
    split -b "${part_mb}M" -d -a 2 "$work/ort.tar.xz" "$carry/ort.tar.xz.part-"
    (cd "$work" && sha256sum ort.tar.xz | awk '{print $1}') > "$carry/SHA256"
    echo "$version" > "$carry/VERSION"
    rm -rf "$work"
    echo "$(ls "$carry"/ort.tar.xz.part-* | wc -l) parts of at most ${part_mb} MiB in $carry ($(du -sh "$carry" | cut -f1))"
}

unpack() {
    local parts=$1 site=$2
    mkdir -p "$site"
    local got
    got=$(cat "$parts"/ort.tar.xz.part-* | tee >(xz -dc | tar -C "$site" -xf -) | sha256sum | awk '{print $1}')
    wait
    if [ "$got" != "$(cat "$parts/SHA256")" ]; then
        echo "the joined archive's sha256 is $got, not $(cat "$parts/SHA256"): a part is missing or damaged" >&2
        exit 1
    fi
    echo "onnxruntime-gpu $(cat "$parts/VERSION") in $site: PYTHONPATH=$site"
}

dry_run() {
    [ -f "$carry/SHA256" ] || pack
    local site
    site=$(mktemp -d)
    unpack "$carry" "$site"
    PYTHONPATH=$site "${PYTHON312:-python3.12}" - <<'PY'
import json
import sys

import numpy as np
import onnxruntime as ort

print("onnxruntime", ort.__version__, "from", ort.__file__)
print("providers offered:", ort.get_available_providers())
session = ort.InferenceSession("cin_style/assets/models/lite.onnx", providers=["CPUExecutionProvider"])
names = json.loads(session.get_modelmeta().custom_metadata_map["cin_style.style_names"])
out = session.run(None, {"image": np.random.rand(1, 3, 64, 64).astype(np.float32),
                         "style_weights": np.eye(len(names), dtype=np.float32)[:1]})[0]
assert out.shape == (1, 3, 64, 64) and np.isfinite(out).all()
assert "CUDAExecutionProvider" in ort.get_available_providers(), "not the GPU build"
print("the lite graph ran on its CPU provider:", out.shape, "- dry run ok")
PY
    rm -rf "$site"
}

case "${1:-}" in
    pack) pack ;;
    unpack) unpack "$2" "$3" ;;
    dry-run) dry_run ;;
    *) echo "usage: $0 pack | unpack PARTS_DIR SITE | dry-run" >&2; exit 2 ;;
esac
