"""Tiny synthetic video clips for the video tests, written with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from cin_style.io.synthetic import textured


def panning_frames(count: int, height: int, width: int, step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """A camera pan across a textured still: frame t is the still shifted by t·step px."""
    still = textured(height, width + step * count, seed, noise=12)
    return [still[:, t * step:t * step + width].copy() for t in range(count)]


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 12, audio: bool = True,
               rotation: int = 0, codec: str = "libx264") -> Path:
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
        stream.options = {"crf": "10"}
        if rotation:
            stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=8000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if sound is not None:
            samples = int(8000 * len(frames) / fps)
            tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 8000)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]),
                                                   format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 8000, start, Fraction(1, 8000)
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
    return path
