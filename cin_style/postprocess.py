"""Post-processing shared by every backend (numpy only): mix strength and
colour preservation."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 RGB → YCbCr (full range, offsets dropped: they cancel out).
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]], dtype=np.float32)
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC).astype(np.float32)


def preserve_color(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Luminance from ``stylized``, chroma from ``content`` (Gatys et al. 2016,
    'Preserving colour in neural artistic style transfer').  [H, W, 3] in [0, 1]."""
    _check_pair(stylized, content)
    ycc = content @ _RGB_TO_YCC.T
    ycc[..., 0] = stylized @ _RGB_TO_YCC[0]
    return np.clip(ycc @ _YCC_TO_RGB.T, 0.0, 1.0).astype(np.float32)


def mix_strength(stylized: np.ndarray, content: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` 1 keeps the stylization, 0 gives back the content."""
    _check_pair(stylized, content)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    return (strength * stylized + (1.0 - strength) * content).astype(np.float32)


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two [H, W, 3] images of one size, got {a.shape} and {b.shape}")
