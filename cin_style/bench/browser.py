"""`cin-style bench browser`: the page's graph in headless Chromium (onnxruntime-web,
wasm backend) against onnxruntime in Python on the same machine and graph.

Both sides time exactly one session run on a textured square with a uniform blend:
"first" is the first run at that size after the session was created (the browser
also compiles and allocates then), "warm" the median of the next ``repeats``.
Numbers only; nothing is asserted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from cin_style.io.synthetic import textured
from cin_style.timing import median_seconds, seconds
from cin_style.web.browser import drive, find_chromium, find_node, find_node_modules, ort_web_dist, serving
from cin_style.web.site import GRAPH_NAME, ort_dist_version, write_site


def _python_rows(graph: Path, sides, threads: int, repeats: int) -> list[dict]:
    from cin_style.infer.onnx_runner import StyleRunner

    runner = StyleRunner(graph, device="cpu", threads=threads, warmup=False)
    styles = len(runner.style_names)
    weights = np.full((1, styles), 1.0 / styles, np.float32)
    rows = []
    for side in sides:
        image = textured(side, side).astype(np.float32).transpose(2, 0, 1)[None] / 255
        first = seconds(lambda image=image: runner.run_nchw(image, weights))
        warm = median_seconds(lambda image=image: runner.run_nchw(image, weights), repeats, warmup=0)
        rows.append({"side": side, "first_ms": first * 1000, "warm_ms": warm * 1000})
    return rows


def run_browser_bench(
    model: str | os.PathLike | None = None,
    sides=(256, 512),
    threads=(1, 2),
    repeats: int = 3,
    node_modules: str | os.PathLike | None = None,
) -> dict:
    import onnxruntime

    node_modules = find_node_modules(node_modules)
    find_node()
    chromium = find_chromium()
    dist = ort_web_dist(node_modules)
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-web-") as tmp:
        site = write_site(Path(tmp) / "site", model, ort_dist=dist)
        graph = site.path / GRAPH_NAME
        rows = []
        with serving(site.path) as url:
            for count in threads:
                opened, browser_rows = drive(
                    [
                        {"op": "open", "url": f"{url}?backend=wasm&threads={count}"},
                        {"op": "bench", "sides": list(sides), "repeats": repeats},
                    ],
                    node_modules=node_modules,
                    chromium=chromium,
                )
                if not opened["ready"]["ok"]:
                    raise RuntimeError(f"the page did not start: {opened['ready']}")
                python_rows = _python_rows(graph, sides, count, repeats)
                for web, py in zip(browser_rows, python_rows):
                    rows.append(
                        {
                            "threads": opened["state"]["threads"],
                            "side": web["side"],
                            "browser_first_ms": web["first_ms"],
                            "browser_warm_ms": web["warm_ms"],
                            "python_first_ms": py["first_ms"],
                            "python_warm_ms": py["warm_ms"],
                        }
                    )
        return {
            "model": str(model) if model is not None else "bundled reference model",
            "styles": len(site.style_names),
            "graph_mb": site.graph_bytes / 1e6,
            "ort_web": ort_dist_version(dist),
            "onnxruntime": onnxruntime.__version__,
            "chromium": str(chromium),
            "repeats": repeats,
            "rows": rows,
        }


def format_browser_table(report: dict) -> str:
    lines = [
        f"{report['model']} ({report['styles']} styles, {report['graph_mb']:.1f} MB graph): "
        f"onnxruntime-web {report['ort_web']} wasm in {Path(report['chromium']).name} vs "
        f"onnxruntime {report['onnxruntime']} CPU in Python; ms per image, warm = median of "
        f"{report['repeats']}",
        "| threads | size | browser first | browser warm | Python first | Python warm | browser / Python (warm) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['threads']} | {row['side']}² | {row['browser_first_ms']:.0f} | "
            f"{row['browser_warm_ms']:.0f} | {row['python_first_ms']:.0f} | "
            f"{row['python_warm_ms']:.0f} | {row['browser_warm_ms'] / row['python_warm_ms']:.2f}× |"
        )
    return "\n".join(lines)
