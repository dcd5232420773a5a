"""Stylizing image files with any ``Stylizer``: output paths, the tiling decision, and
one file at a time with per-file errors."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cin_style.errors import ConfigError, UsageError
from cin_style.infer.finish import Finish
from cin_style.infer.scale import check_style_scale
from cin_style.infer.stylizer import Stylizer, stylize_photo, use_tiles
from cin_style.io.image import ImageError


@dataclass
class FileResult:
    """One input of ``stylize_files``: where it went, or why it failed."""

    input: Path
    output: Path
    size: tuple[int, int] | None = None  # (width, height)
    seconds: float = 0.0
    error: str | None = None


def output_paths(inputs: Sequence[Path], output: str | Path, fmt: str = "png") -> list[Path]:
    """A file for one input (its type from the extension), else ``output/STEM.fmt``; never
    one of the inputs (a UsageError before any work)."""
    from cin_style.io.atomic import refuse_overwriting_inputs
    from cin_style.io.image import output_format

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
    style_scale: float = 1.0,
) -> Iterator[FileResult]:
    """Stylize each input into its output, one at a time, yielding as it goes.
    An unreadable, too small or too large image fails alone (``error`` says why);
    the others are still written (atomically).  Large images go in tiles (``use_tiles``);
    ``masks`` (style, mask file) blend per region, ``weights`` filling the rest (masks.py);
    ``style_scale`` > 1 makes the strokes larger (infer/scale.py)."""
    from PIL import Image

    from cin_style.io.image import DEFAULT_MAX_PIXELS, check_min_side, fitted_size, image_size, load_image, save_image
    from cin_style.progress import progress

    finish, limit = Finish(strength, preserve_color), max_pixels or DEFAULT_MAX_PIXELS
    if check_style_scale(style_scale) != 1.0 and masks:
        raise UsageError("--style-scale and --style-mask do not go together yet")
    for path, target in zip(inputs, outputs, strict=True):
        started = time.perf_counter()
        try:
            # The tiling decision comes from the header, so a tiled image is decoded
            # straight to uint8 (a float copy would be 4x the photo).
            width, height = fitted_size(*image_size(path, limit), max_size)
            if style_scale != 1.0:
                photo = check_min_side(load_image(path, limit, max_size=max_size, as_uint8=True), path)
                stylized = stylize_photo(stylizer, photo, weights, style_scale=style_scale, tile=tile)
                if not finish.is_identity:  # a full-size float copy of the photo only when needed
                    stylized = finish(stylized, photo.astype(np.float32) / 255)
                save_image(target, stylized)
                yield FileResult(path, target, (width, height), round(time.perf_counter() - started, 4))
                continue
            if not masks and use_tiles(stylizer, height, width, tile, masks=False):
                photo = check_min_side(load_image(path, limit, max_size=max_size, as_uint8=True), path)
                with progress(0, f"{path.name} in tiles") as bar:
                    result = stylizer.run_tiled(photo, weights, tile=tile, finish=finish, progress=bar)
                save_image(target, Image.fromarray(result))
                yield FileResult(path, target, (width, height), round(time.perf_counter() - started, 4))
                continue
            image = check_min_side(load_image(path, limit, max_size=max_size), path)
            if masks:
                from cin_style.blend.masks import weight_map

                if not stylizer.capabilities.masks:
                    raise UsageError(
                        f"{stylizer.path} takes one blend per image; style masks need a .pt "
                        f"model or a graph exported with `cin-style export --masks`"
                    )
                use_tiles(stylizer, image.shape[0], image.shape[1], tile, masks=True)
                blend = weight_map(masks, stylizer.style_names, weights, image.shape[0], image.shape[1])
                save_image(target, finish(stylizer.run(image[None], blend[None])[0], image))
            else:
                save_image(target, finish(stylizer.run(image[None], weights[None])[0], image))
        except (ImageError, ConfigError) as exc:
            message = str(exc)
            yield FileResult(path, target, error=message if message.startswith(str(path)) else f"{path}: {message}")
            continue
        yield FileResult(path, target, (image.shape[1], image.shape[0]), round(time.perf_counter() - started, 4))
