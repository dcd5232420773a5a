"""Style scale: brush strokes S times larger in output pixels, for any model and runtime.

The network learned its textures at the training crop's scale, so on a large photo they
look small.  At scale S the network runs on the photo shrunk by S (area average), and
its output comes back to full size by joint bilateral upsampling guided by the
full-resolution photo's luminance: the network's own values, so the texture keeps its
larger size, with transitions snapped to the photo's edges.  S = 1 is the network
unchanged.  Two other upsamplers are kept for `cin-style bench style-scale`: a fast
guided filter (He and Sun 2015), which models the output as a local linear function of
the photo's luminance and so trades the network's texture for the photo's (measured:
closer to the photo, farther from the painting), and plain bilinear.

This is a pre/post step around the graph: the runner, the PyTorch model and the page
(web/page/tensor.js) apply the same one.  numpy + Pillow only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from cin_style.errors import ConfigError
from cin_style.io.image import MIN_SIDE, to_uint8

MAX_STYLE_SCALE = 16.0
# `--style-scale auto`: the network sees about AUTO_NETWORK_PIXELS, the photo shrunk by
# sqrt(pixels / AUTO_NETWORK_PIXELS) in quarter steps, never by less than 1 (so photos up
# to about 1.3 MP run as they are).  Chosen by measurement and by eye (README, "Stroke size").
AUTO_STYLE_SCALE = "auto"
AUTO_NETWORK_PIXELS = 1024 * 1024
DEFAULT_STYLE_SCALE = AUTO_STYLE_SCALE
RADIUS = 2  # the guided filter's window radius, in low-resolution pixels
EPS = 1e-2  # its regularisation
SIGMA = 0.1  # joint bilateral upsampling: the luminance scale (of 1) of its range weights
RANGE_FLOOR = 1e-3
METHODS = ("bilateral", "guided", "bilinear")
STRIP_ROWS = 256  # full-resolution rows per step of the final pass (bounded memory)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def check_style_scale(scale: float | str) -> float | str:
    """A valid style scale as float (or "auto"), else a ConfigError (one line)."""
    if isinstance(scale, str) and scale.strip().lower() == AUTO_STYLE_SCALE:
        return AUTO_STYLE_SCALE
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ConfigError(f"style scale must be a number >= 1 or auto, got {scale!r}") from None
    if not math.isfinite(value) or not 1.0 <= value <= MAX_STYLE_SCALE:
        raise ConfigError(f"style scale must be in [1, {MAX_STYLE_SCALE:g}], got {scale!r}")
    return value


def scale_for(scale: float | str, width: int, height: int) -> float:
    """The style scale a ``width`` x ``height`` photo runs at: ``scale``, or for "auto" the
    one at which the network sees about AUTO_NETWORK_PIXELS."""
    if scale != AUTO_STYLE_SCALE:
        return float(scale)
    wanted = math.sqrt(width * height / AUTO_NETWORK_PIXELS)
    return min(MAX_STYLE_SCALE, max(1.0, math.floor(wanted * 4) / 4))


def small_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """The network's input size at ``scale``: the photo's size / scale, rounded."""
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    if min(size) < MIN_SIDE:
        raise ConfigError(
            f"style scale {scale:g} shrinks {width}x{height} to {size[0]}x{size[1]}, under the "
            f"network's {MIN_SIDE} px; use a smaller scale"
        )
    return size


def shrink(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 [H, W, 3] → uint8 [h, w, 3] by area averaging (Pillow's box filter)."""
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BOX))


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _LUMA


def box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over (2r+1)² windows, clipped at the borders (each window's own count), [h, w, ...]."""
    h, w = x.shape[:2]
    padded = np.zeros((h + 1, w + 1, *x.shape[2:]), np.float64)
    padded[1:, 1:] = np.cumsum(np.cumsum(x, axis=0, dtype=np.float64), axis=1)
    y0 = np.clip(np.arange(h) - radius, 0, h)
    y1 = np.clip(np.arange(h) + radius + 1, 0, h)
    x0 = np.clip(np.arange(w) - radius, 0, w)
    x1 = np.clip(np.arange(w) + radius + 1, 0, w)
    total = padded[y1][:, x1] - padded[y0][:, x1] - padded[y1][:, x0] + padded[y0][:, x0]
    count = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).astype(np.float64)
    return (total / count.reshape(h, w, *([1] * (x.ndim - 2)))).astype(np.float32)


def guided_coefficients(
    guide_small: np.ndarray, stylized_small: np.ndarray, radius: int = RADIUS, eps: float = EPS
) -> tuple[np.ndarray, np.ndarray]:
    """(a, b), each [h, w, 3], smoothed: stylized ≈ a * guide + b per window."""
    guide = guide_small[:, :, None]
    mean_i, mean_p = box(guide, radius), box(stylized_small, radius)
    cov = box(guide * stylized_small, radius) - mean_i * mean_p
    var = box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a, radius), box(b, radius)


