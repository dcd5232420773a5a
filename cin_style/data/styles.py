"""The named style set: paintings and styles in words, parsed from the command line's forms."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cin_style.blend.specs import TEXT_PREFIX, prompt_name, split_name_path, split_text_style
from cin_style.data.photos import to_tensor
from cin_style.errors import DataError
from cin_style.io.image import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    is_image_source,
    list_images,
    load_image,
    resize_long_side,
)

STYLE_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class StyleSpec:
    """A style to train: a painting (``path``) or a description in words (``text``)."""

    name: str
    path: Path | None
    text: str | None = None

    @property
    def source(self) -> str:
        """What a checkpoint records for it: the painting's path or ``text:PROMPT``."""
        return f"{TEXT_PREFIX}{self.text}" if self.text is not None else str(self.path)


def parse_style_inputs(inputs: Sequence[str | Path]) -> list[StyleSpec]:
    """Folders, ``.txt`` image lists, files and ``name=path`` items → named
    style specs, in order; ``text:PROMPT`` and ``name=text:PROMPT`` are styles in
    words (CLIP), named after their prompt unless named.

    Names default to file stems; they must be unique and shell-friendly
    (letters, digits, ``_ . -``) so they work in ``--style NAME=W``.
    """
    specs: list[StyleSpec] = []
    for item in inputs:
        text = split_text_style(str(item))
        if text is not None:
            name, prompt = text
            specs.append(StyleSpec(name or prompt_name(prompt), None, prompt))
            continue
        name, path = split_name_path(str(item))
        if is_image_source(path):
            if name:
                raise DataError(f"{name}={path}: a style name needs a single image, not a folder")
            files = list_images(path)
            if not files:
                raise DataError(f"no style images in {path}")
            specs += [StyleSpec(f.stem, f) for f in files]
        elif path.is_file():
            specs.append(StyleSpec(name or path.stem, path))
        else:
            raise DataError(f"style image not found: {path}")
    if not specs:
        raise DataError("no styles given")
    seen: dict[str, Path] = {}
    for spec in specs:
        if not STYLE_NAME_RE.match(spec.name):
            raise DataError(
                f"style name {spec.name!r} ({spec.source}) may only use letters, digits, "
                f"'_', '.', '-'; rename it with NAME=PATH"
            )
        if spec.name in seen:
            raise DataError(
                f"two styles are named {spec.name!r}: {seen[spec.name]} and {spec.source}; rename one with NAME=PATH"
            )
        seen[spec.name] = spec.source
    return specs


def load_style_image(path: Path, style_size: int | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Style image → [3, H, W] with the long side scaled to ``style_size``."""
    try:
        array = load_image(path, max_pixels)
    except ImageError as exc:
        raise DataError(f"style image unreadable: {exc}") from None
    if style_size:
        array = resize_long_side(array, style_size)
    return to_tensor(array)
