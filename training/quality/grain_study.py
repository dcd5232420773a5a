"""The grain's measurement (cin_style/infer/grain.py): which amplitude gives flat regions the
painting's texture, and what it costs photos that have texture of their own.

For each bundled model and grain amplitude, with starry_night:
  * stripes: horizontal over vertical gradient energy of the output on flat inputs (a smooth
    1536x1152 gradient; the painting's texture is near 1, horizontal stripes near 0), and the
    style loss of the output's centre 512² against the painting (VGG16 Grams, as `evaluate`);
  * photos: the bundled sample photos at their size: PSNR of the output against the output
    without grain, and the style loss, so the grain shows where it changes what it should not.
And the synthetic failure modes (tests/test_grain.py's stand-ins): an upscaled photo, a
heavily compressed JPEG of a sky, a noisy low-light photo, with the stripe score of their
flattest quarter.

Run: python training/quality/grain_study.py [--out training/quality/grain_study.json]
(the VGG16 weights: `cin-style weights fetch`).  CPU, a few minutes.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cin_style.assets.bundled import bundled_graph, bundled_samples, bundled_styles
from cin_style.evaluate.scores import EVAL_LOSS
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.infer.pipeline import Pipeline
from cin_style.io.image import psnr
from cin_style.losses.perceptual import gram_matrix, style_loss
from cin_style.nn.vgg import build_encoder

AMPLITUDES = (0, 1, 2, 3, 4, 6)
STYLE = "starry_night"


def stripe_score(image: np.ndarray) -> float:
    x = image.astype(np.float64)
    return float(np.mean(np.diff(x, axis=1) ** 2) / max(np.mean(np.diff(x, axis=0) ** 2), 1e-12))


def gradient(height: int = 1152, width: int = 1536) -> np.ndarray:
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    colours = np.array([60, 120, 230], np.float32) + t * np.array([150, 100, -60], np.float32)
    return np.broadcast_to(colours, (height, width, 3)).round().astype(np.uint8).copy()


def failure_modes() -> dict[str, np.ndarray]:
    """Stand-ins for what real photos bring: each has a flat sky in its top quarter."""
    rng = np.random.default_rng(0)
    sky = gradient(288, 384)
    small = np.asarray(Image.fromarray(sky).resize((96, 72), Image.Resampling.BILINEAR))
    upscaled = np.asarray(Image.fromarray(small).resize((1536, 1152), Image.Resampling.BICUBIC))
    buffer = io.BytesIO()
    Image.fromarray(gradient()).save(buffer, "JPEG", quality=12)
    compressed = np.asarray(Image.open(buffer).convert("RGB"))
    dark = (gradient().astype(np.float32) * 0.25 + rng.normal(0, 6, (1152, 1536, 3))).clip(0, 255).astype(np.uint8)
    return {"upscaled 16x": upscaled, "JPEG quality 12": compressed, "low light, noisy": dark}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("grain_study.json"))
    args = parser.parse_args()
    encoder = build_encoder(EVAL_LOSS.encoder, EVAL_LOSS.style_layers).eval()

    def grams(image: np.ndarray) -> dict:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            feats = encoder(x)
        return {n: gram_matrix(feats[n]) for n in EVAL_LOSS.style_layers}

    painting = np.asarray(Image.open(bundled_styles() / f"{STYLE}.jpg").convert("RGB").resize((512, 512)))
    target = grams(painting)

    def style_distance(image: np.ndarray) -> float:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            feats = encoder(x)
        return float(style_loss(feats, target, EVAL_LOSS.style_layers))

    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(bundled_samples().glob("*.jpg"))]
    report: dict = {"style": STYLE, "amplitudes": list(AMPLITUDES), "models": {}}
    for model in ("reference", "lite"):
        runner = StyleRunner(bundled_graph(model), device="cpu", runtime="onnxruntime")
        row = np.zeros(len(runner.style_names), np.float32)
        row[runner.style_names.index(STYLE)] = 1

        def run(image: np.ndarray, amplitude: int) -> np.ndarray:
            return Pipeline(runner, style_scale=1.0, grain=amplitude).stylize([image], row[None])[0]

        sky, results = gradient(), {}
        plain = [run(p, 0) for p in photos]
        for amplitude in AMPLITUDES:
            out = run(sky, amplitude)
            centre = out[320:832, 512:1024]
            grained = [run(p, amplitude) for p in photos] if amplitude else plain
            results[amplitude] = {
                "flat_stripe_score": round(stripe_score(out), 3),
                "flat_style_loss": round(style_distance(centre), 6),
                "photos_psnr_vs_no_grain_db": round(
                    float(np.mean([psnr(g / 255, p / 255) if amplitude else np.inf for g, p in zip(grained, plain)])), 2
                )
                if amplitude
                else None,
                "photos_style_loss": round(float(np.mean([style_distance(g) for g in grained])), 6),
            }
            print(model, amplitude, results[amplitude], flush=True)
        modes = {}
        for name, image in failure_modes().items():
            top = slice(0, image.shape[0] // 4)
            modes[name] = {
                amplitude: round(stripe_score(run(image, amplitude)[top]), 3) for amplitude in (0, AMPLITUDES[3])
            }
            print(model, name, modes[name], flush=True)
        report["models"][model] = {"amplitudes": results, "failure_modes_top_quarter_stripe_score": modes}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
