"""The two contact sheets in docs/: flat skies with and without grain (docs/grain.jpg), and
stroke size by photo size at --style-scale 1 against auto (docs/style_scale_auto.jpg).

No full-size real photo ships (the largest sample is 640 px), so the large "photos" are a
bundled sample upscaled: what a phone photo's smooth regions look like to the network, and
the case where the strokes are smallest against what the photo shows.  Each cell is the same
region of the photo (its central sixth), resized to one cell, so stroke size reads against
the content at every size.

Run: python training/quality/contact_sheets.py  (CPU; the 48 MP row takes a few minutes)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cin_style.assets.bundled import bundled_graph, bundled_samples
from cin_style.infer.loader import load_stylizer
from cin_style.infer.pipeline import Pipeline

DOCS = Path(__file__).resolve().parents[2] / "docs"
CELL = 360
STYLE = "starry_night"
MEGAPIXELS = (0.3, 1.2, 4.8, 12, 48)


def label(image: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 8 + 7 * len(text), 18), fill=(0, 0, 0))
    draw.text((4, 3), text, fill=(255, 255, 255))
    return image


def centre(image: np.ndarray, fraction: float) -> np.ndarray:
    h, w = image.shape[:2]
    ch, cw = int(h * fraction), int(w * fraction)
    return image[(h - ch) // 2 : (h + ch) // 2, (w - cw) // 2 : (w + cw) // 2]


def cell(image: np.ndarray, text: str) -> Image.Image:
    return label(Image.fromarray(image).resize((CELL, CELL * 3 // 4), Image.Resampling.LANCZOS), text)


def sheet(rows: list[list[Image.Image]]) -> Image.Image:
    out = Image.new("RGB", (CELL * len(rows[0]), CELL * 3 // 4 * len(rows)))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            out.paste(image, (c * CELL, r * CELL * 3 // 4))
    return out


def sky_photo(width: int, height: int) -> np.ndarray:
    """The sample with the most sky, upscaled: a smooth, denoised sky as a phone gives it."""
    photo = Image.open(sorted(bundled_samples().glob("*.jpg"))[0]).convert("RGB")
    return np.asarray(photo.resize((width, height), Image.Resampling.BICUBIC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="reference")
    parser.add_argument("--out", type=Path, default=DOCS)
    args = parser.parse_args()
    stylizer = load_stylizer(bundled_graph(args.model), device="cpu", runtime="onnxruntime")
    row = np.zeros(len(stylizer.style_names), np.float32)
    row[stylizer.style_names.index(STYLE)] = 1
    facts: dict = {"model": args.model, "style": STYLE}

    # Grain: a smooth gradient and an upscaled photo's sky, at S = 1, grain 0 and the default.
    t = np.linspace(0, 1, 1152, dtype=np.float32)[:, None, None]
    gradient = np.array([60, 120, 230], np.float32) + t * np.array([150, 100, -60], np.float32)
    gradient = np.broadcast_to(gradient, (1152, 1536, 3)).round().astype(np.uint8).copy()
    upscaled = sky_photo(1536, 1152)
    rows = []
    for name, photo in (("smooth gradient", gradient), ("upscaled photo", upscaled)):
        top = photo[: photo.shape[0] // 3]  # the sky
        cells = [cell(centre(top, 0.5), f"{name}: the photo")]
        for grain in (0, Pipeline(stylizer).grain):
            out = Pipeline(stylizer, style_scale=1.0, grain=grain).stylize([photo], row[None])[0]
            cells.append(cell(centre(out[: out.shape[0] // 3], 0.5), f"grain {grain}"))
        rows.append(cells)
    sheet(rows).save(args.out / "grain.jpg", quality=88)

    # Stroke size: the same upscaled photo from 0.3 to 48 MP, S = 1 against auto.
    rows, facts["style_scale_auto"] = [], {}
    for mp in MEGAPIXELS:
        width = round((mp * 1e6 * 4 / 3) ** 0.5 / 8) * 8
        photo = sky_photo(width, width * 3 // 4)
        cells = [cell(centre(photo, 1 / 6), f"{mp:g} MP photo")]
        for scale in (1.0, "auto"):
            pipeline = Pipeline(stylizer, style_scale=scale)
            ran = pipeline.scale_for(*photo.shape[:2])
            out = pipeline.stylize([photo], row[None])[0]
            cells.append(cell(centre(out, 1 / 6), f"style scale {scale} ({ran:g})"))
        facts["style_scale_auto"][f"{mp:g} MP"] = Pipeline(stylizer).scale_for(*photo.shape[:2])
        rows.append(cells)
        print(f"{mp:g} MP done", flush=True)
    sheet(rows).save(args.out / "style_scale_auto.jpg", quality=88)
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
