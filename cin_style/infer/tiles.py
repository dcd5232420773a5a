"""Stylize images too large for memory, in tiles, with the untiled result
(numpy only: the PyTorch model and the exported tiled graph share it).

Instance norm makes every output pixel depend on statistics of the whole image at
every norm layer, so tiles that normalise themselves disagree (seams), and
statistics taken from a downscaled copy are not the full image's (docs/deploy.md
measures how far they move the output).  So the statistics here are exact, gathered
layer by layer:

* The full- and half-resolution layers (head, down1, down2 and, at the end, up1,
  up2, tail) are cheap per pixel: they are recomputed tile by tile, once per norm
  layer whose statistics are still missing, with a halo wider than their
  receptive field so that each tile's core is what the whole image gives.
* The quarter-resolution activation after down2 (4·width channels on 1/16 of the
  pixels: 8 values per pixel, 0.5 GB in fp16 for an 8K photo) is kept whole and
  the residual blocks, most of the arithmetic, run on it once, layer by layer,
  in row strips.

The halos cost extra arithmetic over one untiled pass (docs/design-notes.md), in
exchange for memory bounded by two quarter-resolution buffers plus one tile.  Tile origins sit on multiples of 4
so both stride-2 grids line up with the untiled network's.

A backend runs the network's pieces (``TileBackend``); ``stylize_tiled`` drives it.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

ALIGN = 4  # two stride-2 stages: tile origins on multiples of 4 keep the grids aligned
FRONT_HALO = 16  # full-res px, > receptive field of head + down1 + down2 (7 px)
BACK_HALO = 16  # full-res px, > receptive field of up1 + up2 + tail (~7 px)
STRIP_ROWS = 32  # quarter-res rows per residual-conv strip (taller strips peak higher at 8K)
DEFAULT_TILE = 512
EPS = 1e-5  # ConditionalInstanceNorm2d's
FRONT = ("head", "down1", "down2")
BACK = ("up1", "up2", "tail")
# `stylize` tiles images above this many pixels by default: untiled, larger images need
# several GiB (`cin-style bench big` measures it).
AUTO_TILE_PIXELS = 2048 * 2048
# A quarter-resolution buffer larger than this lives in a temp file (_SpilledBuffer) so that
# peak memory stays flat past 8K (each buffer is 1 GiB at 64 MP with the reference model).
SPILL_BYTES = 256 * 2**20

Stats = dict[str, tuple[np.ndarray, np.ndarray]]  # norm layer → (mean [C], 1/std [C])


class TileBackend(Protocol):
    """The network in pieces, for one blend.  Arrays are float32 [1, C, H, W]."""

    residual_convs: int  # 2 per residual block

    def front(self, crop: np.ndarray, stats: Stats, fetch: str) -> np.ndarray:
        """``fetch`` in FRONT: that layer's conv output before its norm (the layers
        before it normalised with ``stats``); "quarter": down2's normalised output."""

    def residual_conv(self, index: int, padded: np.ndarray) -> np.ndarray:
        """Residual conv ``index`` (3x3, no padding of its own) before its norm."""

    def residual_affine(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """That conv's norm's γ and β for the blend, [C] each."""

    def back(
        self, quarter: np.ndarray, half_hw: tuple[int, int], full_hw: tuple[int, int], stats: Stats, fetch: str
    ) -> np.ndarray:
        """``fetch`` in BACK: that conv's output before its norm; "stylized": the output."""


@dataclass
class _Moments:
    """Per-channel sums over the whole image, in float64."""

    total: np.ndarray | float = 0.0
    squares: np.ndarray | float = 0.0
    count: int = 0

    def add(self, x: np.ndarray) -> None:
        x = x.astype(np.float64)
        self.total = self.total + x.sum(axis=(0, 2, 3))
        self.squares = self.squares + np.einsum("nchw,nchw->c", x, x)
        self.count += x.shape[0] * x.shape[2] * x.shape[3]

    def mean_inv_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.total / self.count)
        var = np.maximum(self.squares / self.count - mean * mean, 0.0)
        return mean.astype(np.float32), (1.0 / np.sqrt(var + EPS)).astype(np.float32)


