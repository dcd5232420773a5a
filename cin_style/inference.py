"""Model files behind one interface, so the CLI treats ``.pt`` and ``.onnx`` alike.

A stylizer has ``style_names``, ``device`` (what actually runs) and
``run(images [N, H, W, 3] float32, weights [N, S]) -> [N, H, W, 3]``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import ConfigError, UsageError
from .imageio import ImageError


class TorchStylizer:
    def __init__(self, path: str | Path, device: str = "auto"):

        from .checkpoint import load_model
        from .devices import pick_device

        self.model, self.style_names = load_model(path)
        self._device = pick_device(device)
        self.model.to(self._device)
        self.device = self._device.type
        self.path = Path(path)

    def run(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        from .data import to_array, to_tensor
        from .torch_stylize import stylize_tensor

        return to_array(stylize_tensor(self.model, to_tensor(np.asarray(images, np.float32)), weights))

    def run_tiled(self, image: np.ndarray, weights: np.ndarray, *, tile: int | None = None,
                  finish=None, progress=None) -> np.ndarray:
        """uint8 [H, W, 3] → uint8 [H, W, 3] in tiles, in bounded memory (tiles.py)."""
        from .tile_stages import TorchTileBackend
        from .tiles import DEFAULT_TILE, stylize_tiled

        return stylize_tiled(TorchTileBackend(self.model, weights), image, tile=tile or DEFAULT_TILE,
                             finish=finish, progress=progress)


def load_stylizer(path: str | Path, device: str = "auto"):
    """``.onnx`` → onnxruntime runner; anything else → PyTorch checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from cin_style_export.runner import StyleRunner

        return StyleRunner(path, device=device)
    return TorchStylizer(path, device=device)


def blend_for(stylizer, style_specs: Sequence[str] = (), normalize: bool = True) -> tuple[np.ndarray, str]:
    """The weight row and its label for ``style_specs`` (default: the first style).
    A baked graph takes no specs; its row is ignored by the graph."""
    from .blend import format_blend, weights_from_specs

    if getattr(stylizer, "baked", False):
        if style_specs:
            raise UsageError(f"{stylizer.path} has a baked blend "
                             f"({stylizer.metadata.get('baked_blend')}); drop --style")
        return (np.zeros(len(stylizer.style_names), np.float32),
                stylizer.metadata.get("baked_blend", "baked"))
    weights = weights_from_specs(list(style_specs) or [stylizer.style_names[0]],
                                 stylizer.style_names, normalize=normalize)
    return weights, format_blend(weights, stylizer.style_names)


@dataclass
class FileResult:
    """One input of ``stylize_files``: where it went, or why it failed."""

    input: Path
    output: Path
    size: tuple[int, int] | None = None  # (width, height)
    seconds: float = 0.0
    error: str | None = None


def output_paths(inputs: Sequence[Path], output: str | Path, fmt: str = "png") -> list[Path]:
    """A file for one input (its type from the extension), else ``output/STEM.fmt``."""
    from .imageio import output_format

    out = Path(output)
    if out.suffix != "" and not out.is_dir():
        output_format(out)  # fail on .gif etc. before any work
        if len(inputs) > 1:
            raise UsageError(f"{len(inputs)} inputs need an output folder, not the file {out}")
        return [out]
    return [out / f"{path.stem}.{fmt}" for path in inputs]


def use_tiles(stylizer, height: int, width: int, tile: int | None, masks: bool = False) -> bool:
    """Whether to stylize in tiles: a tiled graph always does; a PyTorch model when
    asked (``tile``) or above AUTO_TILE_PIXELS (not with style masks); a plain graph cannot."""
    from .tiles import AUTO_TILE_PIXELS

    if masks:
        if tile is not None or getattr(stylizer, "tiled", False):
            raise UsageError("style masks do not run in tiles yet: drop --tile, or use a .pt model "
                             "or a graph exported with --masks")
        return False
    if isinstance(stylizer, TorchStylizer):
        return tile is not None or height * width > AUTO_TILE_PIXELS
    if getattr(stylizer, "tiled", False):
        return True
    if tile is not None:
        raise UsageError(f"{stylizer.path} cannot run in tiles: use a .pt model or a graph "
                         f"exported with `cin-style export --tiled`")
    if height * width > AUTO_TILE_PIXELS:
        logging.getLogger(__name__).warning(
            f"a {width}x{height} image in one piece needs several GiB; for bounded memory export "
            f"the tiled variant (`cin-style export MODEL -o big.onnx --tiled`) or use the .pt model")
    return False


def stylize_files(stylizer, inputs: Sequence[Path], outputs: Sequence[Path], weights: np.ndarray, *,
                  strength: float = 1.0, preserve_color: bool = False, max_size: int | None = None,
                  max_pixels: int | None = None, tile: int | None = None,
                  masks: Sequence[tuple[str, Path]] = ()) -> Iterator[FileResult]:
    """Stylize each input into its output, one at a time, yielding as it goes.
    An unreadable, too small or too large image fails alone (``error`` says why);
    the others are still written (atomically).  Large images go in tiles (``use_tiles``);
    ``masks`` (style, mask file) blend per region, ``weights`` filling the rest (masks.py)."""
    from PIL import Image

    from .imageio import DEFAULT_MAX_PIXELS, check_min_side, load_image, save_image, to_uint8
    from .postprocess import mix_strength, preserve_color as keep_colors
    from .progress import progress

    if not 0 <= strength <= 1:
        raise ConfigError(f"strength must be in [0, 1] (got {strength})")

    def finish(result: np.ndarray, image: np.ndarray) -> np.ndarray:
        if preserve_color:
            result = keep_colors(result, image)
        if strength < 1:
            result = mix_strength(result, image, strength)
        return result

    for path, target in zip(inputs, outputs, strict=True):
        started = time.perf_counter()
        try:
            image = check_min_side(load_image(path, max_pixels or DEFAULT_MAX_PIXELS, max_size=max_size), path)
            if masks:
                from .masks import weight_map

                if not (isinstance(stylizer, TorchStylizer) or getattr(stylizer, "masks", False)):
                    raise UsageError(f"{stylizer.path} takes one blend per image; style masks need a .pt "
                                     f"model or a graph exported with `cin-style export --masks`")
                use_tiles(stylizer, image.shape[0], image.shape[1], tile, masks=True)
                blend = weight_map(masks, stylizer.style_names, weights, image.shape[0], image.shape[1])
                save_image(target, finish(stylizer.run(image[None], blend[None])[0], image))
            elif use_tiles(stylizer, image.shape[0], image.shape[1], tile):
                photo = to_uint8(image)
                del image  # bounded memory: the float copy is 4x the photo
                with progress(0, f"{path.name} in tiles") as bar:
                    result = stylizer.run_tiled(photo, weights, tile=tile, finish=finish, progress=bar)
                save_image(target, Image.fromarray(result))
                image = photo
            else:
                save_image(target, finish(stylizer.run(image[None], weights[None])[0], image))
        except ImageError as exc:
            yield FileResult(path, target, error=str(exc))
            continue
        yield FileResult(path, target, (image.shape[1], image.shape[0]),
                         round(time.perf_counter() - started, 4))
