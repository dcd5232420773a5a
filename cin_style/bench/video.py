"""`cin-style bench video`: flicker (warping error), style loss and speed of the
video modes on synthetic clips with known camera motion.

Clips are made from a still (a mosaic of the bundled sample photos at their own
resolution) at 854x480: a pan, a zoom, a rotation, sensor noise on a still view,
and a textured object moving over a still background.  Warping error is Lai et
al. (2018): mean |O_t - warp(O_t-1)| over the pixels the flow, taken on the input
frames, finds reliable.  Style loss: the evaluation loss (evaluate/scores.py) against the
style's painting on every 3rd frame.  Numbers only; nothing is asserted.
"""

from __future__ import annotations

import logging
import time

import numpy as np

log = logging.getLogger(__name__)

MOTIONS = ("pan", "zoom", "zoom out", "rotation", "noise", "moving object")
SIZE = (854, 480)


def synthetic_clip(motion: str, frames: int = 24, size=SIZE, seed: int = 0) -> list[np.ndarray]:
    import cv2

    from cin_style.bench.big import mosaic

    width, height = size
    margin = 4 * frames
    still = mosaic(width + 2 * margin, height + 2 * margin)
    center = (width / 2 + margin, height / 2 + margin)
    rng = np.random.default_rng(seed)
    side = min(96, height // 4)
    patch = np.roll(still[:side, :side], 37, axis=1)[::-1].copy()
    out = []
    for t in range(frames):
        if motion == "pan":
            frame = still[margin : margin + height, margin + 3 * t : margin + 3 * t + width]
        elif motion in ("zoom", "zoom out", "rotation"):
            angle, scale = _affine(motion, t)
            matrix = cv2.getRotationMatrix2D(center, angle, scale)
            matrix[:, 2] -= margin
            frame = cv2.warpAffine(still, matrix, (width, height), flags=cv2.INTER_LINEAR)
        elif motion == "noise":
            base = still[margin : margin + height, margin : margin + width].astype(np.float32)
            frame = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        elif motion == "moving object":
            frame = still[margin : margin + height, margin : margin + width].copy()
            x, y = round(width * 40 / 854) + 8 * t, height * 5 // 16 + 3 * t  # (40, 150) + t·(8, 3) at 854x480
            frame[y : y + side, x : x + side] = patch[: max(0, height - y), : max(0, width - x)]
        else:
            raise ValueError(f"unknown motion {motion!r}")
        out.append(np.ascontiguousarray(frame))
    return out


def _affine(motion: str, t: int) -> tuple[float, float]:
    """(angle in degrees, scale) of frame t of the zoom and rotation clips."""
    if motion == "rotation":
        return 0.4 * t, 1.0
    return 0.0, (1.0 + 0.004 * t) if motion == "zoom" else (1.0 - 0.004 * t)


def new_content(motion: str, frames: int, size=SIZE) -> np.ndarray | None:
    """bool [H, W]: where the clip's last frame shows picture that its first did not (the
    strip a pan brings in, the border a zoom out reveals, the background a moving object
    uncovers); None for clips without such a region."""
    width, height = size
    mask = np.zeros((height, width), bool)
    last = frames - 1
    if motion == "pan":
        mask[:, width - 3 * last :] = True
    elif motion == "zoom out":
        scale = _affine(motion, last)[1]  # frame 0 covers the central `scale` share of the last frame
        x0, y0 = round(width * (1 - scale) / 2), round(height * (1 - scale) / 2)
        mask[:] = True
        mask[y0 : height - y0, x0 : width - x0] = False
    elif motion == "moving object":
        side = min(96, height // 4)
        for t in range(last + 1):
            x, y = round(width * 40 / 854) + 8 * t, height * 5 // 16 + 3 * t
            mask[y : y + side, x : x + side] = t < last  # covered before, uncovered now
    else:
        return None
    return mask


def texture(image: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean |vertical gradient| of the grey image (0-255) inside ``mask``: how much fine
    texture a stylization has there."""
    grey = np.asarray(image, np.float32).mean(axis=2) * 255
    diff = np.abs(np.diff(grey, axis=0))
    if mask is None:
        return float(diff.mean())
    both = mask[1:] & mask[:-1]
    return float(diff[both].mean()) if both.any() else float("nan")


def run_video_bench(
    model=None,
    stability_model=None,
    style: str = "starry_night",
    frames: int = 12,
    consistency_strength: float | None = None,
) -> dict:
    """Each model stylizes each clip once; "flow" modes blend those outputs.  fps counts
    the network and, for flow modes, the flow and blending too."""
    from cin_style.assets.bundled import resolve_model
    from cin_style.data.photos import to_tensor
    from cin_style.data.styles import load_style_image
    from cin_style.evaluate.scores import EVAL_LOSS, Evaluator, model_style_images
    from cin_style.infer.loader import load_stylizer
    from cin_style.infer.stylizer import blend_for
    from cin_style.nn.vgg import build_encoder
    from cin_style.video.temporal import DEFAULT_STRENGTH, FlowBlender, warping_error

    strength = DEFAULT_STRENGTH if consistency_strength is None else consistency_strength
    model = resolve_model(model)
    models = [("", model)] + ([("stability-trained", stability_model)] if stability_model else [])
    stylizers = {path: load_stylizer(path, device="cpu") for _, path in models}
    encoder = build_encoder(EVAL_LOSS.encoder, EVAL_LOSS.layers, None).eval()
    painting = load_style_image(model_style_images(model, [style])[style], 512)
    rows = []
    for motion in MOTIONS:
        clip = synthetic_clip(motion, frames)
        evaluator = Evaluator(encoder, [to_tensor(f.astype(np.float32) / 255) for f in clip[::3]])
        target = evaluator.grams(painting)
        for label, path in models:
            stylizer = stylizers[path]
            weights, _ = blend_for(stylizer, [style])
            started = time.perf_counter()
            raw = [stylizer.run(f[None].astype(np.float32) / 255, weights[None])[0] for f in clip]
            network_seconds = time.perf_counter() - started
            started = time.perf_counter()
            blender = FlowBlender(strength)
            flowed = [blender(f, r) for f, r in zip(clip, raw)]
            flow_seconds = time.perf_counter() - started
            for mode, outs, seconds in (
                ("per-frame", raw, network_seconds),
                ("flow blending", flowed, network_seconds + flow_seconds),
            ):
                name = f"{label} + flow" if label and mode != "per-frame" else (label or mode)
                metrics = evaluator.score([to_tensor(o) for o in outs[::3]], target)
                entering = new_content(motion, len(clip))
                rows.append(
                    {
                        "clip": motion,
                        "mode": name,
                        "warping_error": warping_error(clip, outs),
                        "style_loss": metrics.style,
                        "fps": len(clip) / seconds,
                        # texture of the last frame where the clip brought in new picture
                        "new_content_texture": None if entering is None else texture(outs[-1], entering),
                    }
                )
                log.info(
                    f"{motion:14s} {name:26s} warping error {rows[-1]['warping_error']:.4f} "
                    f"style {metrics.style:.4g} {rows[-1]['fps']:.2f} fps"
                )
    return {
        "model": str(model),
        "stability_model": str(stability_model) if stability_model else None,
        "style": style,
        "frames": frames,
        "size": list(SIZE),
        "consistency_strength": strength,
        "rows": rows,
    }


def format_video_table(report: dict) -> str:
    lines = [
        f"{report['model']}, style {report['style']}, {report['frames']} frames at "
        f"{report['size'][0]}x{report['size'][1]} per clip, consistency strength "
        f"{report['consistency_strength']}",
        "| clip | mode | warping error | vs per-frame | style loss | vs per-frame | new-content texture "
        "| vs per-frame | fps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {r["clip"]: r for r in report["rows"] if r["mode"] == "per-frame"}
    for r in report["rows"]:
        b = base[r["clip"]]
        new, base_new = r.get("new_content_texture"), b.get("new_content_texture")
        texture_cells = f"{new:.2f} | {new / base_new:.2f}x" if new is not None and base_new else "- | -"
        lines.append(
            f"| {r['clip']} | {r['mode']} | {r['warping_error']:.4f} | "
            f"{r['warping_error'] / b['warping_error']:.2f}x | {r['style_loss']:.4g} | "
            f"{r['style_loss'] / b['style_loss']:.2f}x | {texture_cells} | {r['fps']:.2f} |"
        )
    return "\n".join(lines)
