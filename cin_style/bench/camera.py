"""`cin-style bench browser --camera`: the page's camera mode in headless Chromium with a
fake camera (a still textured scene with sensor noise, from a .y4m file): sustained
frames/s, ms per frame and the share of camera frames dropped, per model and processing
size, and the flicker between successive outputs with and without smoothing.  Numbers
only; nothing is asserted."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from cin_style.io.synthetic import textured
from cin_style.web.browser import drive, find_chromium, find_node, find_node_modules, ort_web_dist, serving
from cin_style.web.site import write_site


def write_y4m(path: Path, width: int = 640, height: int = 480, frames: int = 30, fps: int = 30) -> Path:
    """A still scene with per-frame noise (what a webcam on a tripod sees), 4:2:0."""
    rng = np.random.default_rng(0)
    scene = textured(height, width, seed=3, noise=0).astype(np.float32)
    luma = 0.299 * scene[..., 0] + 0.587 * scene[..., 1] + 0.114 * scene[..., 2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            y = np.clip(luma + rng.normal(0, 3, luma.shape), 0, 255).astype(np.uint8)
            u = np.full((height // 2, width // 2), 118, np.uint8)
            v = np.full((height // 2, width // 2), 140, np.uint8)
            out.write(b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes())
    return path


def run_camera_bench(
    models=("lite", "reference"), sides=(256, 384), threads: int = 2, seconds: float = 8.0, node_modules=None
) -> dict:
    node_modules = find_node_modules(node_modules)
    find_node()
    chromium = find_chromium()
    dist = ort_web_dist(node_modules)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-camera-") as tmp:
        clip = write_y4m(Path(tmp) / "camera.y4m")
        args = [
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={clip}",
        ]
        for model in models:
            site = write_site(Path(tmp) / f"site-{model}", model, ort_dist=dist)
            with serving(site.path) as url:
                for side in sides:
                    for smoothing in (0.0, 0.5):
                        steps = [
                            {"op": "open", "url": f"{url}?backend=wasm&threads={threads}"},
                            {"op": "slider", "id": "camera-size", "value": side, "wait": False},
                            {"op": "slider", "id": "camera-smoothing", "value": smoothing, "wait": False},
                            {"op": "click", "selector": "#camera-start"},
                            {"op": "waitFor", "expression": "cam && cam.processed >= 2"},
                            {"op": "sleep", "ms": int(seconds * 1000)},
                            {"op": "camera", "fn": "state"},
                        ]
                        state = drive(steps, node_modules=node_modules, chromium=chromium, chromium_args=args)[-1]
                        rows.append({"model": model, "side": side, "smoothing": smoothing, **state})
    return {"threads": threads, "seconds": seconds, "camera": "640x480 at 30 frames/s (fake)", "rows": rows}


def format_camera_table(report: dict) -> str:
    lines = [
        f"the page's camera mode, wasm with {report['threads']} threads, {report['camera']}, "
        f"{report['seconds']:g} s each after the first frames",
        "| model | processing size | smoothing | frames/s | ms/frame | camera frames dropped | flicker |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        flicker = "—" if r.get("flicker") is None else f"{r['flicker']:.4f}"
        lines.append(
            f"| {r['model']} | {r['width']}x{r['height']} | {r['smoothing']:g} | {r['fps']:.1f} | "
            f"{r['lastMs'] or 0:.0f} | {100 * r['dropped']:.0f} % | {flicker} |"
        )
    return "\n".join(lines)
