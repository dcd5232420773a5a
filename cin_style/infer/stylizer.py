"""One interface for every model file, so callers treat ``.pt`` and ``.onnx`` alike.

A ``Stylizer`` says what it can do in ``capabilities`` instead of being probed for
attributes; ``infer.loader.load_stylizer`` picks the implementation from the file, and
``infer.pipeline`` takes an image through it.  Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cin_style.blend.weights import format_blend, weights_from_specs
from cin_style.errors import UsageError


@dataclass(frozen=True)
class Capabilities:
    """What a stylizer can do beyond ``run`` with one blend per image.

    baked       its blend is fixed inside (a baked graph); weights are ignored
    masks       ``run`` takes per-pixel blends [N, S, h, w] (style masks)
    tiles       ``run_tiled`` works: bounded memory for any image size
    tiles_only  it runs only in tiles (the tiled graph variant)
    """

    baked: bool = False
    masks: bool = False
    tiles: bool = False
    tiles_only: bool = False


@runtime_checkable
class Stylizer(Protocol):
    """A loaded model.  ``device`` is what really runs ("cpu" or "cuda").

    ``run`` and ``run_tiled`` take the same input (``image_batch``): one image
    [H, W, 3] with one blend [S], or a batch [N, H, W, 3] with [N, S]; uint8, or
    float in [0, 1].  ``run`` gives float32 in [0, 1]; ``run_tiled`` gives uint8 (it
    finishes each tile in place, so no full-size float copy exists)."""

    path: Path
    style_names: list[str]
    device: str
    runtime: str  # what runs it: "pytorch", "onnxruntime" or "openvino"
    runtime_precision: str | None  # the arithmetic the runtime chose itself (OpenVINO: bf16 or f32), else None
    capabilities: Capabilities
    metadata: dict[str, str]  # a graph's cin_style.* metadata (baked_blend, ...); {} for a .pt model

    def run(self, images: np.ndarray, weights: Any) -> np.ndarray:
        """Images + blends (or per-pixel blends [N, S, h, w] with masks) → float32 images."""
        ...

    def run_tiled(
        self,
        images: np.ndarray,
        weights: Any,
        *,
        tile: int | None = None,
        finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        progress: Any = None,
        grain: int = 0,
    ) -> np.ndarray:
        """Images + blends → uint8 images, in tiles (``capabilities.tiles``); the network sees
        them with ``grain`` (grain.py)."""
        ...


def image_batch(images: Any, weights: Any) -> tuple[np.ndarray, Any, bool]:
    """The input convention of ``Stylizer.run`` and ``run_tiled``: (a batch [N, H, W, 3]
    as given, its weights with a leading N, whether one image came).  Other weight forms
    (a spec string, a mapping, a list) pass through: ``weight_matrix`` broadcasts them."""
    images = np.asarray(images)
    if images.ndim != 3:
        return images, weights, False
    if isinstance(weights, np.ndarray) and weights.ndim in (1, 3):  # one blend, or one per-pixel blend
        weights = weights[None]
    return images[None], weights, True


def unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 images → float32 in [0, 1]; float images as float32."""
    images = np.asarray(images)
    return images.astype(np.float32) / 255 if images.dtype == np.uint8 else images.astype(np.float32, copy=False)


def blend_for(stylizer: Stylizer, style_specs: Sequence[str] = (), normalize: bool = True) -> tuple[np.ndarray, str]:
    """The weight row and its label for ``style_specs`` (default: the first style).
    A baked graph takes no specs; its row is ignored by the graph."""
    if stylizer.capabilities.baked:
        baked_blend = stylizer.metadata.get("baked_blend") or "baked"
        if style_specs:
            raise UsageError(
                f"{stylizer.path.name} has a baked blend ({baked_blend}) and takes no style", parameter="style"
            )
        return np.zeros(len(stylizer.style_names), np.float32), baked_blend
    weights = weights_from_specs(
        list(style_specs) or [stylizer.style_names[0]], stylizer.style_names, normalize=normalize
    )
    return weights, format_blend(weights, stylizer.style_names)
