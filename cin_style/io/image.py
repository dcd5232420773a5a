"""Image files in and out, deliberately.

Loading applies EXIF orientation, composites transparency over a background
colour instead of dropping it, scales 16-bit images by their range instead of
clipping them, and refuses decompression bombs before decoding.  Saving
writes a temporary file beside the target and renames it, so a crash never
leaves a half-written image.

numpy + Pillow only: the torch-free ONNX runner uses it too.
"""

from __future__ import annotations

import glob
import io
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cin_style.errors import CinStyleError, UsageError
from cin_style.io.atomic import atomic_write

DEFAULT_MAX_PIXELS = 64_000_000  # 8000 x 8000: well past any photo, far below a bomb
# The network downsamples twice with reflection padding: smaller sides cannot pass.
MIN_SIDE = 16
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}

_PIL_LIMIT_LOCK = threading.Lock()


class ImageError(CinStyleError, ValueError):
    """An image that cannot be read or written; the message is meant for users."""


_RAISE_LIMIT = "; raise it with --max-pixels"
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def _open_checked(source, name, max_pixels: int | None, hint: str = _RAISE_LIMIT) -> Image.Image:
    # Pillow's own bomb guard is a global with a fixed limit; check the
    # header size ourselves so `--max-pixels` can raise or lower it.
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            image = Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    w, h = image.size
    if max_pixels is not None and w * h > max_pixels:
        image.close()
        raise ImageError(
            f"{name}: {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} "
            f"(possible decompression bomb){hint}"
        )
    return image


HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def to_rgb(image: Image.Image, background=(255, 255, 255)) -> np.ndarray:
    """Any Pillow mode → float32 [H, W, 3] RGB in [0, 1].

    Transparency (RGBA, LA, P with transparency) is composited over
    ``background``; 16/32-bit greyscale is scaled by its nominal range.
    """
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode == "I":  # 32-bit ints: PNG 16-bit greyscale often decodes to this
        arr = np.asarray(image, dtype=np.float64)
        scale = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        return np.repeat((np.clip(arr, 0, None) / scale).astype(np.float32)[:, :, None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(arr[:, :, None], 3, axis=2)
    return np.asarray(_rgb8_image(image, background), dtype=np.float32) / 255.0


def to_rgb8(image: Image.Image, background=(255, 255, 255)) -> np.ndarray:
    """``to_rgb`` as uint8 [H, W, 3], without a float copy for 8-bit modes (a 64 MP
    photo is 192 MB as uint8, 768 MB as float32)."""
    if image.mode in HIGH_BIT_MODES:
        return to_uint8(to_rgb(image, background))
    return np.asarray(_rgb8_image(image, background))


def _rgb8_image(image: Image.Image, background) -> Image.Image:
    """An 8-bit mode → RGB, transparency composited over ``background``."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode in ("LA", "La", "PA") or mode == "RGBa":
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        base = Image.new("RGBA", image.size, tuple(background) + (255,))
        image = Image.alpha_composite(base, image).convert("RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def _read_error(name, exc: Exception) -> ImageError:
    if isinstance(exc, UnidentifiedImageError):  # its message names a file object, not the file
        return ImageError(f"{name}: cannot read image (not a format Pillow knows: JPEG, PNG, WebP, TIFF, BMP, ...)")
    return ImageError(f"{name}: cannot read image ({exc.__class__.__name__}: {exc})")


def _checked_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: {'is a folder, not an image' if path.is_dir() else 'no such file'}")
    return path


def image_size(path: str | os.PathLike, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file's header, nothing decoded; ``load_image``'s errors."""
    path = _checked_path(path)
    return _header_size(path, path, max_pixels, _RAISE_LIMIT)


def encoded_size(data: bytes, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``image_size`` of an encoded image in memory (an upload)."""
    return _header_size(io.BytesIO(data), name, max_pixels, "")


def _header_size(source, name, max_pixels: int | None, hint: str) -> tuple[int, int]:
    try:
        with _open_checked(source, name, max_pixels, hint) as image:
            return image.size
    except ImageError:
        raise
    except _READ_ERRORS as exc:
        raise _read_error(name, exc) from None


def load_image(
    path: str | os.PathLike,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_size: int | None = None,
    *,
    as_uint8: bool = False,
) -> np.ndarray:
    """Read an image file → float32 [H, W, 3] RGB in [0, 1], EXIF-oriented (uint8
    [H, W, 3] with ``as_uint8``).

    ``max_size`` downscales (never upscales) so the long side fits.
    Raises ``ImageError`` with a one-line reason on any failure.
    """
    path = _checked_path(path)
    return _decode(path, path, max_pixels, max_size, as_uint8, _RAISE_LIMIT)


def decode_image(
    data: bytes,
    name: str = "image",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_size: int | None = None,
    *,
    as_uint8: bool = False,
) -> np.ndarray:
    """``load_image`` of an encoded image in memory (an upload); errors name it ``name``."""
    return _decode(io.BytesIO(data), name, max_pixels, max_size, as_uint8, "")


def _decode(source, name, max_pixels: int | None, max_size: int | None, as_uint8: bool, hint: str) -> np.ndarray:
    try:
        with _open_checked(source, name, max_pixels, hint) as image:
            image = ImageOps.exif_transpose(image)
            if max_size and image.mode in ("RGB", "RGBA", "L", "LA", "P", "1"):
                image = fit_long_side(image, max_size)  # 8-bit: resize before converting
            array = to_rgb(image) if not as_uint8 or image.mode in HIGH_BIT_MODES else to_rgb8(image)
            if max_size and max(array.shape[:2]) > max_size:  # high bit depth: resize as float
                h, w = array.shape[:2]
                scale = max_size / max(h, w)
                array = resize_array(array, (max(1, round(w * scale)), max(1, round(h * scale))))
            if as_uint8 and array.dtype != np.uint8:
                array = to_uint8(array)
    except ImageError:
        raise
    except _READ_ERRORS as exc:
        raise _read_error(name, exc) from None
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ImageError(f"{name}: empty image")
    return array


def fitted_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) scaled down so the long side fits ``max_size`` (None: as it is)."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_long_side(image: Image.Image, max_size: int) -> Image.Image:
    size = fitted_size(*image.size, max_size)
    if size == image.size:
        return image
    if image.mode in ("P", "1"):
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.resize(size, Image.Resampling.LANCZOS)


def resize_array(
    array: np.ndarray, size: tuple[int, int], resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    """float [H, W, 3] → float [h, w, 3] with size=(w, h), per channel in float32."""
    w, h = size
    channels = [
        Image.fromarray(np.ascontiguousarray(array[:, :, c], dtype=np.float32)).resize((w, h), resample)
        for c in range(array.shape[2])
    ]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=2), 0.0, 1.0)


def resize_long_side(array: np.ndarray, size: int, min_side: int = MIN_SIDE) -> np.ndarray:
    """float [H, W, 3] scaled (up or down) so its long side is ``size``; no side
    goes below ``min_side``."""
    h, w = array.shape[:2]
    scale = size / max(h, w)
    return resize_array(array, (max(min_side, round(w * scale)), max(min_side, round(h * scale))))


def resize_short_side(array: np.ndarray, size: int) -> np.ndarray:
    """float [H, W, 3] scaled (up or down) so its short side is ``size``.  Bilinear,
    as training crops have always been made: the validation scores of a run
    stay comparable across its parts."""
    h, w = array.shape[:2]
    scale = size / min(h, w)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return array if new == (w, h) else resize_array(array, new, Image.Resampling.BILINEAR)


def check_min_side(image: np.ndarray, name: str | os.PathLike = "image") -> np.ndarray:
    """``image`` [H, W, 3] unchanged, or an ImageError when a side is under ``MIN_SIDE``."""
    check_min_size(image.shape[1], image.shape[0], name)
    return image


def check_min_size(width: int, height: int, name: str | os.PathLike = "image") -> None:
    """An ImageError when a side of a ``width`` x ``height`` image is under ``MIN_SIDE``."""
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{name}: {width}x{height} is too small (min {MIN_SIDE} px)")


def hwc_to_chw(images: np.ndarray) -> np.ndarray:
    """[..., H, W, C] → contiguous [..., C, H, W] (one image or a batch)."""
    return np.ascontiguousarray(np.moveaxis(images, -1, -3))


def chw_to_hwc(images: np.ndarray) -> np.ndarray:
    """[..., C, H, W] → [..., H, W, C] (one image or a batch)."""
    return np.moveaxis(images, -3, -1)


def as_float_image(image) -> tuple[np.ndarray, str]:
    """A PIL image or a uint8/float [H, W, 3] array → (float32 [H, W, 3] in [0, 1],
    its kind: "pil", "uint8" or "float"); ``like_input`` turns a result back."""
    if isinstance(image, Image.Image):
        return to_rgb(image), "pil"
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"image arrays must be [H, W, 3], got {list(array.shape)}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0, "uint8"
    return array.astype(np.float32), "float"


def like_input(result: np.ndarray, kind: str):
    """The stylize convention: PIL in → PIL out, uint8 in → uint8 out, float in → float out."""
    if kind == "pil":
        return Image.fromarray(to_uint8(result))
    if kind == "uint8":
        return to_uint8(result)
    return result


# How close a reduced-precision model's output must stay to fp32's (PSNR, dB): the one bar
# of every export (ONNX graph, slim checkpoint, every deploy target).  int8 is measured on
# real photos where a calibration set is given, else on random images.
MIN_PSNR_DB = {"fp16": 40.0, "fp16-weights": 40.0, "int8": 30.0}


def output_parity(expected: np.ndarray, got: np.ndarray) -> tuple[float, float] | None:
    """(max |difference|, PSNR in dB) of an output against its reference; None when
    ``got`` holds NaN or infinity (which would slip through max() and the PSNR)."""
    if not np.isfinite(got).all():
        return None
    return float(np.abs(np.asarray(got, np.float64) - expected).max()), psnr(got, expected)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shape arrays (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def to_uint8(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ImageError(f"expected an [H, W, 3] image, got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ImageError("image contains NaN or infinite values")
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SAVE_FORMATS:
        raise ImageError(
            f"{path}: unsupported output type {suffix or '(none)'}; use one of {', '.join(sorted(SAVE_FORMATS))}"
        )
    return SAVE_FORMATS[suffix]


def save_image(path: str | os.PathLike, image: np.ndarray | Image.Image, quality: int = 95) -> Path:
    """Write float [H, W, 3] in [0, 1] (or a PIL image) atomically; format by extension."""
    path = Path(path)
    fmt = output_format(path)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image))
    if pil.mode != "RGB":
        pil = pil.convert("RGB")
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(path, lambda fh: pil.save(fh, format=fmt, **options))


def list_images(source: str | os.PathLike, suffixes=(".jpg", ".jpeg", ".png", ".webp")) -> list[Path]:
    """Image files named by ``source``: a folder (recursive, sorted, hidden files
    skipped) or a ``.txt`` list with one path per line, relative to the list's
    folder (``#`` starts a comment).  Lists pin a fixed train/validation split
    without copying photos."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".txt":
        return read_image_list(source)
    return sorted(
        p
        for p in source.rglob("*")
        if p.is_file()
        and p.suffix.lower() in suffixes
        and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files, folders (recursive), .txt image lists and globs → image paths, in
    order, each once.  Nothing found is a UsageError (the CLI's exit 2)."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if is_image_source(path):
            found = list_images(path)
            if not found:
                raise UsageError(f"no images in {path}")
            paths += found
        elif path.exists():
            paths.append(path)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not found:
                raise UsageError(f"no files match {item}")
            paths += found
        else:
            raise UsageError(f"input not found: {item}")
    return list(dict.fromkeys(paths))


def read_image_list(list_file: str | os.PathLike) -> list[Path]:
    list_file = Path(list_file)
    paths = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            path = Path(line)
            paths.append(path if path.is_absolute() else Path(os.path.normpath(list_file.parent / path)))
    return paths


def is_image_source(source: str | os.PathLike) -> bool:
    """A folder, or a ``.txt`` image list (see ``list_images``)."""
    source = Path(source)
    return source.is_dir() or (source.is_file() and source.suffix.lower() == ".txt")
