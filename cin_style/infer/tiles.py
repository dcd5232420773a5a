"""Stylize images too large to run in one piece, in bounded memory, with the untiled
network's result (numpy only: the PyTorch model and the exported tiled graph share it).

Instance norm makes every output pixel depend on statistics of the whole image at
every norm layer, so pieces that normalise themselves disagree (seams), and
statistics taken from a downscaled copy are not the full image's (docs/deploy.md
measures how far they move the output).  So the statistics here are exact: the
network runs one conv layer at a time over the whole image, in full-width row strips.

* A strip of a layer's output is computed once, from the rows of the previous layer's
  pre-norm output it reads (its own rows plus the kernel's halo), normalised on the
  way in with that layer's whole-image statistics, known by then.
* Each strip comes back in fp16 less a per-channel shift (so that fp16 keeps its
  digits), with its per-channel sums; the strips are kept as they come (a temp file
  past SPILL_BYTES) while the sums add up to the layer's statistics.
* The residual stream (each block's input plus its output) is kept the same way: the
  layer that reads it writes out the rows it computed.

So every conv runs once per output pixel, as in one piece; what tiling adds is the
halo rows read twice and copying strips in and out.  Memory is bounded by the strips
kept in memory (SPILL_BYTES for each layer's output) and the strip being computed.

A backend runs one layer's conv over a strip (``LayerBackend``); ``stylize_tiled`` drives it.
"""

from __future__ import annotations

import bisect
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cin_style.infer.grain import with_grain
from cin_style.io.memory import release_freed_memory

ALIGN = 4  # two stride-2 stages: strips start on multiples of 4 at full resolution
DEFAULT_TILE = 512  # a strip's largest array holds about STRIP_CHANNELS · DEFAULT_TILE² values
STRIP_CHANNELS = 16  # (the runtime makes a few float32 copies of a strip's input as it normalises it)
EPS = 1e-5  # ConditionalInstanceNorm2d's
# The most pixels any runtime runs in one piece (a graph without a tiled sibling, style
# masks); a stylizer that can tile does so from fewer pixels on the CPU (tiles_above).
AUTO_TILE_PIXELS = 2048 * 2048
# On the CPU, from these many pixels one piece is slower than strips (onnxruntime,
# PyTorch) or peaks past 1.5 GB (OpenVINO, PyTorch) with the bundled reference model:
# README, "Performance" (`cin-style bench sizes`).
TILE_ABOVE_PIXELS = {"onnxruntime": 1536 * 1024, "openvino": 1448 * 1448, "pytorch": 1024 * 1024}
# The layers' outputs alive at once stay in memory up to this many bytes in all; the rest go
# to temp files (_Strips), so that peak memory stays flat at any size (the reference model's
# full-resolution outputs are 768 MB each at 12 MP).  PyTorch and OpenVINO keep less: their
# own memory grows with the image (PyTorch 1.56 GiB at 12 MP, OpenVINO 1.68 GiB at 64 MP with
# 384 MiB kept; `bench sizes`, `bench memory`).
SPILL_BYTES = 384 * 2**20
KEPT_BYTES_OF_RUNTIME = {"pytorch": 128 * 2**20, "openvino": 64 * 2**20}


def kept_bytes(runtime: str) -> int:
    """How many bytes of strips a tiled run on ``runtime`` keeps in memory."""
    return min(SPILL_BYTES, KEPT_BYTES_OF_RUNTIME.get(runtime, SPILL_BYTES))


def tiles_above(runtime: str, device: str) -> int:
    """How many pixels a stylizer that can tile runs in one piece at most."""
    if device != "cpu":
        return AUTO_TILE_PIXELS
    return min(AUTO_TILE_PIXELS, TILE_ABOVE_PIXELS.get(runtime, AUTO_TILE_PIXELS))


# How a layer's conv reads its input.
CONV, DOWN, UP = "conv", "down", "up"  # stride 1; 3x3 stride 2; nearest 2x upsample then 3x3
# What its input is: the image; the previous layer's norm + ReLU; the residual stream plus
# the previous layer's norm (a block's sum).
PHOTO, NORMED, SUM = "photo", "normed", "sum"


@dataclass(frozen=True)
class Layer:
    """One conv of the network and the norm after it (named as in the tiled graph)."""

    name: str
    kind: str
    kernel: int
    scale: int  # its output is at 1/scale of the image's size
    source: str
    keeps_stream: bool = False  # its input is the residual stream's next value: it writes it out


