"""Stylizing image files with any ``Stylizer``: output paths, and one file at a time
through ``infer.pipeline`` with per-file errors (its own I/O only)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cin_style.errors import ConfigError, UsageError
from cin_style.infer.finish import Finish
from cin_style.infer.grain import DEFAULT_GRAIN
from cin_style.infer.pipeline import TILED, WHOLE, Pipeline
from cin_style.infer.scale import AUTO_STYLE_SCALE, DEFAULT_STYLE_SCALE
from cin_style.infer.stylizer import Stylizer
from cin_style.io.image import ImageError


@dataclass
class FileResult:
    """One input of ``stylize_files``: where it went, or why it failed."""

    input: Path
    output: Path
    size: tuple[int, int] | None = None  # (width, height)
    seconds: float = 0.0
    error: str | None = None
    route: str | None = None  # pipeline.SCALED, TILED or WHOLE
    style_scale: float | None = None  # what it ran at ("auto" resolved)


def output_paths(inputs: Sequence[Path], output: str | Path, fmt: str = "png") -> list[Path]:
    """A file for one input (its type from the extension), else ``output/STEM.fmt``; never
    one of the inputs (a UsageError before any work)."""
    from cin_style.io.atomic import refuse_overwriting_inputs
    from cin_style.io.image import output_format

    if not str(output).strip():
        raise UsageError("the output is empty: name a file or folder", parameter="output")
    out = Path(output)
    if out.suffix != "" and not out.is_dir():
        output_format(out)  # fail on .gif etc. before any work
        if len(inputs) > 1:
            raise UsageError(f"{len(inputs)} inputs need an output folder, not the file {out}")
        targets = [out]
    else:
        targets = [out / f"{path.stem}.{fmt}" for path in inputs]
    refuse_overwriting_inputs(targets, inputs)
    return targets


def stylize_files(
    stylizer: Stylizer,
    inputs: Sequence[Path],
    outputs: Sequence[Path],
    weights: np.ndarray,
    *,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_size: int | None = None,
    max_pixels: int | None = None,
    tile: int | None = None,
    masks: Sequence[tuple[str, Path]] = (),
    style_scale: float | str = DEFAULT_STYLE_SCALE,
    grain: int = DEFAULT_GRAIN,
) -> Iterator[FileResult]:
    """Stylize each input into its output, one at a time, yielding as it goes.
    An unreadable, too small or too large image fails alone (``error`` says why);
    the others are still written (atomically).  Each image takes its route through
    ``infer.pipeline`` (style scale, tiles, one run); ``masks`` (style, mask file) blend
    per region, ``weights`` filling the rest (blend/masks.py)."""
    from PIL import Image

    from cin_style.io.image import DEFAULT_MAX_PIXELS, check_min_size, fitted_size, image_size, load_image, save_image

    pipeline = Pipeline(stylizer, Finish(strength, preserve_color), style_scale, tile, grain=grain)
    limit = max_pixels or DEFAULT_MAX_PIXELS
    if pipeline.style_scale not in (1.0, AUTO_STYLE_SCALE) and masks:
        raise UsageError("style scale and style masks do not go together yet", parameter="style_scale")
    for path, target in zip(inputs, outputs, strict=True):
        started = time.perf_counter()
        try:
            # The route comes from the header, so a photo that does not run whole is
            # decoded straight to uint8 (a float copy would be 4x the photo).
            width, height = fitted_size(*image_size(path, limit), max_size)
            check_min_size(width, height, path)
            route, scale = pipeline.plan(height, width, masks=bool(masks))
            photo = load_image(path, limit, max_size=max_size, as_uint8=route != WHOLE)
            blend = weights[None]
            if masks:
                from cin_style.blend.masks import weight_map

                blend = weight_map(masks, stylizer.style_names, weights, photo.shape[0], photo.shape[1])[None]
            (result,) = pipeline.stylize([photo], blend, label=path.name if route == TILED else None)
            save_image(target, Image.fromarray(result))
        except (ImageError, ConfigError) as exc:
            message = str(exc)
            yield FileResult(path, target, error=message if message.startswith(str(path)) else f"{path}: {message}")
            continue
        seconds = round(time.perf_counter() - started, 4)
        yield FileResult(path, target, (photo.shape[1], photo.shape[0]), seconds, route=route, style_scale=scale)
