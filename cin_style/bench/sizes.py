"""`cin-style bench sizes`: what a photo of 1, 4, 12 and 48 MP costs with each installed
runtime and bundled model at style scale 1 (the network at full size), by the route
`stylize` takes (one piece or tiles), then at `--style-scale auto`; and what tiles cost per
pixel against one piece where both fit.

Every case runs in a fresh process (its peak resident set is its own); the picture is the
bundled sample photos tiled at their own size (bench/big.py's mosaic), 4:3.  Numbers
only; nothing is asserted.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys

log = logging.getLogger(__name__)

MEGAPIXELS = (1, 4, 12, 48)
RATIO_MEGAPIXELS = 2  # both routes fit every runtime's memory here
MODELS = ("reference", "lite")

_CASE = r"""
import json, sys, time
import numpy as np
from cin_style.io.memory import peak_rss_mib

model, runtime, width, height, route, style_scale = sys.argv[1:7]
width, height = int(width), int(height)
style_scale = style_scale if style_scale == "auto" else float(style_scale)
from cin_style.assets.bundled import resolve_model
from cin_style.bench.big import mosaic
from cin_style.infer.loader import load_stylizer
from cin_style.infer.pipeline import Pipeline
from cin_style.infer.stylizer import blend_for

stylizer = load_stylizer(resolve_model(model), device="cpu", runtime=runtime)
weights, _ = blend_for(stylizer, ["starry_night"] if "starry_night" in stylizer.style_names else [])
image = mosaic(width, height)
before = peak_rss_mib()
started = time.perf_counter()
if route == "tiled":
    stylizer.run_tiled(image, weights)
elif route == "whole":
    stylizer.run(image[None].astype(np.float32) / 255, weights[None])
else:
    pipeline = Pipeline(stylizer, style_scale=style_scale)
    route = pipeline.route(height, width)
    pipeline.stylize([image], weights[None])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "route": route, "rss_before_mib": before, "peak_rss_mib": peak_rss_mib(),
                  "runtime": stylizer.runtime, "runtime_precision": stylizer.runtime_precision,
                  "style_scale_ran": Pipeline(stylizer, style_scale=style_scale).scale_for(height, width)}))
"""


def photo_size(megapixels: float) -> tuple[int, int]:
    """(width, height) of a 4:3 photo of about ``megapixels``, sides multiples of 8."""
    width = round(math.sqrt(megapixels * 1e6 * 4 / 3) / 8) * 8
    return width, width * 3 // 4


def installed_runtimes() -> list[str]:
    from cin_style.assets.bundled import torch_installed
    from cin_style.infer.runtimes import openvino_installed

    return ["onnxruntime"] + (["openvino"] if openvino_installed() else []) + (["pytorch"] if torch_installed() else [])


def _run_case(model: str, runtime: str, size: tuple[int, int], route: str, style_scale="1") -> dict | None:
    command = [sys.executable, "-c", _CASE, model, runtime, str(size[0]), str(size[1]), route, str(style_scale)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        log.info(f"{model} {runtime} {size[0]}x{size[1]} {route} failed: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_sizes_bench(
    megapixels=MEGAPIXELS,
    models=MODELS,
    runtimes: list[str] | None = None,
    ratio_megapixels=RATIO_MEGAPIXELS,
    style_scales=("1", "auto"),
) -> dict:
    from cin_style.infer.runtimes import fastest_graph_runtime

    runtimes = runtimes or installed_runtimes()
    rows, ratios = [], []
    for model in models:
        for runtime in runtimes:
            for mp in megapixels:
                size = photo_size(mp)
                for scale in style_scales:
                    log.info(f"{model} {runtime} {size[0]}x{size[1]} style scale {scale} ...")
                    result = _run_case(model, runtime, size, "default", scale)
                    if result is not None:
                        pixels = size[0] * size[1] / 1e6
                        rows.append(
                            {"model": model, "megapixels": mp, "size": size, "style_scale": scale, **result}
                            | {"s_per_mp": result["seconds"] / pixels}
                        )
            if ratio_megapixels:
                size = photo_size(ratio_megapixels)
                both = {route: _run_case(model, runtime, size, route) for route in ("whole", "tiled")}
                if all(both.values()):
                    whole, tiled = both["whole"], both["tiled"]
                    ratios.append(
                        {
                            "model": model,
                            "runtime": runtime,
                            "size": size,
                            "whole_seconds": whole["seconds"],
                            "tiled_seconds": tiled["seconds"],
                            "tiled_over_whole": tiled["seconds"] / whole["seconds"],
                            "whole_peak_mib": whole["peak_rss_mib"],
                            "tiled_peak_mib": tiled["peak_rss_mib"],
                        }
                    )
    return {"default_runtime": fastest_graph_runtime(on_gpu=False), "rows": rows, "ratios": ratios}


def format_sizes_table(report: dict) -> str:
    lines = [
        f"One photo, the route `stylize` takes; peak RSS of a fresh process; `--runtime auto` picks "
        f"{report['default_runtime']} here",
        "| model | runtime | photo | style scale | route | seconds | s/MP | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        runtime = r["runtime"] + (f" ({r['runtime_precision']})" if r.get("runtime_precision") else "")
        lines.append(
            f"| {r['model']} | {runtime} | {r['megapixels']} MP ({r['size'][0]}x{r['size'][1]}) | "
            f"{r['style_scale']} ({r['style_scale_ran']:g}) | {r['route']} | "
            f"{r['seconds']:.1f} | {r['s_per_mp']:.2f} | {r['peak_rss_mib']:.0f} MiB |"
        )
    if report["ratios"]:
        lines += [
            "",
            "Tiles against one piece, same photo:",
            "| model | runtime | photo | one piece s | tiles s | tiles / one piece | peak one piece / tiles |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in report["ratios"]:
            lines.append(
                f"| {r['model']} | {r['runtime']} | {r['size'][0]}x{r['size'][1]} | {r['whole_seconds']:.1f} | "
                f"{r['tiled_seconds']:.1f} | {r['tiled_over_whole']:.2f} | {r['whole_peak_mib']:.0f} / "
                f"{r['tiled_peak_mib']:.0f} MiB |"
            )
    return "\n".join(lines)
