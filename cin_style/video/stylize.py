"""Stylize video: frames through the network in batches, then (by default) flow
consistency against the previous output, then strength and preserve-colour.
The same for .pt and .onnx models (any stylizer from inference.load_stylizer)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from cin_style.errors import UsageError
from cin_style.infer.finish import Finish
from cin_style.infer.stylizer import Stylizer

CONSISTENCY_MODES = ("flow", "none")
# Frames up to DCI 4K by default: flow consistency keeps several full-resolution float
# copies of a frame, so larger frames cost GiBs however the network runs (--max-pixels).
DEFAULT_MAX_VIDEO_PIXELS = 4096 * 2160


def _check_mode(consistency: str) -> None:
    if consistency not in CONSISTENCY_MODES:
        raise UsageError(f"--consistency must be one of {', '.join(CONSISTENCY_MODES)}, got {consistency!r}")


class FramePipeline:
    """Batches of uint8 frames → uint8 stylized frames, in order, with state
    (the previous output) carried from one batch to the next."""

    def __init__(
        self,
        stylizer: Stylizer,
        weights: np.ndarray,
        *,
        consistency: str = "flow",
        consistency_strength: float | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        size: tuple[int, int] | None = None,
        style_scale: float = 1.0,
        grain: int | None = None,
    ):
        from cin_style.infer.grain import DEFAULT_GRAIN
        from cin_style.video.temporal import DEFAULT_STRENGTH, FlowBlender

        consistency_strength = DEFAULT_STRENGTH if consistency_strength is None else consistency_strength
        _check_mode(consistency)
        from cin_style.infer.pipeline import Pipeline

        self.weights = np.asarray(weights, np.float32)
        self.blender = FlowBlender(consistency_strength) if consistency == "flow" else None
        # The grain is the same in every frame (a pattern of pixel positions): it adds no flicker.
        grain = DEFAULT_GRAIN if grain is None else grain
        self.pipeline = Pipeline(stylizer, Finish(strength, preserve_color), style_scale, grain=grain)
        self.size = size  # (width, height) to scale frames to first, or None

    def __call__(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """A batch of frames through ``infer.pipeline`` (the same route as `stylize` takes
        for an image of their size), flow consistency between the network and the finish."""
        from cin_style.io.image import check_min_side

        if self.size is not None and frames and frames[0].shape[1::-1] != tuple(self.size):
            from PIL import Image

            frames = [np.asarray(Image.fromarray(f).resize(self.size, Image.Resampling.LANCZOS)) for f in frames]
        check_min_side(frames[0], "video frame")
        weights = np.repeat(self.weights[None], len(frames), axis=0)
        return self.pipeline.stylize(frames, weights, before_finish=self.blender)


def stylize_frames(
    stylizer: Stylizer, frames: Iterable[np.ndarray], weights: np.ndarray, *, batch_size: int = 4, **options
) -> Iterator[np.ndarray]:
    """Python API: uint8 [H, W, 3] frames in, stylized uint8 frames out, lazily.
    ``options``: consistency, consistency_strength, strength, preserve_color, style_scale, grain."""
    pipeline, batch = FramePipeline(stylizer, weights, **options), []
    for frame in frames:
        batch.append(np.asarray(frame, np.uint8))
        if len(batch) == batch_size:
            yield from pipeline(batch)
            batch = []
    if batch:
        yield from pipeline(batch)


def stylize_video(
    stylizer: Stylizer,
    source: str | os.PathLike,
    target: str | os.PathLike | None,
    weights: np.ndarray,
    *,
    frames_dir: str | os.PathLike | None = None,
    batch_size: int = 4,
    start: float = 0.0,
    duration: float | None = None,
    crf: int | None = None,
    max_pixels: int | None = None,
    max_size: int | None = None,
    show_progress: bool = False,
    **options,
) -> int:
    """Stylize a video file into ``target`` (container and codec from its extension) or
    PNG frames into ``frames_dir``; audio is copied unchanged.  Returns frames written;
    ``show_progress`` draws a progress bar (stderr) while it works."""
    from cin_style.io.atomic import refuse_overwriting_inputs
    from cin_style.io.video import VideoError, probe, transcode

    if target is not None:
        refuse_overwriting_inputs([target], [source])
    from cin_style.progress import progress as progress_bar

    info = probe(source)
    limit = max_pixels or DEFAULT_MAX_VIDEO_PIXELS
    if info.width * info.height > limit:
        raise VideoError(
            f"{source}: frames of {info.width}x{info.height} exceed the limit of {limit:,} "
            f"pixels; raise it with --max-pixels"
        )
    size = None
    if max_size is not None and max(info.width, info.height) > max_size:  # scale down, never up
        scale = max_size / max(info.width, info.height)
        size = (max(16, round(info.width * scale)), max(16, round(info.height * scale)))
    if start < 0 or (duration is not None and duration <= 0):
        raise UsageError("--start must be >= 0 and --duration > 0")
    total = round((min(info.duration, start + duration) if duration else info.duration) * float(info.fps))
    total = max(0, total - round(start * float(info.fps))) or info.frames or None
    pipeline = FramePipeline(stylizer, weights, size=size, **options)
    # The bar starts once the file is known to be a video we can read: no bar before an error.
    with progress_bar(total, "frames", enabled=show_progress) as bar:
        return transcode(
            source,
            target,
            pipeline,
            batch_size=batch_size,
            start=start,
            duration=duration,
            crf=crf,
            frames_dir=frames_dir,
            size=size,
            on_frames=bar.update,
        )
