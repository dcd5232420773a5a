"""Grain: a faint fixed pattern of ±``amplitude`` levels added to a photo before the network,
so that flat regions (smooth skies, walls, studio backdrops, upscaled photos) get the
painting's texture instead of horizontal stripes: a convolutional network has nothing to
texture where its input does not vary along a row.

The pattern is a hash of each pixel's coordinates and channel, so it is the same in one
piece and in tiles, in a batch and alone, in every frame of a video, and in the page and
its camera (web/page/tensor.js, ``grainPlanes``, computes the same integers).  It goes
on the network's input only: strength and preserve-colour mix with the photo as it was.
Amplitude 0 leaves the input exactly as it was.
"""

from __future__ import annotations

import numpy as np

DEFAULT_GRAIN = 3  # levels of 255: the default, chosen by measurement (README, "Flat regions")
MAX_GRAIN = 32
# Mixing constants of a 32-bit integer hash (the two multiply-xorshift rounds of
# "lowbias32"), spelled the same in tensor.js.
_X, _Y, _C, _M1, _M2 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x7FEB352D, 0x846CA68B


def check_grain(amplitude: int) -> int:
    from cin_style.errors import UsageError

    if isinstance(amplitude, bool) or not isinstance(amplitude, int | np.integer) or not 0 <= amplitude <= MAX_GRAIN:
        raise UsageError(
            f"grain must be a whole number of levels from 0 (off) to {MAX_GRAIN}, got {amplitude!r}", "grain"
        )
    return int(amplitude)


def grain_rows(rows: np.ndarray, width: int, amplitude: int) -> np.ndarray:
    """int16 [len(rows), width, 3] in [-amplitude, amplitude] for these image rows."""
    y = np.asarray(rows, np.uint32)[:, None, None]
    x = np.arange(width, dtype=np.uint32)[None, :, None]
    c = np.arange(3, dtype=np.uint32)[None, None, :]
    h = (x * np.uint32(_X)) ^ (y * np.uint32(_Y)) ^ (c * np.uint32(_C))
    h ^= h >> np.uint32(16)
    h *= np.uint32(_M1)
    h ^= h >> np.uint32(15)
    h *= np.uint32(_M2)
    h ^= h >> np.uint32(16)
    # Two bytes summed: a triangular spread, most values near 0.
    spread = (h & np.uint32(255)) + ((h >> np.uint32(8)) & np.uint32(255))  # 0..510
    return (spread * np.uint32(2 * amplitude + 1) // np.uint32(511)).astype(np.int16) - np.int16(amplitude)


def with_grain(image: np.ndarray, amplitude: int, rows: np.ndarray | None = None) -> np.ndarray:
    """``image`` [h, W, 3] (uint8, or float in [0, 1]) with the grain of its rows (``rows``:
    which image rows these are; default 0..h-1) added and clipped; as it was at 0."""
    if amplitude == 0:
        return image
    rows = np.arange(image.shape[0]) if rows is None else rows
    grain = grain_rows(rows, image.shape[1], amplitude)
    if image.dtype == np.uint8:
        return np.clip(image.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    return np.clip(image + grain.astype(np.float32) / 255, 0.0, 1.0).astype(np.float32)
