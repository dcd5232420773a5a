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
from cin_style.infer.scale import check_style_scale, stylize_at_scale
from cin_style.io.image import ImageError, as_float_image, like_input, to_uint8


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


def use_tiles(stylizer: Stylizer, height: int, width: int, tile: int | None, masks: bool = False) -> bool:
    """Whether to stylize in tiles: a tiles-only graph always does; a stylizer that can
    tile when asked (``tile``) or above AUTO_TILE_PIXELS (not with style masks).  An
    image above AUTO_TILE_PIXELS that cannot go in tiles is refused (ImageError): in
    one piece it would need several GiB."""
    from cin_style.infer.tiles import AUTO_TILE_PIXELS

    can = stylizer.capabilities
    if masks:
        if tile is not None or can.tiles_only:
            raise UsageError(
                "style masks do not run in tiles yet: drop --tile, or use a .pt model or a graph exported with --masks"
            )
        if height * width > AUTO_TILE_PIXELS:
            raise ImageError(
                f"{width}x{height} is above the {AUTO_TILE_PIXELS / 1e6:.1f} MP that style masks run in "
                f"(they do not tile yet); scale it down with --max-size"
            )
        return False
    if can.tiles_only:
        return True
    if can.tiles:
        return tile is not None or height * width > AUTO_TILE_PIXELS
    if tile is not None:
        raise UsageError(
            f"{stylizer.path} cannot run in tiles: use a .pt model or a graph exported with `cin-style export --tiled`"
        )
    if height * width > AUTO_TILE_PIXELS:
        raise ImageError(
            f"{width}x{height} is above the {AUTO_TILE_PIXELS / 1e6:.1f} MP that {stylizer.path.name} "
            f"runs in one piece, and it has no tiled sibling for bounded memory: "
            f"`cin-style export MODEL -o {stylizer.path.name}` writes both, or use the .pt model"
        )
    return False


def stylize_photo(
    stylizer: Stylizer, photo: np.ndarray, weights: np.ndarray, *, style_scale: float = 1.0, tile: int | None = None
) -> np.ndarray:
    """The network's output for one uint8 [H, W, 3] photo, float [H, W, 3] in [0, 1], before
    any finish: in tiles when ``use_tiles`` says so; strokes ``style_scale`` times larger
    through ``infer.scale`` (the network then runs on the photo shrunk by that factor)."""

    def run(image: np.ndarray) -> np.ndarray:
        if use_tiles(stylizer, image.shape[0], image.shape[1], tile):
            return stylizer.run_tiled(image, weights, tile=tile).astype(np.float32) / 255
        return stylizer.run(image[None].astype(np.float32) / 255, weights[None])[0]

    if check_style_scale(style_scale) == 1.0:
        return run(photo)
    return stylize_at_scale(run, photo, style_scale)


def stylize_images(
    stylizer: Stylizer, images, weights, *, normalize: bool = True, batch_size: int = 8, style_scale: float = 1.0
):
    """Stylize PIL images or uint8/float [H, W, 3] arrays: the Python API of every stylizer.

    ``images``: one image or a list; ``weights``: a spec string, mapping, index,
    vector or [N, S] matrix (one row per image).  Images of equal size are batched
    together.  Each result comes back as its input came (PIL → PIL, uint8 → uint8,
    float → float32 in [0, 1]); a list for a list.  ``style_scale`` > 1 makes the
    strokes that many times larger (``infer.scale``; images go one at a time then).
    """
    single = not isinstance(images, (list, tuple))
    items = [images] if single else list(images)
    arrays, kinds = zip(*(as_float_image(image) for image in items)) if items else ((), ())
    matrix = weight_matrix(weights, stylizer.style_names, len(arrays), normalize)
    results: list[Any] = [None] * len(arrays)
    if check_style_scale(style_scale) != 1.0:
        scaled = [stylize_photo(stylizer, to_uint8(a), row, style_scale=style_scale) for a, row in zip(arrays, matrix)]
        scaled = [like_input(result, kind) for result, kind in zip(scaled, kinds)]
        return scaled[0] if single else scaled
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
