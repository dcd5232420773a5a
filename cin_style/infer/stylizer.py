"""One interface for every model file, so callers treat ``.pt`` and ``.onnx`` alike.

A ``Stylizer`` says what it can do in ``capabilities`` instead of being probed for
attributes; ``infer.loader.load_stylizer`` picks the implementation from the file.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cin_style.blend.weights import format_blend, weight_matrix, weights_from_specs
from cin_style.errors import UsageError
from cin_style.io.image import as_float_image, like_input


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
    """A loaded model.  ``device`` is what really runs ("cpu" or "cuda")."""

    path: Path
    style_names: list[str]
    device: str
    capabilities: Capabilities
    metadata: dict[str, str]  # a graph's cin_style.* metadata (baked_blend, ...); {} for a .pt model

    def run(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float32 [N, H, W, 3] in [0, 1] + [N, S] (or [N, S, h, w] with masks) → [N, H, W, 3]."""
        ...

    def run_tiled(
        self,
        image: np.ndarray,
        weights: np.ndarray,
        *,
        tile: int | None = None,
        finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        progress: Any = None,
    ) -> np.ndarray:
        """uint8 [H, W, 3] + one blend [S] → uint8 [H, W, 3] in tiles (``capabilities.tiles``)."""
        ...


def blend_for(stylizer: Stylizer, style_specs: Sequence[str] = (), normalize: bool = True) -> tuple[np.ndarray, str]:
    """The weight row and its label for ``style_specs`` (default: the first style).
    A baked graph takes no specs; its row is ignored by the graph."""
    if stylizer.capabilities.baked:
        baked_blend = stylizer.metadata.get("baked_blend") or "baked"
        if style_specs:
            raise UsageError(f"{stylizer.path} has a baked blend ({baked_blend}); drop --style")
        return np.zeros(len(stylizer.style_names), np.float32), baked_blend
    weights = weights_from_specs(
        list(style_specs) or [stylizer.style_names[0]], stylizer.style_names, normalize=normalize
    )
    return weights, format_blend(weights, stylizer.style_names)


def stylize_images(stylizer: Stylizer, images, weights, *, normalize: bool = True, batch_size: int = 8):
    """Stylize PIL images or uint8/float [H, W, 3] arrays: the Python API of every stylizer.

    ``images``: one image or a list; ``weights``: a spec string, mapping, index,
    vector or [N, S] matrix (one row per image).  Images of equal size are batched
    together.  Each result comes back as its input came (PIL → PIL, uint8 → uint8,
    float → float32 in [0, 1]); a list for a list.
    """
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    arrays, kinds = zip(*(as_float_image(image) for image in items)) if items else ((), ())
    matrix = weight_matrix(weights, stylizer.style_names, len(arrays), normalize)
    results: list[Any] = [None] * len(arrays)
    groups: dict[tuple, list[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault(array.shape, []).append(i)
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            out = stylizer.run(np.stack([arrays[i] for i in chunk]), matrix[chunk])
            for i, result in zip(chunk, out):
                results[i] = result
    results = [like_input(result, kind) for result, kind in zip(results, kinds)]
    return results[0] if single else results
