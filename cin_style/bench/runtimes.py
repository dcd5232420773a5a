"""``bench runtimes``: the same bundled graph in every runtime that runs here, side by
side in one run — onnxruntime (.onnx and its ORT format), OpenVINO (f32, and its default
precision: bf16 on CPUs that have it), LiteRT (a .tflite per size: its shapes are fixed).
Median latency at each size on the same threads, with the conv GFLOP/s it amounts to,
and each runtime's max |diff| against onnxruntime.  Core ML is absent: it runs on Apple
devices only.  Runtimes whose extra is not installed are listed as skipped."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np

from cin_style.timing import median_seconds

MODELS = ("reference", "lite")


def _rows_for(name: str, sizes: list[int], threads: int, repeats: int, folder: Path) -> tuple[list, list]:
    from cin_style.bench.infer import onnx_conv_flops_by_side
    from cin_style.deploy.export import export
    from cin_style.infer.runtimes import open_converted

    plain = export(name, folder / f"{name}.onnx", verify=False, tiled_sibling=False)  # fp32, as the others
    graph, num_styles = plain.path, len(plain.style_names)
    flops = onnx_conv_flops_by_side(graph)
    cases: list[tuple[str, str, object, int | None]] = [("onnxruntime", "fp32", graph, None)]
    skipped = []
    ort = export(name, folder / f"{name}.ort", verify=False).path
    cases.append(("onnxruntime (.ort)", "fp32", ort, None))
    if importlib.util.find_spec("openvino"):
        xml = export(name, folder / f"{name}.xml", verify=False).path
        cases += [("openvino", "f32", xml, None), ("openvino", "default", xml, None)]
    else:
        skipped.append("openvino (the openvino extra)")
    if importlib.util.find_spec("litert_torch") and importlib.util.find_spec("ai_edge_litert"):
        for side in sizes:
            tflite = folder / f"{name}_{side}.tflite"
            export(name, tflite, size=(side, side), verify=False)
            cases.append(("litert", "fp32", tflite, side))
    else:
        skipped.append("litert (the tflite extra)")
    rows = []
    rng = np.random.default_rng(0)
    for side in sizes:
        image = rng.random((1, 3, side, side), dtype=np.float32)
        weights = np.full((1, num_styles), 1 / num_styles, np.float32)
        reference = None
        for runtime, precision, path, only in cases:
            if only is not None and only != side:
                continue
            hint = None if precision == "default" else "f32"
            run = open_converted(path, threads, "openvino" if runtime == "openvino" else None, hint)
            out = run(image, weights)
            reference = out if reference is None else reference
            ms = 1000 * median_seconds(lambda run=run: run(image, weights), repeats)
            rows.append(
                {
                    "model": name,
                    "runtime": runtime,
                    "precision": precision,
                    "size": side,
                    "median_ms": ms,
                    "gflops": flops(side) / ms / 1e6,
                    "max_abs_diff": float(np.abs(out - reference).max()),
                }
            )
    return rows, skipped


def run_runtimes_bench(sizes: list[int], threads: int = 2, repeats: int = 5) -> dict:
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="cin-style-runtimes-") as tmp:
        for name in MODELS:
            more, skipped = _rows_for(name, sizes, threads, repeats, Path(tmp))
            rows += more
    for row in rows:
        base = next(
            r for r in rows if (r["model"], r["size"], r["runtime"]) == (row["model"], row["size"], "onnxruntime")
        )
        row["speedup_vs_onnxruntime"] = base["median_ms"] / row["median_ms"]
    return {"threads": threads, "repeats": repeats, "rows": rows, "skipped": skipped}


def format_runtimes_table(report: dict) -> str:
    lines = [
        f"the bundled graphs in each runtime, {report['threads']} threads, median of {report['repeats']}",
        f"{'model':10s} {'runtime':20s} {'precision':9s} {'size':>6s} {'ms':>8s} {'GFLOP/s':>8s} "
        f"{'vs ort':>7s} {'max|diff|':>10s}",
    ]
    for r in report["rows"]:
        lines.append(
            f"{r['model']:10s} {r['runtime']:20s} {r['precision']:9s} {r['size']:5d}² {r['median_ms']:8.1f} "
            f"{r['gflops']:8.1f} {r['speedup_vs_onnxruntime']:6.2f}x {r['max_abs_diff']:10.2g}"
        )
    lines += [f"skipped: {s}" for s in report["skipped"]]
    lines.append("OpenVINO 'default' is its own choice of precision: bf16 on CPUs with AVX512-BF16 or AMX.")
    return "\n".join(lines)
