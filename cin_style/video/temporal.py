"""Temporal consistency for video: optical flow between the input frames (OpenCV's
DIS, on the CPU) carries the previous stylized frame to the current one, and the
two are blended where the flow is reliable — not where a forward-backward check
finds occlusion or disocclusion, nor where the flow leaves the frame.  Also the
warping error that measures flicker (Lai et al. 2018).
"""

from __future__ import annotations

import numpy as np

from cin_style.errors import UsageError, missing_extra


def _cv2():
    try:
        import cv2
    except ModuleNotFoundError:
        raise missing_extra("--consistency flow", "video", "OpenCV") from None
    return cv2


def _gray(frame: np.ndarray) -> np.ndarray:
    return _cv2().cvtColor(np.ascontiguousarray(frame), _cv2().COLOR_RGB2GRAY)


# Px from the frame's border within which stylized history is not carried inwards: the
# network stylizes the picture next to a border differently (padding reaches into its
# receptive field), and a pan would otherwise carry that border look across the frame.
BORDER_MARGIN = 32
BORDER_FADE = 8  # px over which trust rises to 1 at the margin (no hard seam)
BORDER_MARGIN_SHARE = 0.15
# Grey levels (of 255) the previous frame, carried along the flow, may differ from this one
# by and still count as the same surface (sensor noise and interpolation stay below it).
PHOTOMETRIC_TOLERANCE = 12.0


def pixel_grid(height: int, width: int) -> np.ndarray:
    """float32 [H, W, 2]: each pixel's own (x, y), the identity sampling map."""
    return np.dstack(np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)))