def network_layers(residual_convs: int, outer_kernel: int) -> tuple[Layer, ...]:
    """StyleNet's convs in order: head, down1, down2, residual_<i> (two per block), up1, up2, tail."""
    residuals = tuple(
        Layer(f"residual_{i}", CONV, 3, 4, SUM if i % 2 == 0 and i else NORMED, keeps_stream=i % 2 == 0)
        for i in range(residual_convs)
    )
    return (
        Layer("head", CONV, outer_kernel, 1, PHOTO),
        Layer("down1", DOWN, 3, 2, NORMED),
        Layer("down2", DOWN, 3, 4, NORMED),
        *residuals,
        Layer("up1", UP, 3, 2, SUM if residual_convs else NORMED),
        Layer("up2", UP, 3, 1, NORMED),
        Layer("tail", CONV, outer_kernel, 1, NORMED),
    )


class LayerBackend(Protocol):
    """The network's convs one at a time, for one blend."""

    layers: tuple[Layer, ...]

    def conv(
        self,
        layer: Layer,
        rows: np.ndarray,
        norm: tuple[np.ndarray, np.ndarray] | None,
        stream: np.ndarray | None,
        shift: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``layer``'s conv over ``rows`` [1, C, h, W] (fp16; the photo's float32): the
        input rows it reads, halo and edge rows included; columns are padded as the
        network pads them.  The input x first becomes relu(x * norm[0] + norm[1]) (NORMED,
        per channel) or stream + x * norm[0] + norm[1] (SUM; ``stream`` holds the same rows).

        Returns the conv's output less ``shift`` [C'] in fp16 (CONV: one row per input
        row less the halo; DOWN: n rows from 2n + 1; UP: twice the rows and columns,
        uncropped), its per-channel sum and sum of squares [2, C'] in float32, and, for a
        ``keeps_stream`` layer, its normalised input rows in fp16."""

    def affine(self, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
        """The blended γ and β of ``layer``'s norm, [C] each."""


class _Moments:
    """Per-channel sums of shifted values (near zero, so E[x²] - E[x]² keeps its digits)."""

    def __init__(self) -> None:
        self.sums = np.zeros((2, 1))
        self.count = 0

    def add(self, sums: np.ndarray, count: int) -> None:
        self.sums = self.sums + sums.astype(np.float64)
        self.count += count

    def mean_inv_std(self, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sums[0] / self.count
        var = np.maximum(self.sums[1] / self.count - mean * mean, 0.0)
        return (mean + shift).astype(np.float32), (1.0 / np.sqrt(var + EPS)).astype(np.float32)


def _sums(x: np.ndarray) -> np.ndarray:
    """[2, C]: per-channel sum and sum of squares of [C, h, w], in float32."""
    flat = x.astype(np.float32).reshape(x.shape[0], -1)
    return np.stack([flat.sum(axis=1), np.einsum("ij,ij->i", flat, flat)])


def _edge_rows(start: int, stop: int, height: int, mode: str) -> np.ndarray:
    """Row indices start:stop of a layer ``height`` rows tall; outside it, reflected (as a
    reflection pad does) or clamped (what nearest upsampling's reflection pad reads)."""
    index = np.arange(start, stop)
    if mode == "reflect":
        index = np.abs(index)
        index = np.where(index >= height, 2 * (height - 1) - index, index)
    return np.clip(index, 0, height - 1)


class _MemoryBudget:
    """Bytes of strips one image may keep in memory, across the layers alive at once."""

    def __init__(self, limit: int):
        self.left = limit

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True

    def give(self, size: int) -> None:
        self.left += size


class _Strips:
    """A layer's output [C, H, W] kept as the row strips it was made in: in memory while
    ``budget`` allows, else in an anonymous temp file under TMPDIR."""

    def __init__(self, shape: tuple[int, int, int], dtype, budget: _MemoryBudget):
        self.shape, self.dtype, self.budget = shape, np.dtype(dtype), budget
        self.size = math.prod(shape) * self.dtype.itemsize
        self.starts: list[int] = []
        self.parts: list = []  # arrays [C, r, W], or (file offset, rows)
        self.file = None if budget.take(self.size) else tempfile.TemporaryFile(prefix="cin-style-tiles-")
        self._end = 0

    def append(self, strip: np.ndarray) -> None:
        self.starts.append(self.starts[-1] + self._rows(-1) if self.starts else 0)
        strip = np.ascontiguousarray(strip)
        if self.file is None:
            self.parts.append(strip)
            return
        os.pwrite(self.file.fileno(), strip.data, self._end)
        self.parts.append((self._end, strip.shape[1]))
        self._end += strip.nbytes

    def _rows(self, i: int) -> int:
        part = self.parts[i]
        return part[1] if isinstance(part, tuple) else part.shape[1]

    def _span(self, lo: int, hi: int) -> np.ndarray:
        """Rows lo:hi as a contiguous [C, hi - lo, W] (a kept strip itself when it is one)."""
        first = bisect.bisect_right(self.starts, lo) - 1
        part = self.parts[first]
        if not isinstance(part, tuple) and self.starts[first] == lo and part.shape[1] == hi - lo:
            return part
        channels, _, width = self.shape
        out = np.empty((channels, hi - lo, width), self.dtype)
        for i in range(first, len(self.parts)):
            start, rows, part = self.starts[i], self._rows(i), self.parts[i]
            if start >= hi:
                break
            a, b = max(lo, start), min(hi, start + rows)
            if isinstance(part, tuple):  # one read per channel: the strip is kept [C, r, W]
                assert self.file is not None
                row_bytes = width * self.dtype.itemsize
                for c in range(channels):
                    offset = part[0] + (c * rows + a - start) * row_bytes
                    os.preadv(self.file.fileno(), [out[c, a - lo : b - lo].data], offset)
            else:
                out[:, a - lo : b - lo] = part[:, a - start : b - start]
        return out

    def read(self, start: int, stop: int, mode: str) -> np.ndarray:
        """Rows start:stop as [1, C, h, W]; outside the layer, reflected (as a reflection pad
        does) or clamped (what nearest upsampling's reflection pad reads)."""
        if 0 <= start and stop <= self.shape[1]:
            return self._span(start, stop)[None]
        index = _edge_rows(start, stop, self.shape[1], mode)
        lo, hi = int(index.min()), int(index.max()) + 1
        return self._span(lo, hi)[:, index - lo][None]

    def close(self) -> None:
        if self.file is None:
            self.budget.give(self.size)
        else:
            self.file.close()
        self.parts = []


class _Photo:
    """The image as a source [3, H, W] of float32 rows in [0, 1], with its grain (grain.py)."""

    def __init__(self, image: np.ndarray, grain: int):
        self.image, self.shape, self.grain = image, (3, *image.shape[:2]), grain

    def read(self, start: int, stop: int, mode: str) -> np.ndarray:
        index = _edge_rows(start, stop, self.shape[1], mode)
        rows = with_grain(self.image[index], self.grain, rows=index).transpose(2, 0, 1)
        return (rows.astype(np.float32) / 255)[None]

    def close(self) -> None:
        pass


@dataclass
class _Output:
    """A layer's pre-norm output, kept less ``shift``; ``stats`` are the whole image's."""

    strips: _Strips
    shift: np.ndarray
    stats: tuple[np.ndarray, np.ndarray]

    def norm(self, affine: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (scale, offset) taking the kept values to the normalised ones."""
        (mean, inv_std), (gamma, beta) = self.stats, affine
        scale = inv_std * gamma
        return scale.astype(np.float32), (beta + (self.shift - mean) * scale).astype(np.float32)


def _input_rows(layer: Layer, start: int, stop: int) -> tuple[int, int, str]:
    """The input rows a layer reads for output rows start:stop, and how edges pad."""
    if layer.kind == CONV:
        halo = layer.kernel // 2
        return start - halo, stop + halo, "reflect"
    if layer.kind == DOWN:
        return 2 * start - 1, 2 * stop, "reflect"
    # UP, start even: output row r reads upsampled rows r-1..r+1, source rows (r-1)//2..(r+1)//2
    return start // 2 - 1, -(-stop // 2) + 1, "clamp"


def strip_rows(tile: int, values_per_row: int) -> int:
    """Output rows per strip: about STRIP_CHANNELS·tile² values in the strip's largest
    array (its input or its output), a multiple of ALIGN."""
    return max(ALIGN, STRIP_CHANNELS * tile * tile // max(values_per_row, 1) // ALIGN * ALIGN)


def count_steps(residual_convs: int) -> int:
    """How many progress units ``stylize_tiled`` reports for an image: one per layer and
    one for the output."""
    return 6 + residual_convs + 1


def _run_layer(
    backend: LayerBackend, layer: Layer, source, norm, stream, size: tuple[int, int], tile: int, budget: _MemoryBudget
):
    """One layer over the whole image, strip by strip: its output with its statistics, and
    the residual stream's next value when the layer writes it."""
    height, width = size

    def run(start: int, stop: int, shift: np.ndarray):
        first, last, mode = _input_rows(layer, start, stop)
        rows = source.read(first, last, mode)
        kept = None if stream is None else stream.read(first, last, mode)
        out, sums, written = backend.conv(layer, rows, norm, kept, shift)
        out = out[0]
        if layer.kind == UP:  # cut the rows and columns past this strip, and their sums
            kept = slice(2, 2 + stop - start)
            sums = sums - _sums(out[:, : kept.start]) - _sums(out[:, kept.stop :]) - _sums(out[:, kept, width:])
            out = out[:, kept, :width]
        if written is not None:
            halo = layer.kernel // 2
            written = written[0, :, halo : halo + stop - start]
        return out, sums, written

    # The shift: the mean of a few middle rows, near enough the image's to keep fp16's digits.
    middle = min(height // 2 // ALIGN * ALIGN, max(height - ALIGN, 0))
    probe, sums, _ = run(middle, min(middle + ALIGN, height), np.zeros_like(backend.affine(layer)[0]))
    shift = (sums[0] / (probe.shape[1] * probe.shape[2])).astype(np.float32)
    moments, output = _Moments(), _Strips((probe.shape[0], height, width), probe.dtype, budget)
    next_stream = _Strips((source.shape[0], *size), probe.dtype, budget) if layer.keeps_stream else None
    input_rows = {CONV: 1, DOWN: 2, UP: 0.5}[layer.kind]  # per output row
    rows = strip_rows(tile, max(int(source.shape[0] * source.shape[2] * input_rows), probe.shape[0] * width))
    for start in range(0, height, rows):
        stop = min(start + rows, height)
        out, sums, written = run(start, stop, shift)
        moments.add(sums, out.shape[1] * out.shape[2])
        output.append(out)
        if next_stream is not None:
            next_stream.append(written)
    return _Output(output, shift, moments.mean_inv_std(shift)), next_stream


def stylize_tiled(
    backend: LayerBackend,
    image: np.ndarray,
    *,
    tile: int = DEFAULT_TILE,
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    progress=None,
    grain: int = 0,
    kept: int | None = None,
) -> np.ndarray:
    """uint8 [H, W, 3] → uint8 [H, W, 3], what the untiled network gives (to rounding).

    ``tile``: each strip holds about tile² pixels.  ``finish(stylized, photo)``
    post-processes each strip (float [h, w, 3] in [0, 1]: strength and preserve-colour are
    per-pixel).  ``progress``: a tqdm-like bar; its ``total`` is set here and it is
    ``update``d as layers complete.  ``grain``: the network sees the photo with this grain
    (grain.py); the finish sees it as it is.  ``kept``: bytes of strips kept in memory
    (default SPILL_BYTES).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    if tile < 64 or tile % ALIGN:
        raise ValueError(f"tile must be a multiple of {ALIGN} and at least 64, got {tile}")
    height, width = image.shape[:2]
    half = (-(-height // 2), -(-width // 2))
    sizes = {1: (height, width), 2: half, 4: (-(-half[0] // 2), -(-half[1] // 2))}
    residual_convs = sum(layer.name.startswith("residual_") for layer in backend.layers)
    if progress is not None:
        progress.total = count_steps(residual_convs)
        progress.refresh()
    advance = progress.update if progress is not None else (lambda n: None)

    previous: _Output | None = None  # the last layer's output, and that layer
    previous_layer, stream = backend.layers[0], None
    budget = _MemoryBudget(SPILL_BYTES if kept is None else kept)
    for layer in backend.layers:
        source: _Photo | _Strips
        if layer.source == PHOTO:
            source, norm = _Photo(image, grain), None
        else:
            assert previous is not None  # the head comes first
            source, norm = previous.strips, previous.norm(backend.affine(previous_layer))
        output, next_stream = _run_layer(
            backend, layer, source, norm, stream if layer.source == SUM else None, sizes[layer.scale], tile, budget
        )
        source.close()
        if layer.source == SUM or next_stream is not None:
            if stream is not None:
                stream.close()
            stream = next_stream
        release_freed_memory()  # the strips of varying sizes fragment the heap (PyTorch's most)
        previous, previous_layer = output, layer
        advance(1)

    assert previous is not None
    scale, offset = previous.norm(backend.affine(previous_layer))
    result = np.empty_like(image)
    rows = strip_rows(DEFAULT_TILE, 3 * width)
    for start in range(0, height, rows):
        part = slice(start, min(start + rows, height))
        x = previous.strips.read(part.start, part.stop, "reflect")[0].astype(np.float32)
        x = x * scale[:, None, None] + offset[:, None, None]
        out = (1.0 / (1.0 + np.exp(-x))).transpose(1, 2, 0)
        if finish is not None:
            out = finish(out, image[part].astype(np.float32) / 255)
        result[part] = (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
    previous.strips.close()
    advance(1)
    return result


def stylize_tiled_each(
    backend_for: Callable[[np.ndarray], LayerBackend],
    images: np.ndarray,
    rows: np.ndarray,
    *,
    tile: int | None = None,
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    progress=None,
    grain: int = 0,
    kept: int | None = None,
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
                grain=grain,
                kept=kept,
            )
            for image, row in zip(images, rows)
        ]
    )
