"""One image's path through a model, for every adapter: the files of `stylize` and
`batch`, the service's batcher, video frames and the Python API.  The adapters keep
their own I/O; the decision below lives only here.

Each image takes one route, decided from its size alone (so an adapter can decode a
tiled photo straight to uint8, a quarter of a float copy):

    scaled  strokes ``style_scale`` times larger: the network runs on the photo shrunk
            by that factor (infer/scale.py), itself in tiles when still large
    tiled   in tiles, in bounded memory (infer/tiles.py): a tiles-only graph, a ``tile``
            size asked for, or an image above ``tiles.tiles_above`` its runtime
    whole   one run of the network; images of one size go together, ``batch_size`` a run

then the finish step (strength, preserve-colour: infer/finish.py) and uint8.
Torch-free.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cin_style.blend.weights import weight_matrix
from cin_style.errors import UsageError
from cin_style.infer import tiles
from cin_style.infer.finish import Finish
from cin_style.infer.grain import DEFAULT_GRAIN, check_grain, with_grain
from cin_style.infer.scale import (
    AUTO_STYLE_SCALE,
    DEFAULT_STYLE_SCALE,
    check_style_scale,
    scale_for,
    small_size,
    stylize_at_scale,
)
from cin_style.infer.stylizer import Stylizer, unit_float
from cin_style.io.image import ImageError, as_float_image, like_input, to_uint8

SCALED, TILED, WHOLE = "scaled", "tiled", "whole"
DEFAULT_BATCH_SIZE = 8
# A step between the network and the finish: (photo uint8 [H, W, 3], stylized float) → float
# (video's flow consistency).
BeforeFinish = Callable[[np.ndarray, np.ndarray], np.ndarray]


def use_tiles(stylizer: Stylizer, height: int, width: int, tile: int | None, masks: bool = False) -> bool:
    """Whether an image goes in tiles: a tiles-only graph always does; a stylizer that can
    tile does when asked (``tile``) or above ``tiles.tiles_above`` its runtime (not with
    style masks).  An image above AUTO_TILE_PIXELS that cannot go in tiles is refused
    (ImageError): in one piece it would need several GiB."""
    can, limit = stylizer.capabilities, tiles.AUTO_TILE_PIXELS
    if masks:
        if tile is not None or can.tiles_only:
            raise UsageError("style masks do not run in tiles yet", parameter="tile")
        if height * width > limit:
            raise ImageError(
                f"{width}x{height} is above the {limit / 1e6:.1f} MP that style masks run in "
                f"(they do not tile yet); scale it down"
            )
        return False
    if can.tiles_only:
        return True
    if can.tiles:
        return tile is not None or height * width > tiles.tiles_above(stylizer.runtime, stylizer.device)
    if tile is not None:
        raise UsageError(
            f"{stylizer.path.name} cannot run in tiles: a graph without its tiled sibling", parameter="tile"
        )
    if height * width > limit:
        raise ImageError(
            f"{width}x{height} is above the {limit / 1e6:.1f} MP that {stylizer.path.name} runs in one "
            f"piece, and it has no tiled sibling for bounded memory: scale the image down, or export the "
            f"model again (that writes both graphs)"
        )
    return False


@dataclass(frozen=True)
class Pipeline:
    """How every image of a job goes through ``stylizer``: ``grain`` on the network's input
    (flat regions get texture: grain.py), ``finish`` after the network, strokes
    ``style_scale`` times larger, ``tile``-px tiles when asked (else by size)."""

    stylizer: Stylizer
    finish: Finish = field(default_factory=Finish)
    style_scale: float | str = DEFAULT_STYLE_SCALE  # or "auto": by the photo's size (scale.scale_for)
    tile: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    grain: int = DEFAULT_GRAIN

    def __post_init__(self):
        object.__setattr__(self, "style_scale", check_style_scale(self.style_scale))
        object.__setattr__(self, "grain", check_grain(self.grain))
        if self.tile is not None and (self.tile < 64 or self.tile % tiles.ALIGN):
            raise UsageError(f"tile must be a multiple of {tiles.ALIGN}, at least 64, got {self.tile}", "tile")
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {self.batch_size}", "batch_size")

    def scale_for(self, height: int, width: int) -> float:
        """The style scale an image of this size runs at."""
        return scale_for(self.style_scale, width, height)

    def route(self, height: int, width: int, *, masks: bool = False) -> str:
        """SCALED, TILED or WHOLE for an image of this size; what cannot run is refused
        here, before any decoding (UsageError for options, ImageError for the image)."""
        return self.plan(height, width, masks=masks)[0]

    def plan(self, height: int, width: int, *, masks: bool = False) -> tuple[str, float]:
        """(route, the style scale it runs at): ``route`` and what it says about the scale."""
        if masks and not self.stylizer.capabilities.masks:
            raise UsageError(
                f"{self.stylizer.path.name} takes one blend per image; style masks need a .pt model "
                f"or a graph exported with masks",
                parameter="masks",
            )
        scale = self.scale_for(height, width)
        if scale != 1.0:
            if masks:
                if self.style_scale == AUTO_STYLE_SCALE:  # masks keep the network's own stroke size
                    return (TILED if self._tiled(height, width, masks) else WHOLE), 1.0
                raise UsageError("style scale and style masks do not go together yet", parameter="style_scale")
            small_size(width, height, scale)  # too small to shrink: refused now
            return SCALED, scale
        return (TILED if self._tiled(height, width, masks) else WHOLE), 1.0

    def _tiled(self, height: int, width: int, masks: bool = False) -> bool:
        return use_tiles(self.stylizer, height, width, self.tile, masks)

    def stylize(
        self,
        photos: Sequence[np.ndarray],
        weights: np.ndarray,
        *,
        before_finish: BeforeFinish | None = None,
        as_float: bool = False,
        label: str | None = None,
        finishes: Sequence[Finish] | None = None,
    ) -> list[np.ndarray]:
        """Photos of one size, [H, W, 3] uint8 or float in [0, 1], and their blends [N, S]
        (per-pixel [N, S, h, w] with style masks) → the finished images, uint8 [H, W, 3]
        (float32 in [0, 1] with ``as_float``).  ``label`` draws a progress bar for a tiled
        photo; ``finishes``: one per photo (the service batches requests that differ in it)."""
        if not len(photos):
            return []
        if finishes is not None and len(finishes) != len(photos):
            raise ValueError(f"{len(finishes)} finishes for {len(photos)} photos")
        finishes = list(finishes) if finishes is not None else [self.finish] * len(photos)
        weights = np.asarray(weights, np.float32)
        height, width = photos[0].shape[:2]
        route = self.route(height, width, masks=weights.ndim == 4)
        if route == WHOLE:
            out: list[np.ndarray] = []
            for start in range(0, len(photos), self.batch_size):
                chunk = photos[start : start + self.batch_size]
                floats = np.stack([unit_float(p) for p in chunk])
                network_input = (
                    np.stack([unit_float(with_grain(p, self.grain)) for p in chunk]) if self.grain else floats
                )
                stylized = self.stylizer.run(network_input, weights[start : start + len(chunk)])
                for i, (photo, photo_float, result) in enumerate(zip(chunk, floats, stylized), start):
                    out.append(self._finished(photo, result, finishes[i], before_finish, as_float, photo_float))
            return out
        results = []
        for photo, row, finish in zip(photos, weights, finishes):
            photo = photo if photo.dtype == np.uint8 else to_uint8(photo)
            if route == SCALED:
                scale = self.scale_for(height, width)
                if before_finish is None:  # the finish runs in the upsampling's strips: no full-size float copy
                    results.append(
                        stylize_at_scale(
                            lambda small: self.network(small, row),
                            photo,
                            scale,
                            finish=None if finish.is_identity else finish,
                            as_uint8=not as_float,
                        )
                    )
                    continue
                result = stylize_at_scale(lambda small: self.network(small, row), photo, scale)
            elif before_finish is None:  # the finish runs inside the tiles: no full-size float copy
                with _bar(label) as bar:
                    done = self.stylizer.run_tiled(
                        photo, row, tile=self.tile, finish=finish, progress=bar, grain=self.grain
                    )
                results.append(unit_float(done) if as_float else done)
                continue
            else:
                result = unit_float(self.stylizer.run_tiled(photo, row, tile=self.tile, grain=self.grain))
            results.append(self._finished(photo, result, finish, before_finish, as_float))
        return results

    def network(self, image: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The network alone on a uint8 image [H, W, 3] with one blend [S] (no style scale,
        no finish): float [H, W, 3] in [0, 1], in tiles where needed; with the grain."""
        if self._tiled(image.shape[0], image.shape[1]):
            return unit_float(self.stylizer.run_tiled(image, row, tile=self.tile, grain=self.grain))
        return self.stylizer.run(with_grain(image, self.grain), row)

    def _finished(
        self,
        photo: np.ndarray,
        stylized: np.ndarray,
        finish: Finish,
        before_finish: BeforeFinish | None,
        as_float: bool,
        photo_float: np.ndarray | None = None,
    ) -> np.ndarray:
        if before_finish is not None:
            stylized = before_finish(photo if photo.dtype == np.uint8 else to_uint8(photo), stylized)
        if not finish.is_identity:  # a full-size float copy of the photo only when needed
            stylized = finish(stylized, unit_float(photo) if photo_float is None else photo_float)
        return stylized if as_float else to_uint8(stylized)