class Flow:
    """DIS optical flow between consecutive frames, with the forward-backward check."""

    def __init__(self):
        cv2 = _cv2()
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def backward(self, current: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(map, reliable): for each pixel of ``current`` where it was in ``previous``
        (float32 [H, W, 2] sampling coordinates) and whether that is trustworthy."""
        cv2 = _cv2()
        now, before = _gray(current), _gray(previous)
        back = self.dis.calc(now, before, None)  # current → previous
        fwd = self.dis.calc(before, now, None)  # previous → current
        h, w = now.shape
        grid = pixel_grid(h, w)
        where = grid + back
        # Forward flow at the point we came from should lead back here (Sundaram et al. 2010).
        fwd_there = cv2.remap(fwd, where[..., 0], where[..., 1], cv2.INTER_LINEAR)
        mismatch = ((back + fwd_there) ** 2).sum(axis=2)
        scale = (back**2).sum(axis=2) + (fwd_there**2).sum(axis=2)
        reliable = mismatch <= 0.01 * scale + 0.5
        # The flow must also explain the picture: where the previous frame, carried along it,
        # does not look like this one (new content entering the frame, where DIS's smooth
        # flow near a border says "nothing moved"), its history does not belong here.
        carried = cv2.remap(before, where[..., 0], where[..., 1], cv2.INTER_LINEAR).astype(np.float32)
        error = cv2.GaussianBlur(np.abs(carried - now.astype(np.float32)), (0, 0), 1.0)
        reliable &= error <= PHOTOMETRIC_TOLERANCE
        inside = (where[..., 0] >= 0) & (where[..., 0] <= w - 1) & (where[..., 1] >= 0) & (where[..., 1] <= h - 1)
        return where, reliable & inside


def inward_weight(where: np.ndarray) -> np.ndarray:
    """float [H, W] in [0, 1]: how far to trust history that moved inwards from the frame's
    border.  History stylized within ``border_margin`` px of the border is the border's look
    (the network's padding reaches that far), so it is not carried inwards: 0 there, rising
    over the last BORDER_FADE px to 1; 1 where the picture did not move inwards."""
    h, w = where.shape[:2]
    margin = border_margin(h, w)
    fade = min(BORDER_FADE, margin)
    grid = pixel_grid(h, w)

    def to_border(points: np.ndarray) -> np.ndarray:
        x, y = points[..., 0], points[..., 1]
        return np.minimum(np.minimum(x, w - 1 - x), np.minimum(y, h - 1 - y))

    before, now = to_border(where), to_border(grid)
    trust = np.clip((before - (margin - fade)) / fade, 0, 1)
    return np.where(before < now, trust, 1).astype(np.float32)


def border_margin(height: int, width: int) -> float:
    """BORDER_MARGIN px, or less in a small frame (at most BORDER_MARGIN_SHARE of its short
    side), where a wide band of per-frame stylization would leave little to blend."""
    return min(BORDER_MARGIN, BORDER_MARGIN_SHARE * min(height, width))


def warp(image: np.ndarray, where: np.ndarray, sharp: bool = False) -> np.ndarray:
    """``image`` sampled at ``where``; ``sharp``: Lanczos instead of bilinear, for an image
    that is warped again and again (bilinear would blur it a little more every frame)."""
    cv2 = _cv2()
    return cv2.remap(
        np.ascontiguousarray(image),
        where[..., 0],
        where[..., 1],
        cv2.INTER_LANCZOS4 if sharp else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


DEFAULT_STRENGTH = 0.95
SOFT_EDGE = 1.5  # px (σ) over which a blended area fades into an unblended one


def soft_mask(reliable: np.ndarray) -> np.ndarray:
    """float [H, W] in [0, 1]: 1 deep inside the reliable area, fading to 0 at its edge and
    0 everywhere outside it.  The fade lies inside (the area is eroded first): blurring
    outwards would blend history into pixels that have none, such as the strip of new
    picture a pan brings in, where the warp can only repeat the frame's last columns."""
    cv2 = _cv2()
    radius = int(np.ceil(2 * SOFT_EDGE))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    core = cv2.erode(reliable.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE)
    return cv2.GaussianBlur(core.astype(np.float32), (0, 0), SOFT_EDGE) * reliable


class FlowBlender:
    """out_t = stylized_t, except where the flow from the previous input frame is
    reliable: there (1 - s)·stylized_t + s·warp(out_{t-1}), s = ``strength``.
    The mask fades over a few pixels inside the reliable area, so blended areas have no
    hard edges and nothing outside it (new or uncovered picture) takes any history; and
    history is not carried inwards from the frame's border (``inward_weight``).  s =
    0.95 with Lanczos warping carries the texture along the flow rather than averaging
    it with a new one, which would wash it out (docs/video.md has the measurements);
    the rest renews at 5 % a frame."""

    def __init__(self, strength: float = DEFAULT_STRENGTH):
        if not 0 <= strength <= 1:
            raise UsageError(f"--consistency-strength must be in [0, 1], got {strength}")
        self.strength = strength
        self.flow = Flow()
        self.previous_frame: np.ndarray | None = None
        self.previous_out: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """``frame``: the input, uint8 [H, W, 3]; ``stylized``: float [H, W, 3] in [0, 1]."""
        out = stylized
        if self.previous_frame is not None and self.strength > 0:
            where, reliable = self.flow.backward(frame, self.previous_frame)
            mask = (soft_mask(reliable) * inward_weight(where))[..., None] * self.strength
            out = np.clip((1 - mask) * stylized + mask * warp(self.previous_out, where, sharp=True), 0, 1)
        self.previous_frame, self.previous_out = frame, out.astype(np.float32)
        return self.previous_out


def warping_error(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Mean |O_t - warp(O_{t-1})| over pixels the flow (taken on the inputs) finds
    reliable, averaged over t; outputs as float [H, W, 3] in [0, 1] (Lai et al. 2018)."""
    flow, errors = Flow(), []
    for t in range(1, len(inputs)):
        where, reliable = flow.backward(inputs[t], inputs[t - 1])
        diff = np.abs(outputs[t] - warp(outputs[t - 1], where)).mean(axis=2)
        if reliable.any():
            errors.append(float(diff[reliable].mean()))
    return float(np.mean(errors)) if errors else 0.0
