"""One memory budget for every image the service holds: uploaded, decoding, waiting,
running and encoding all count, from the moment the upload is read until its answer is
written.  A request whose estimate does not fit what is left gets 503 with Retry-After
at once: it never waits, so it never waits out a deadline either.  One request is always
admitted when nothing else is in flight, so any image the limits allow can be served.

The estimate is deliberately generous (measured peaks are in docs/service.md); it comes
from the image's header before anything is decoded, so a pixel bomb costs nothing.
Torch-free.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cin_style.infer.pipeline import WHOLE
from cin_style.infer.tiles import DEFAULT_TILE, SPILL_BYTES, STRIP_CHANNELS
from cin_style.io.memory import release_freed_memory

# Per pixel of the decoded image: Pillow's RGBA decode before the crop to RGB and any
# max_side resize, and the encoded answer.
DECODE_BYTES_PER_PIXEL = 8
ENCODE_BYTES_PER_PIXEL = 4
# The network in one piece, per pixel, for each channel of its first layer: float
# activations at full, half and quarter resolution with the copies padding makes.
WHOLE_BYTES_PER_PIXEL_PER_CHANNEL = 8
# In tiles: the photo and the result (uint8), the layers' fp16 outputs alive at once (about
# three full-resolution layers' worth, in memory up to tiles.SPILL_BYTES), and one strip's
# float32 copies as the runtime normalises and convolves it.
TILED_BYTES_PER_PIXEL = 8
LIVE_FP16_LAYERS = 3
STRIP_COPIES = 8


@dataclass(frozen=True)
class CostModel:
    """Bytes one request holds at its peak, by the model's first-layer width."""

    base_width: int

    def bytes_for(self, route: str, header_pixels: int, pixels: int, upload_bytes: int) -> int:
        decode = header_pixels * DECODE_BYTES_PER_PIXEL
        if route == WHOLE:
            network = pixels * (self.base_width * WHOLE_BYTES_PER_PIXEL_PER_CHANNEL + 24)
        else:  # tiled, or scaled (its small image may tile too): bounded by a strip's worth
            kept = min(SPILL_BYTES, pixels * self.base_width * 2 * LIVE_FP16_LAYERS)
            strip = STRIP_CHANNELS * DEFAULT_TILE**2 * 4 * STRIP_COPIES
            network = pixels * TILED_BYTES_PER_PIXEL + kept + strip
        return upload_bytes + max(decode, network + pixels * ENCODE_BYTES_PER_PIXEL)


class OverBudget(Exception):
    """The request does not fit what is left of the budget now; the client should retry."""


class MemoryBudget:
    """A thread-safe count of reserved bytes against ``limit``."""

    def __init__(self, limit: int):
        self.limit, self.used = int(limit), 0
        self._lock = threading.Lock()

    def reserve(self, size: int) -> Reservation:
        with self._lock:
            if self.used and self.used + size > self.limit:
                raise OverBudget(
                    f"the service holds {self.used / 2**20:,.0f} MiB of images; this one needs "
                    f"{size / 2**20:,.0f} MiB more than its {self.limit / 2**20:,.0f} MiB allow"
                )
            self.used += size
        return Reservation(self, size)

    def _release(self, size: int) -> None:
        with self._lock:
            self.used -= size
            idle = self.used == 0
        if idle:
            release_freed_memory()


class Reservation:
    """Bytes held until ``release`` (releasing twice is harmless: a request that timed out
    hands its release to the work still running)."""

    def __init__(self, budget: MemoryBudget, size: int):
        self.budget, self.size = budget, size

    def release(self) -> None:
        size, self.size = self.size, 0
        if size:
            self.budget._release(size)
