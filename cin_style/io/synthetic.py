"""Synthetic images for tests, benchmarks and parity checks: no data files needed.

``textured`` is the one test texture (ramps, a sine-cosine field and an XOR
pattern: every scale has detail, so instance-norm statistics are well defined),
the same formula as the browser page's (web/page/tensor.js texturedRgba);
``smooth_field`` has photo-like low-frequency statistics instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def textured(height: int, width: int, seed: int | None = None, noise: float = 0.0) -> np.ndarray:
    """uint8 [H, W, 3]; with ``seed``, Gaussian noise of σ ``noise`` (in 0-255 units) on top."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(xx * 7 + yy * 3) % 256, 127.5 + 127.5 * np.sin(xx / 5) * np.cos(yy / 7), ((xx ^ yy) * 5) % 256], axis=2
    ).astype(np.float64)
    if seed is not None and noise > 0:
        base = base + np.random.default_rng(seed).normal(0, noise, base.shape)
    return np.clip(base.round(), 0, 255).astype(np.uint8)


def smooth_field(height: int, width: int, seed: int, cell: int = 16) -> np.ndarray:
    """float32 [H, W, 3] in [0, 1]: random colours constant over ``cell``-px squares, plus
    a little fine noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((-(-height // cell), -(-width // cell), 3), dtype=np.float32)
    image = np.kron(coarse, np.ones((cell, cell, 1), np.float32))[:height, :width]
    return np.clip(image + 0.1 * rng.random(image.shape, dtype=np.float32), 0, 1)


def write_smooth_images(folder: Path, count: int, size: int, seed: int) -> Path:
    """``count`` PNG files of ``smooth_field`` (size², seeds from ``seed``) in ``folder``."""
    from cin_style.io.image import save_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        save_image(folder / f"img{i:02d}.png", smooth_field(size, size, int(rng.integers(2**31))))
    return folder
