#!/usr/bin/env bash
# Prepares, on this (networked) machine, everything training/gpu/check.sh needs on a GPU machine
# that can fetch nothing: .gpu-carry/ (ignored by git; the device tool carries it) with
#   vgg16_relu4_3_fp16.pt   the loss network's weights up to relu4_3, fp16 (15 MB)
#   data/train/, data/validation/, data/styles.txt, data/train.txt, data/validation.txt
#                           the reference recipe's photos (short side SHORT px) and the 16 paintings
#   peers/                  pytorch/examples' fast_neural_style (from ../shared/peers)
#   wheels/                 the packages of ours the GPU image lacks (platformdirs, pytorch-msssim, the serve extra)
# Usage: bash training/gpu/prepare.sh [SHORT]   (default 320: 256-px crops with room to move)
set -euo pipefail
cd "$(dirname "$0")/../.."
short=${1:-320}
carry=.gpu-carry
grep -qx "/$carry/" .git/info/exclude 2>/dev/null || echo "/$carry/" >> .git/info/exclude
rm -rf "$carry" && mkdir -p "$carry"/data/train "$carry"/data/validation "$carry"/wheels
py=${PYTHON:-.venv/bin/python}

"$py" - "$carry" "$short" <<'PY'
import sys
from pathlib import Path

import torch
from PIL import Image

from cin_style.nn.vgg_weights import load_state_dict_file, resolve_vgg_weights

carry, short = Path(sys.argv[1]), int(sys.argv[2])
state, preprocessing = load_state_dict_file(resolve_vgg_weights("vgg16"), "vgg16")
keep = [f"conv{b}_{i}" for b, n in zip(range(1, 5), (2, 2, 3, 3)) for i in range(1, n + 1)]
slim = {f"{c}.{p}": state[f"{c}.{p}"].half() for c in keep for p in ("weight", "bias")}
torch.save({**slim, "preprocessing": preprocessing}, carry / "vgg16_relu4_3_fp16.pt")


def listed(name: str) -> list[Path]:
    lines = (Path("training") / name).read_text().splitlines()
    return [(Path("training") / line).resolve() for line in lines if line.strip() and not line.startswith("#")]


for split in ("train", "validation"):
    names = []
    for src in listed(f"{split}.txt"):
        image = Image.open(src).convert("RGB")
        scale = short / min(image.size)
        if scale < 1:
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        out = carry / "data" / split / f"{src.parent.name}_{src.stem}.jpg"
        image.save(out, quality=92)
        names.append(f"{split}/{out.name}")
    (carry / "data" / f"{split}.txt").write_text("\n".join(names) + "\n")
styles = [f"../../styles/{p.name}" for p in listed("styles.txt")]
(carry / "data" / "styles.txt").write_text("\n".join(styles) + "\n")
print(f"{len(list((carry / 'data' / 'train').iterdir()))} training and "
      f"{len(list((carry / 'data' / 'validation').iterdir()))} validation photos, {len(styles)} styles")
PY

cp -r ../shared/peers/pytorch-examples-fast-neural-style "$carry/peers"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$carry/wheels" platformdirs pytorch-msssim click tqdm \
    fastapi starlette pydantic pydantic-core uvicorn h11 python-multipart prometheus-client \
    anyio sniffio idna annotated-types annotated-doc typing-inspection typing-extensions  # the serve extra (issue 38)
du -sh "$carry"
echo "carry it: run(command='bash training/gpu/check.sh', carry=['$carry'], timeout_s=600)"
