"""Contact sheets: a labelled grid of images (rows × columns)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cin_style.io.image import to_uint8


def _fit(array: np.ndarray, cell: int) -> Image.Image:
    image = Image.fromarray(to_uint8(array))
    image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (cell, cell), (255, 255, 255))
    canvas.paste(image, ((cell - image.width) // 2, (cell - image.height) // 2))
    return canvas


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    column_labels: Sequence[str],
    row_labels: Sequence[str] | None = None,
    cell: int = 192,
) -> Image.Image:
    """Grid of float [H, W, 3] images with a header row of column labels."""
    font = ImageFont.load_default()
    label_h = 18
    left = 0
    if row_labels:
        left = max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(r, font=font)) for r in row_labels) + 10
    ncols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (left + ncols * cell, label_h + len(rows) * cell), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(column_labels[:ncols]):
        text = label if draw.textlength(label, font=font) < cell - 4 else label[: cell // 7] + "…"
        draw.text((left + c * cell + 3, 3), text, fill=(0, 0, 0), font=font)
    for r, row in enumerate(rows):
        if row_labels:
            draw.text((3, label_h + r * cell + cell // 2 - 6), row_labels[r], fill=(0, 0, 0), font=font)
        for c, array in enumerate(row):
            sheet.paste(_fit(array, cell), (left + c * cell, label_h + r * cell))
    return sheet