def _bar(label: str | None):
    if label is None:
        return contextlib.nullcontext()
    from cin_style.progress import progress

    return progress(0, f"{label} in tiles")


def stylize_images(
    stylizer: Stylizer,
    images: Any,
    weights: Any,
    *,
    normalize: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    style_scale: float | str = DEFAULT_STYLE_SCALE,
    tile: int | None = None,
    grain: int = DEFAULT_GRAIN,
):
    """Stylize PIL images or uint8/float [H, W, 3] arrays.

    ``images``: one image or a list; ``weights``: a spec string, mapping, index,
    vector or [N, S] matrix (one row per image).  Images of equal size are batched
    together; large ones go in tiles.  Each result comes back as its input came
    (PIL → PIL, uint8 → uint8, float → float32 in [0, 1]); a list for a list.
    ``style_scale`` > 1 makes the strokes that many times larger, "auto" by the image's
    size (``infer.scale``);
    ``grain`` (levels, 0 off) gives flat regions texture (``infer.grain``).
    """
    single = not isinstance(images, list | tuple)
    items = [images] if single else list(images)
    arrays, kinds = zip(*(as_float_image(image) for image in items)) if items else ((), ())
    matrix = weight_matrix(weights, stylizer.style_names, len(arrays), normalize)
    pipeline = Pipeline(stylizer, style_scale=style_scale, tile=tile, batch_size=batch_size, grain=grain)
    results: list[Any] = [None] * len(arrays)
    groups: dict[tuple, list[int]] = {}
    for i, array in enumerate(arrays):
        groups.setdefault(array.shape, []).append(i)
    for indices in groups.values():
        out = pipeline.stylize([arrays[i] for i in indices], matrix[indices], as_float=True)
        for i, result in zip(indices, out):
            results[i] = like_input(result, kinds[i])
    return results[0] if single else results
