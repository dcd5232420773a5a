"""Contact sheets: a labelled grid of images (rows × columns).

Every cell of a row has the row's aspect (its first image's): columns are ``cell`` px
wide and each row as tall as its pictures need, so landscape and portrait photos fill
their cells instead of sitting in squares.  Labels use a scalable font sized to the
cell, wrapped onto two lines where they are long.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cin_style.io.image import to_uint8

GAP = 4  # px between cells


def _font(cell: int):
    return ImageFont.load_default(size=max(12, cell // 11))


def _lines(label: str, draw: ImageDraw.ImageDraw, font, width: int) -> list[str]:
    """``label`` on one line, or two split at a '+' or '_', shortened with '…' if still too long."""
    if draw.textlength(label, font=font) <= width:
        return [label]
    for mark in ("+", "_"):
        cut = label.rfind(mark, 0, len(label) // 2 + len(label) // 4 + 1)
        if cut > 0:
            head, tail = label[: cut + 1] if mark == "+" else label[:cut], label[cut + 1 :]
            return [_shorten(head, draw, font, width), _shorten(tail, draw, font, width)]
    return [_shorten(label, draw, font, width)]


def _shorten(text: str, draw: ImageDraw.ImageDraw, font, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]],
    column_labels: Sequence[str],
    row_labels: Sequence[str] | None = None,
    cell: int = 192,
) -> Image.Image:
    """Grid of float [H, W, 3] images with a header row of column labels."""
    font = _font(cell)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = int(font.getbbox("Ag")[3]) + 2
    ncols = max(len(r) for r in rows)
    labels = [_lines(label, probe, font, cell - 4) for label in column_labels[:ncols]]
    header = max(len(lines) for lines in labels) * line_h + GAP
    left = 0
    if row_labels:
        left = max(int(probe.textlength(r, font=font)) for r in row_labels) + 2 * GAP
    heights = [max(16, round(cell * row[0].shape[0] / row[0].shape[1])) for row in rows]
    sheet = Image.new("RGB", (left + ncols * (cell + GAP), header + sum(h + GAP for h in heights)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, lines in enumerate(labels):
        for i, line in enumerate(lines):
            draw.text((left + c * (cell + GAP) + 2, 2 + i * line_h), line, fill=(0, 0, 0), font=font)
    y = header
    for r, (row, height) in enumerate(zip(rows, heights)):
        if row_labels:
            draw.text((GAP, y + height // 2 - line_h // 2), row_labels[r], fill=(0, 0, 0), font=font)
        for c, array in enumerate(row):
            image = Image.fromarray(to_uint8(array)).resize((cell, height), Image.Resampling.LANCZOS)
            sheet.paste(image, (left + c * (cell + GAP), y))
        y += height + GAP
    return sheet
