"""Per-region style masks: ``NAME=mask.png`` pairs → a per-pixel weight map
[S, h, w] for the network (numpy only, shared by PyTorch and the ONNX runner).

A mask is a greyscale image of weights (white = 1), resized to the photo.  Where
the masks add up to less than 1 the rest of the weight goes to the global blend
(``--style``, by default the first style); every pixel's weights are then scaled
to sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cin_style.blend.weights import BlendError, resolve_style
from cin_style.errors import UsageError
from cin_style.io.image import ImageError, load_image

# The map is resized inside the network to each norm layer anyway; past this long
# side a larger map only costs memory (S maps of floats).
MAX_MAP_SIDE = 1024


def parse_mask_specs(specs: Sequence[str]) -> list[tuple[str, Path]]:
    """``["sky=sky.png", "town=town.png"]`` → [(style, path), ...]."""
    pairs = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"--style-mask takes NAME=MASK.png, got {spec!r}")
        pairs.append((name.strip(), Path(path.strip())))
    return pairs


def map_size(height: int, width: int) -> tuple[int, int]:
    scale = min(1.0, MAX_MAP_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def load_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A greyscale weight image → float32 [h, w] in [0, 1] at ``size`` (h, w)."""
    grey = load_image(path).mean(axis=2)
    image = Image.fromarray(grey.astype(np.float32), mode="F").resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(image, np.float32), 0, 1)


def weight_map(
    masks: Sequence[tuple[str, Path]], style_names: Sequence[str], base: np.ndarray, height: int, width: int
) -> np.ndarray:
    """float32 [S, h, w] per-pixel blends for a height x width photo; ``base`` [S] is the
    global blend that fills what the masks leave uncovered."""
    h, w = map_size(height, width)
    covered = np.zeros((h, w), np.float32)
    out = np.zeros((len(style_names), h, w), np.float32)
    for name, path in masks:
        try:
            index = resolve_style(name, style_names)
        except BlendError as exc:
            raise UsageError(f"--style-mask: {exc}") from None
        try:
            mask = load_mask(path, (h, w))
        except ImageError as exc:
            raise UsageError(f"--style-mask {name}: {exc}") from None
        out[index] += mask
        covered += mask
    out += np.maximum(0.0, 1.0 - covered)[None] * np.asarray(base, np.float32)[:, None, None]
    total = out.sum(axis=0, keepdims=True)
    return out / np.maximum(total, 1e-12)