@dataclass(frozen=True)
class Tile:
    """A core region (rows y0:y1, cols x0:x1, full resolution) and its crop with halo."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int

    def core(self, scale: int) -> tuple[slice, slice, slice, slice]:
        """The core, in crop coordinates, of a layer at 1/scale resolution."""
        top, left = (self.y0 - self.cy0) // scale, (self.x0 - self.cx0) // scale
        return (
            slice(None),
            slice(None),
            slice(top, top + _span(self.y0, self.y1, scale)),
            slice(left, left + _span(self.x0, self.x1, scale)),
        )


def _span(start: int, stop: int, scale: int) -> int:
    # A layer at 1/scale has ceil(n / scale) positions; start is a multiple of scale.
    return math.ceil(stop / scale) - start // scale


def tiles(height: int, width: int, tile: int, halo: int) -> list[Tile]:
    out = []
    for y0 in range(0, height, tile):
        for x0 in range(0, width, tile):
            y1, x1 = min(y0 + tile, height), min(x0 + tile, width)
            out.append(
                Tile(
                    y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo), max(0, x0 - halo), min(width, x1 + halo)
                )
            )
    return out


def count_steps(height: int, width: int, tile: int, residual_convs: int) -> int:
    """How many progress units ``stylize_tiled`` reports for an image."""
    count = len(range(0, height, tile)) * len(range(0, width, tile))
    return 8 * count + residual_convs


def _normalize(x: np.ndarray, stats: tuple[np.ndarray, np.ndarray], affine) -> np.ndarray:
    (mean, inv_std), (gamma, beta) = stats, affine
    scale = (inv_std * gamma)[None, :, None, None]
    return x * scale + (beta - mean * inv_std * gamma)[None, :, None, None]


class _SpilledBuffer:
    """A [C, H, W] array in an anonymous temp file (under TMPDIR), mapped only while one
    slice is read or written: its pages are the OS's file cache, not this process's memory."""

    def __init__(self, shape: tuple[int, ...], dtype):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self._file = tempfile.TemporaryFile(prefix="cin-style-tiles-")
        self._file.truncate(math.prod(self.shape) * self.dtype.itemsize)

    def _mapped(self) -> np.memmap:
        return np.memmap(self._file, self.dtype, "r+", shape=self.shape)

    def __getitem__(self, key) -> np.ndarray:
        return np.array(self._mapped()[key])  # a copy: the mapping goes when this returns

    def __setitem__(self, key, value) -> None:
        self._mapped()[key] = value

    def close(self) -> None:
        self._file.close()


def _quarter_buffer(shape: tuple[int, ...], dtype):
    """A whole quarter-resolution buffer: in memory, or spilled above SPILL_BYTES."""
    if math.prod(shape) * np.dtype(dtype).itemsize > SPILL_BYTES:
        return _SpilledBuffer(shape, dtype)
    return np.empty(shape, dtype)


def _padded_strip(source: np.ndarray, r0: int, r1: int) -> np.ndarray:
    """Rows r0:r1 of a whole [C, H, W] buffer with the 1-px border a 3x3 conv needs:
    real neighbour rows inside the image, reflection at its edges (as ConvCIN pads)."""
    height = source.shape[1]
    x = source[None, :, max(r0 - 1, 0) : min(r1 + 1, height)].astype(np.float32)
    x = np.pad(x, ((0, 0), (0, 0), (int(r0 == 0), int(r1 == height)), (1, 1)), mode="reflect")
    return x


def _residual_conv(
    backend: TileBackend, index: int, source: np.ndarray, target: np.ndarray, skip: np.ndarray | None = None
) -> None:
    """target = conv ``index`` with its norm over the whole quarter-res buffer, in strips:
    a pass for the statistics (the pre-norm output parked in ``target``), a pass that
    normalises in place (+ ReLU; for a block's second conv + ``skip``, written to ``skip``)."""
    height = source.shape[1]
    moments = _Moments()
    pending = None  # written one strip late: the next strip still reads these source rows
    for r0 in range(0, height, STRIP_ROWS):
        r1 = min(r0 + STRIP_ROWS, height)
        out = backend.residual_conv(index, _padded_strip(source, r0, r1))
        moments.add(out)
        if pending is not None:
            target[:, pending[0] : pending[1]] = pending[2]
        pending = (r0, r1, out[0])
    assert pending is not None  # height >= 1: the loop ran
    target[:, pending[0] : pending[1]] = pending[2]
    stats, affine = moments.mean_inv_std(), backend.residual_affine(index)
    for r0 in range(0, height, STRIP_ROWS):
        rows = slice(r0, min(r0 + STRIP_ROWS, height))
        y = _normalize(target[None, :, rows].astype(np.float32), stats, affine)[0]
        if skip is not None:
            skip[:, rows] = skip[:, rows].astype(np.float32) + y
        else:
            target[:, rows] = np.maximum(y, 0)


def stylize_tiled(
    backend: TileBackend,
    image: np.ndarray,
    *,
    tile: int = DEFAULT_TILE,
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    progress=None,
    buffer_dtype=np.float16,
) -> np.ndarray:
    """uint8 [H, W, 3] → uint8 [H, W, 3], what the untiled network gives (to rounding).

    ``finish(stylized, photo)`` post-processes each tile (float [h, w, 3] in [0, 1]:
    strength and preserve-colour are per-pixel).  ``progress``: a tqdm-like bar; its
    ``total`` is set here and it is ``update``d as tile passes complete.  The two quarter-resolution buffers are
    ``buffer_dtype`` (fp16: activations after instance norm are O(1)).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    if tile < 64 or tile % ALIGN:
        raise ValueError(f"tile must be a multiple of {ALIGN} and at least 64, got {tile}")
    height, width = image.shape[:2]
    if progress is not None:
        progress.total = count_steps(height, width, tile, backend.residual_convs)
        progress.refresh()
    advance = progress.update if progress is not None else (lambda n: None)
    stats: Stats = {}

    def photo(t: Tile) -> np.ndarray:
        crop = image[t.cy0 : t.cy1, t.cx0 : t.cx1].astype(np.float32) / 255
        return np.ascontiguousarray(crop.transpose(2, 0, 1)[None])

    def gather(layer: str, run: Callable[[Tile], np.ndarray], scale: int, grid: list[Tile]) -> None:
        moments = _Moments()
        for t in grid:
            moments.add(run(t)[t.core(scale)])
            advance(1)
        stats[layer] = moments.mean_inv_std()

    # 1. Front: head, down1, down2 statistics (a tile pass each), then the quarter buffer.
    front_grid = tiles(height, width, tile, FRONT_HALO)
    for layer, scale in zip(FRONT, (1, 2, 4)):
        gather(layer, lambda t: backend.front(photo(t), stats, layer), scale, front_grid)
    quarter_hw = (math.ceil(math.ceil(height / 2) / 2), math.ceil(math.ceil(width / 2) / 2))
    quarter = None
    for t in front_grid:
        out = backend.front(photo(t), stats, "quarter")[t.core(4)][0]
        if quarter is None:
            quarter = _quarter_buffer((out.shape[0], *quarter_hw), buffer_dtype)
        quarter[:, t.y0 // 4 : t.y0 // 4 + out.shape[1], t.x0 // 4 : t.x0 // 4 + out.shape[2]] = out
        advance(1)
    assert quarter is not None  # the grid covers the image: at least one tile ran
    # 2. Residual blocks on the whole quarter buffer, conv by conv.
    scratch = _quarter_buffer(quarter.shape, quarter.dtype)
    for index in range(0, backend.residual_convs, 2):
        _residual_conv(backend, index, quarter, scratch)
        advance(1)
        _residual_conv(backend, index + 1, scratch, scratch, skip=quarter)
        advance(1)
    if isinstance(scratch, _SpilledBuffer):
        scratch.close()
    del scratch
    # 3. Back: up1, up2, tail statistics (a tile pass each), then the output.
    back_grid = tiles(height, width, tile, BACK_HALO)

    def back(t: Tile, fetch: str) -> np.ndarray:
        crop = quarter[None, :, t.cy0 // 4 : math.ceil(t.cy1 / 4), t.cx0 // 4 : math.ceil(t.cx1 / 4)]
        # The untiled net doubles and crops to ceil(H/2), then doubles and crops to H; a
        # tile that reaches the image's edge doubles and crops at that same edge.
        half = tuple(
            min(2 * (c0 // 4 + n), math.ceil(size / 2)) - c0 // 2
            for c0, n, size in zip((t.cy0, t.cx0), crop.shape[2:], (height, width))
        )
        full = tuple(min(2 * (c0 // 2 + n), size) - c0 for c0, n, size in zip((t.cy0, t.cx0), half, (height, width)))
        return backend.back(crop.astype(np.float32), half, full, stats, fetch)

    for layer, scale in zip(BACK, (2, 1, 1)):
        gather(layer, lambda t: back(t, layer), scale, back_grid)
    result = np.empty_like(image)
    for t in back_grid:
        out = back(t, "stylized")[t.core(1)][0].transpose(1, 2, 0)
        if finish is not None:
            out = finish(out, image[t.y0 : t.y1, t.x0 : t.x1].astype(np.float32) / 255)
        result[t.y0 : t.y1, t.x0 : t.x1] = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
        advance(1)
    if isinstance(quarter, _SpilledBuffer):
        quarter.close()
    return result


def stylize_tiled_each(
    backend_for: Callable[[np.ndarray], TileBackend],
    images: np.ndarray,
    rows: np.ndarray,
    *,
    tile: int | None = None,
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    progress=None,
) -> np.ndarray:
    """A batch [N, H, W, 3] (uint8, or float in [0, 1]) and its blends [N, S] → uint8
    [N, H, W, 3], one image at a time; ``backend_for(row)`` is the network for one blend."""
    from cin_style.io.image import to_uint8

    return np.stack(
        [
            stylize_tiled(
                backend_for(row),
                image if image.dtype == np.uint8 else to_uint8(image),
                tile=tile or DEFAULT_TILE,
                finish=finish,
                progress=progress,
            )
            for image, row in zip(images, rows)
        ]
    )
