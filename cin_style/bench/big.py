"""`cin-style bench big`: peak memory and time for large images, tiled and untiled,
PyTorch and onnxruntime, and how far tiles are from the untiled result.

Every case runs in a fresh process (its peak resident set is its own: VmHWM);
the picture is a mosaic of the bundled sample photos at their own resolution,
so it has real edges and texture at every scale.  Numbers only; nothing is asserted.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from cin_style.io.image import psnr

log = logging.getLogger(__name__)

SIZES = {"2048²": (2048, 2048), "4K": (3840, 2160), "8K": (7680, 4320)}
UNTILED_UP_TO = 2048 * 2048  # untiled beyond this does not fit a 24 GiB machine at 8K

_CASE = r"""
import json, sys, time
import numpy as np
from cin_style.io.memory import peak_rss_mib as hwm_mib

backend, mode, width, height, model, graph, tile, out = sys.argv[1:9]
width, height, tile = int(width), int(height), int(tile)
from cin_style.bench.big import mosaic
image = mosaic(width, height)
if backend == "torch":
    import torch
    from cin_style.nn.checkpoint import load_model
    net, names = load_model(model)
    net = net.float().eval()
else:
    from cin_style.infer.onnx_runner import StyleRunner
    runner = StyleRunner(graph, device="cpu", warmup=False)
    names = runner.style_names
weights = np.zeros(len(names), np.float32)
weights[names.index("starry_night") if "starry_night" in names else 0] = 1
before = hwm_mib()
started = time.perf_counter()
if mode == "tiled":
    if backend == "torch":
        from cin_style.infer.torch_tiles import TorchTileBackend
        from cin_style.infer.tiles import stylize_tiled
        result = stylize_tiled(TorchTileBackend(net, weights), image, tile=tile)
    else:
        result = runner.run_tiled(image, weights, tile=tile)
else:
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255
    if backend == "torch":
        with torch.no_grad():
            y = net(torch.from_numpy(x), torch.from_numpy(weights)[None]).numpy()
    else:
        y = runner.run_nchw(x, weights[None])
    result = (np.clip(y[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
seconds = time.perf_counter() - started
if out != "-":
    np.save(out, result)
print(json.dumps({"seconds": seconds, "rss_before_mib": before, "peak_rss_mib": hwm_mib()}))
"""


def mosaic(width: int, height: int) -> np.ndarray:
    """The bundled sample photos tiled at their own size, uint8 [H, W, 3]."""
    from PIL import Image

    from cin_style.assets.bundled import bundled_samples

    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(bundled_samples().glob("*.jpg"))]
    out = np.zeros((height, width, 3), np.uint8)
    y, k = 0, 0
    while y < height:
        x, row_height = 0, 0
        while x < width:
            p = photos[k % len(photos)]
            k += 1
            h, w = min(p.shape[0], height - y), min(p.shape[1], width - x)
            out[y : y + h, x : x + w] = p[:h, :w]
            x, row_height = x + w, max(row_height, h)
        y += row_height
    return out


def _run_case(backend, mode, size, model, graph, tile, out="-") -> dict | None:
    width, height = size
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _CASE,
            backend,
            mode,
            str(width),
            str(height),
            str(model),
            str(graph),
            str(tile),
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        log.info(f"{backend} {mode} {width}x{height} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(tiled: np.ndarray, whole: np.ndarray, tile: int) -> dict:
    """PSNR, max difference, and the mean difference within 8 px of a tile border vs elsewhere."""
    diff = np.abs(tiled.astype(np.float64) - whole.astype(np.float64))
    border = np.zeros(diff.shape[:2], bool)
    for c in range(tile, diff.shape[0], tile):
        border[c - 8 : c + 8] = True
    for c in range(tile, diff.shape[1], tile):
        border[:, c - 8 : c + 8] = True
    per_pixel = diff.mean(axis=2)
    return {
        "psnr_db": psnr(tiled, whole, data_range=255),
        "max_abs_diff": float(diff.max()),
        "mean_diff_near_borders": float(per_pixel[border].mean()),
        "mean_diff_elsewhere": float(per_pixel[~border].mean()),
    }


def run_big_bench(model: str | Path | None = None, sizes=("2048²", "4K", "8K"), tile: int = 512) -> dict:
    from cin_style.assets.bundled import resolve_model
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.deploy.onnx_tiled import export_tiled_onnx
    from cin_style.nn.checkpoint import load_model

    model = resolve_model(model)
    net, names = load_model(model)
    rows, quality = [], {}
    with tempfile.TemporaryDirectory(prefix="cin-style-big-") as tmp:
        tmp = Path(tmp)
        plain, tiled_graph = tmp / "plain.onnx", tmp / "tiled.onnx"
        export_onnx(net, names, plain, verify=False)
        export_tiled_onnx(net, names, tiled_graph, verify=False)
        for label in sizes:
            size = SIZES[label]
            for backend in ("torch", "ort"):
                modes = ["tiled"] + (["untiled"] if size[0] * size[1] <= UNTILED_UP_TO else [])
                saved = {}
                for mode in modes:
                    graph = tiled_graph if mode == "tiled" else plain
                    out = tmp / f"{backend}-{mode}.npy" if len(modes) == 2 else "-"
                    log.info(f"{label} {backend} {mode} ...")
                    result = _run_case(backend, mode, size, model, graph, tile, out)
                    if result is None:
                        continue
                    rows.append({"size": label, "pixels": size, "backend": backend, "mode": mode, **result})
                    if out != "-":
                        saved[mode] = np.load(out)
                if len(saved) == 2:
                    quality[f"{label} {backend}"] = compare(saved["tiled"], saved["untiled"], tile)
    return {"model": str(model), "tile": tile, "rows": rows, "quality": quality}


def format_big_table(report: dict) -> str:
    lines = [
        f"{report['model']}, tiles of {report['tile']} px; peak RSS of a fresh process",
        "| image | backend | mode | seconds | peak RSS |",
        "|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['size']} ({r['pixels'][0]}x{r['pixels'][1]}) | "
            f"{'PyTorch' if r['backend'] == 'torch' else 'onnxruntime'} | {r['mode']} | "
            f"{r['seconds']:.1f} | {r['peak_rss_mib']:.0f} MiB |"
        )
    for key, q in report["quality"].items():
        lines.append(
            f"{key}: tiled vs untiled PSNR {q['psnr_db']:.1f} dB, max |diff| {q['max_abs_diff']:.0f}"
            f"/255; mean |diff| within 8 px of a tile border {q['mean_diff_near_borders']:.4f}, "
            f"elsewhere {q['mean_diff_elsewhere']:.4f}"
        )
    return "\n".join(lines)
