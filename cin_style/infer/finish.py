"""The finish step shared by every backend and command (numpy only): colour
preservation and the mix with the photo."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cin_style.errors import ConfigError

# ITU-R BT.601 RGB → YCbCr (full range, offsets dropped: they cancel out).
_RGB_TO_YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32
)
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


@dataclass(frozen=True)
class Finish:
    """The step every path applies to a stylized image, in this order: colour
    preservation, then the mix with the photo.  ``Finish()`` changes nothing."""

    strength: float = 1.0
    preserve_color: bool = False

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"strength must be in [0, 1] (got {self.strength})")

    @property
    def is_identity(self) -> bool:
        return self.strength == 1.0 and not self.preserve_color

    def __call__(self, stylized: np.ndarray, photo: np.ndarray) -> np.ndarray:
        """float [H, W, 3] stylized and its photo, both in [0, 1] → the finished image."""
        if self.preserve_color:
            stylized = preserve_color(stylized, photo)
        if self.strength < 1:
            stylized = mix_strength(stylized, photo, self.strength)
        return stylized