def _bilinear_axis(full: int, small: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a half-pixel-centred bilinear resize small → full."""
    position = np.clip((np.arange(full) + 0.5) * small / full - 0.5, 0, small - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, small - 1)
    return low, high, (position - low).astype(np.float32)


def guided_upsample(stylized_small: np.ndarray, photo: np.ndarray, guide_small: np.ndarray) -> np.ndarray:
    """float [h, w, 3] network output + uint8 [H, W, 3] photo (and its shrunk luminance
    [h, w]) → float [H, W, 3] in [0, 1], in row strips (no full-size float temporaries
    beyond the result)."""
    height, width = photo.shape[:2]
    a, b = guided_coefficients(guide_small, stylized_small)
    ylow, yhigh, yw = _bilinear_axis(height, a.shape[0])
    xlow, xhigh, xw = _bilinear_axis(width, a.shape[1])
    out = np.empty((height, width, 3), np.float32)
    for r0 in range(0, height, STRIP_ROWS):
        rows = slice(r0, min(r0 + STRIP_ROWS, height))
        wy = yw[rows][:, None, None]
        coef = []
        for c in (a, b):
            top = c[ylow[rows]] * (1 - wy) + c[yhigh[rows]] * wy
            coef.append(top[:, xlow] * (1 - xw[None, :, None]) + top[:, xhigh] * xw[None, :, None])
        guide = luminance(photo[rows]) / 255.0
        out[rows] = np.clip(coef[0] * guide[:, :, None] + coef[1], 0.0, 1.0)
    return out


def joint_bilateral_upsample(
    stylized_small: np.ndarray,
    photo: np.ndarray,
    guide_small: np.ndarray,
    sigma: float = SIGMA,
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    as_uint8: bool = False,
) -> np.ndarray:
    """float [h, w, 3] network output + uint8 [H, W, 3] photo (and its shrunk luminance
    [h, w]) → float [H, W, 3]: bilinear upsampling whose four weights are also weighted by
    how close each low-resolution sample's luminance is to the full-resolution pixel's
    (joint bilateral upsampling, Kopf et al. 2007, on the bilinear footprint).  The output
    keeps the network's own values, so its texture keeps its larger size, while a
    transition snaps to the side of the photo's edge each pixel belongs to.  Row strips;
    ``finish(strip, photo strip)`` runs on each, and ``as_uint8`` keeps only uint8 (no
    full-size float copy: a 64 MP photo's would be 768 MB)."""
    height, width = photo.shape[:2]
    ylow, yhigh, yw = _bilinear_axis(height, stylized_small.shape[0])
    xlow, xhigh, xw = _bilinear_axis(width, stylized_small.shape[1])
    gain = -0.5 / (sigma * sigma)
    out = np.empty((height, width, 3), np.uint8 if as_uint8 else np.float32)
    for r0 in range(0, height, STRIP_ROWS):
        rows = slice(r0, min(r0 + STRIP_ROWS, height))
        guide = luminance(photo[rows]) / 255.0
        total = np.zeros(guide.shape, np.float32)
        acc = np.zeros((*guide.shape, 3), np.float32)
        for yi, wy in ((ylow[rows], 1 - yw[rows]), (yhigh[rows], yw[rows])):
            for xi, wx in ((xlow, 1 - xw), (xhigh, xw)):
                near = guide_small[yi][:, xi]
                # A floor on the range weight: a pixel unlike all four samples falls back to bilinear.
                weight = wy[:, None] * wx[None, :] * (np.exp(gain * (guide - near) ** 2) + RANGE_FLOOR)
                acc += weight[:, :, None] * stylized_small[yi][:, xi]
                total += weight
        strip = np.clip(acc / total[:, :, None], 0.0, 1.0)
        if finish is not None:
            strip = finish(strip, photo[rows].astype(np.float32) / 255)
        out[rows] = to_uint8(strip) if as_uint8 else strip
    return out


def stylize_at_scale(
    run_small: Callable[[np.ndarray], np.ndarray],
    photo: np.ndarray,
    scale: float | str,
    method: str = "bilateral",
    finish: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    as_uint8: bool = False,
) -> np.ndarray:
    """uint8 [H, W, 3] photo → float [H, W, 3] stylized with strokes ``scale`` times larger.
    ``run_small``: uint8 [h, w, 3] → float [h, w, 3] in [0, 1] (the network, any runtime).
    ``method``: one of METHODS (the first is what every command uses; ``finish`` and
    ``as_uint8``, as in ``joint_bilateral_upsample``, go with it only)."""
    if (finish is not None or as_uint8) and method != "bilateral":
        raise ConfigError("finish and as_uint8 go with the bilateral method only")
    if method not in METHODS:
        raise ConfigError(f"style-scale method must be one of {', '.join(METHODS)}, got {method!r}")
    height, width = photo.shape[:2]
    scale = scale_for(check_style_scale(scale), width, height)
    small = shrink(photo, small_size(width, height, scale))
    stylized = run_small(small)
    if method == "bilinear":
        return np.clip(
            np.stack(
                [
                    np.asarray(Image.fromarray(stylized[:, :, c]).resize((width, height), Image.Resampling.BILINEAR))
                    for c in range(3)
                ],
                axis=2,
            ),
            0.0,
            1.0,
        )
    if method == "guided":
        return guided_upsample(stylized, photo, luminance(small) / 255.0)
    return joint_bilateral_upsample(stylized, photo, luminance(small) / 255.0, finish=finish, as_uint8=as_uint8)
