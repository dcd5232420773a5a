"""`cin-style bench style-scale`: does a larger style scale bring a big photo's texture
statistics closer to the painting's?  Photos resized to 2048 px long side, stylized at
S = 1, 2, 4 by each upsampling method (infer/scale.py), then scored at
512 px on the evaluation network (evaluate/scores.py): style loss against the painting's
Grams at 512, content loss and SSIM against the photo.  Each (S, method) runs in a fresh
process for its time and peak memory.  Numbers only; optionally the contact sheet."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from cin_style.infer.scale import METHODS

log = logging.getLogger(__name__)

SCALES = (1.0, 2.0, 4.0)
STYLES = ("starry_night", "great_wave", "composition_viii")
EVAL_SIDE = 512
CROP = (480, 360)  # the contact sheet's 100 % crops (w, h)

_CASE = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from cin_style.infer.loader import load_stylizer
from cin_style.infer.scale import stylize_at_scale
from cin_style.infer.pipeline import Pipeline
from cin_style.infer.stylizer import blend_for
from cin_style.io.memory import peak_rss_mib

model, folder, scale, method, styles = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
stylizer = load_stylizer(model, device="cpu")
photos = sorted(folder.glob("photo*.png"))
seconds = []
for s, style in enumerate(styles.split(",")):
    weights, _ = blend_for(stylizer, [style])
    def run(image):
        return Pipeline(stylizer).network(image, weights)
    for p, path in enumerate(photos):
        photo = np.asarray(Image.open(path).convert("RGB"))
        started = time.perf_counter()
        out = run(photo) if scale == 1 else stylize_at_scale(run, photo, scale, method)
        seconds.append(time.perf_counter() - started)
        name = folder / f"out-{scale:g}-{method}-{s}-{p}.png"
        Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)).save(name)
print(json.dumps({"seconds_per_image": float(np.mean(seconds)), "peak_rss_mib": peak_rss_mib()}))
"""


def default_photos() -> list[Path]:
    """The validation photos of this checkout (training/validation.txt), else the samples."""
    from cin_style.assets.bundled import bundled_samples
    from cin_style.io.image import read_image_list

    listed = Path(__file__).resolve().parents[2] / "training" / "validation.txt"
    if listed.is_file():
        found = [p for p in read_image_list(listed) if p.is_file()]
        if found:
            return found
    return sorted(bundled_samples().glob("*.jpg"))


def run_style_scale_bench(
    model: str | Path | None = None,
    photos: list[Path] | None = None,
    limit: int = 6,
    side: int = 2048,
    sheet: Path | None = None,
) -> dict:
    import torch
    from PIL import Image

    from cin_style.assets.bundled import bundled_style_image, resolve_model
    from cin_style.data.photos import to_tensor
    from cin_style.data.styles import load_style_image
    from cin_style.evaluate.scores import EVAL_LOSS, Evaluator
    from cin_style.io.image import resize_long_side
    from cin_style.nn.vgg import build_encoder

    model = resolve_model(str(model) if model else "reference")
    graph = model.with_suffix(".onnx") if model.with_suffix(".onnx").is_file() else model  # the faster runtime
    photos = (photos or default_photos())[:limit]
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="cin-style-style-scale-") as tmp:
        folder = Path(tmp)
        for i, path in enumerate(photos):
            photo = Image.open(path).convert("RGB")
            factor = side / max(photo.size)
            photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.Resampling.LANCZOS).save(
                folder / f"photo{i:02d}.png"
            )
        cases = [(s, m) for s in SCALES for m in (METHODS if s > 1 else METHODS[:1])]
        for scale, method in cases:
            log.info(f"S={scale:g} {method} ...")
            proc = subprocess.run(
                [sys.executable, "-c", _CASE, str(graph), str(folder), str(scale), method, ",".join(STYLES)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"S={scale:g} {method} failed: {proc.stderr.strip()[-500:]}")
            rows[f"{scale:g}-{method}"] = {"scale": scale, "method": method, **json.loads(proc.stdout.splitlines()[-1])}
        encoder = build_encoder(EVAL_LOSS.encoder, EVAL_LOSS.layers)

        def small(path: Path) -> np.ndarray:
            return resize_long_side(np.asarray(Image.open(path).convert("RGB"), np.float32) / 255, EVAL_SIDE)

        references = [to_tensor(small(folder / f"photo{i:02d}.png")) for i in range(len(photos))]
        evaluator = Evaluator(encoder, references)
        with torch.no_grad():
            grams = [evaluator.grams(load_style_image(bundled_style_image(s), EVAL_SIDE)) for s in STYLES]
        from cin_style.evaluate.scores import luminance, ssim

        def full(path: Path):
            return to_tensor(np.asarray(Image.open(path).convert("RGB"), np.float32) / 255)[None]

        photo_luma = [luminance(full(folder / f"photo{i:02d}.png")) for i in range(len(photos))]
        for key, row in rows.items():
            scores, sharp = [], []
            for s in range(len(STYLES)):
                outputs = [to_tensor(small(folder / f"out-{key}-{s}-{p}.png")) for p in range(len(photos))]
                scores.append(evaluator.score(outputs, grams[s]).to_dict())
                for p in range(len(photos)):  # structure at full size: where upsampling blurs edges
                    sharp.append(float(ssim(luminance(full(folder / f"out-{key}-{s}-{p}.png")), photo_luma[p])))
            row.update({k: float(np.mean([sc[k] for sc in scores])) for k in ("style", "content", "ssim")})
            row["ssim_full"] = float(np.mean(sharp))
        if sheet is not None:
            write_sheet(folder, sheet)
    return {"model": graph.name, "photos": len(photos), "side": side, "styles": list(STYLES), "rows": rows}


def write_sheet(folder: Path, out: Path) -> None:
    """One photo at 2048 px: three styles (rows) x S = 1, 2, 4 (the default method), 100 % crops."""
    from PIL import Image, ImageDraw

    first = Image.open(folder / "photo00.png")
    cx, cy = first.width // 2, first.height // 2
    box = (cx - CROP[0] // 2, cy - CROP[1] // 2, cx + CROP[0] // 2, cy + CROP[1] // 2)
    gap, header = 6, 26
    grid = Image.new("RGB", (3 * CROP[0] + 2 * gap, header + 3 * CROP[1] + 2 * gap), "white")
    draw = ImageDraw.Draw(grid)
    for col, scale in enumerate(SCALES):
        draw.text((col * (CROP[0] + gap) + 6, 6), f"style scale {scale:g}", fill="black")
        for row in range(len(STYLES)):
            cell = Image.open(folder / f"out-{scale:g}-{METHODS[0]}-{row}-0.png").crop(box)
            grid.paste(cell, (col * (CROP[0] + gap), header + row * (CROP[1] + gap)))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, quality=72)


def format_style_scale_table(report: dict) -> str:
    lines = [
        f"{report['model']}, {report['photos']} photos at {report['side']} px long side, styles "
        f"{', '.join(report['styles'])}; scored at {EVAL_SIDE} px (style: Gram loss against the painting at "
        f"{EVAL_SIDE} px, lower is closer)",
        "| S | method | style loss | content loss | SSIM | SSIM at full size | seconds / image | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"].values():
        method = "—" if r["scale"] == 1 else r["method"]
        lines.append(
            f"| {r['scale']:g} | {method} | {r['style']:.4g} | {r['content']:.4g} | {r['ssim']:.3f} | "
            f"{r['ssim_full']:.3f} | {r['seconds_per_image']:.2f} | {r['peak_rss_mib']:.0f} MiB |"
        )
    return "\n".join(lines)
