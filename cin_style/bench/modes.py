"""``run(mode, ...)``: every benchmark behind one call, returning its report and the
table to print.  Numbers only — nothing is asserted.

    infer    PyTorch eager vs onnxruntime latency, GFLOP/s against the matmul peak,
             peak memory for one large image (bench/infer.py)
    train    images/s of the training step, ours and pytorch/examples' (bench/train.py)
    torch    PyTorch inference images/s per size, precision and batch (bench/torch_infer.py)
    browser  the web page in headless Chromium vs onnxruntime in Python (bench/browser.py)
    big      peak memory and time at 2048², 4K, 8K, tiled and untiled (bench/big.py)
    video    warping error, style loss and fps of the video modes (bench/video.py)
    memory   peak RSS of `stylize` on an 8K photo and a 64 MP bomb, .pt and .onnx (bench/memory.py)
    api      the HTTP service's requests/s and p99, batched and not, beside the runner (bench/api.py)
    batch    images/s of `batch` on Ray Data against `stylize` of the same folder (bench/batch.py)
    style-scale  texture statistics, content and cost of --style-scale 1, 2, 4 at 2048 px (bench/style_scale.py)
    runtimes the bundled graphs in onnxruntime, its ORT format, OpenVINO and LiteRT (bench/runtimes.py)
    sizes    a 1, 4, 12, 48 MP photo with each installed runtime and bundled model, and tiles
             against one piece per pixel (bench/sizes.py)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cin_style.errors import UsageError

MODES = (
    "infer",
    "train",
    "torch",
    "browser",
    "big",
    "video",
    "memory",
    "api",
    "batch",
    "style-scale",
    "runtimes",
    "sizes",
)


@dataclass(frozen=True)
class BenchReport:
    mode: str
    report: dict
    text: str  # the human-readable table

    def to_json(self) -> str:
        return json.dumps(self.report, indent=2, default=str)


def int_list(text: str, option: str) -> list[int]:
    """``"256,512"`` → [256, 512]; a UsageError naming ``option`` otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"{option} must be integers, got {text!r}") from None
    if not values:
        raise UsageError(f"{option} is empty")
    return values


def run(
    mode: str = "infer",
    *,
    sizes: str | None = None,
    repeats: int = 3,
    memory_size: int = 2048,
    model: str | Path | None = None,
    peer: str | Path | None = None,
    peer_graph: str | Path | None = None,
    steps: int = 5,
    threads: str = "1,2",
    stability_model: str | Path | None = None,
    node_modules: str | Path | None = None,
    device: str = "cpu",
    batches: str | None = None,
    precisions: str = "fp16,bf16",
    compile: bool = False,
    sheet: str | Path | None = None,
    camera: bool = False,
    models: str | None = None,
    runtimes: str | None = None,
) -> BenchReport:
    """Run one benchmark (``MODES``).  ``sizes`` is a comma list (square sides; for
    ``big`` the names 2048²,4K,8K); ``model`` is for browser and big; ``peer`` and
    ``peer_graph`` put the peers beside ours (infer, train)."""
    if mode not in MODES:
        raise UsageError(f"unknown benchmark {mode!r}; choose one of {', '.join(MODES)}")
    if model is not None and mode in ("infer", "train"):
        raise UsageError("--model goes with a benchmark that takes one (--browser, --big, --torch, ...), not this one")
    batch_list = tuple(int_list(batches, "--batches")) if batches else None
    if batch_list is not None and min(batch_list) < 1:
        raise UsageError("--batches must be >= 1")
    if mode == "sizes":
        from cin_style.bench.sizes import MEGAPIXELS, MODELS, format_sizes_table, installed_runtimes, run_sizes_bench

        megapixels = int_list(sizes, "--sizes") if sizes else list(MEGAPIXELS)
        model_list = [m.strip() for m in (models or ",".join(MODELS)).split(",") if m.strip()]
        runtime_list = [r.strip() for r in runtimes.split(",") if r.strip()] if runtimes else installed_runtimes()
        unknown = [r for r in runtime_list if r not in installed_runtimes()]
        if unknown:
            raise UsageError(f"--runtimes takes the installed {', '.join(installed_runtimes())}; got {unknown}")
        if min(megapixels) < 1:
            raise UsageError("--sizes are megapixels, at least 1")
        report = run_sizes_bench(tuple(megapixels), tuple(model_list), runtime_list)
        return BenchReport(mode, report, format_sizes_table(report))
    if mode == "runtimes":
        from cin_style.bench.runtimes import format_runtimes_table, run_runtimes_bench

        thread_list = int_list(threads, "--threads")
        report = run_runtimes_bench(int_list(sizes or "256,512", "--sizes"), threads=max(thread_list), repeats=repeats)
        return BenchReport(mode, report, format_runtimes_table(report))
    if mode == "style-scale":
        from cin_style.bench.style_scale import format_style_scale_table, run_style_scale_bench

        report = run_style_scale_bench(model, sheet=Path(sheet) if sheet else None)
        return BenchReport(mode, report, format_style_scale_table(report))
    if mode == "batch":
        from cin_style.bench.batch import format_batch_table, run_batch_bench

        report = run_batch_bench(str(model) if model else None, side=int_list(sizes or "512", "--sizes")[0])
        return BenchReport(mode, report, format_batch_table(report))
    if mode == "api":
        from cin_style.bench.api import format_api_table, run_api_bench

        side = int_list(sizes or "256", "--sizes")[0]
        report = run_api_bench(model, side=side)
        return BenchReport(mode, report, format_api_table(report))
    if mode == "memory":
        from cin_style.bench.memory import format_memory_table, run_memory_bench

        report = run_memory_bench(model)
        return BenchReport(mode, report, format_memory_table(report))
    if mode == "video":
        from cin_style.bench.video import format_video_table, run_video_bench

        report = run_video_bench(model, stability_model)
        return BenchReport(mode, report, format_video_table(report))
    if mode == "big":
        from cin_style.bench.big import SIZES, format_big_table, run_big_bench

        labels = [label.strip() for label in (sizes or ",".join(SIZES)).split(",")]
        unknown = [label for label in labels if label not in SIZES]
        if unknown:
            raise UsageError(f"with --big, --sizes takes {', '.join(SIZES)}; got {unknown}")
        report = run_big_bench(model, tuple(labels))
        return BenchReport(mode, report, format_big_table(report))
    if mode == "train":
        from cin_style.bench.train import format_train_table, run_train_bench

        if steps < 1:
            raise UsageError("--steps must be >= 1")
        report = run_train_bench(peer, steps=steps, device=device, batches=batch_list, compile=compile)
        return BenchReport(mode, report, format_train_table(report))
    if mode == "torch":
        from cin_style.bench.torch_infer import format_torch_infer_table, run_torch_infer_bench
        from cin_style.infer.torch_stylizer import AUTOCAST_PRECISIONS

        precision_list = tuple(p.strip() for p in precisions.split(",") if p.strip())
        unknown = [p for p in precision_list if p not in AUTOCAST_PRECISIONS]
        if unknown or not precision_list:
            raise UsageError(f"--precisions takes {', '.join(AUTOCAST_PRECISIONS)}; got {precisions!r}")
        report = run_torch_infer_bench(
            (str(model),) if model else ("reference", "lite"),
            tuple(int_list(sizes or "256,512,1024", "--sizes")),
            precision_list,
            batch_list or (1, 8),
            device,
            max(repeats, 1),
        )
        return BenchReport(mode, report, format_torch_infer_table(report))
    size_list = int_list(sizes or ("256,512" if mode == "browser" else "256,512,1024"), "--sizes")
    if min(size_list) < 16 or repeats < 1:
        raise UsageError("sizes must be >= 16 px and --repeats >= 1")
    if mode == "browser" and camera:
        from cin_style.bench.camera import format_camera_table, run_camera_bench

        models = (str(model),) if model else ("lite", "reference")
        report = run_camera_bench(models, tuple(int_list(sizes or "256,384", "--sizes")), node_modules=node_modules)
        return BenchReport(mode, report, format_camera_table(report))
    if mode == "browser":
        from cin_style.bench.browser import format_browser_table, run_browser_bench

        thread_list = int_list(threads, "--threads")
        if min(thread_list) < 1:
            raise UsageError("--threads must be >= 1")
        report = run_browser_bench(
            model, sides=tuple(size_list), threads=tuple(thread_list), repeats=repeats, node_modules=node_modules
        )
        return BenchReport(mode, report, format_browser_table(report))
    from cin_style.bench.infer import run_bench, to_json

    report = run_bench(tuple(size_list), repeats, memory_size or None, peer_graph=peer_graph, peer_dir=peer)
    lines = [report["table"], f"{report['torch_threads']} threads"]
    for backend, mem in report["memory"].items():
        lines.append(
            f"peak RSS {backend} for one {mem['size']}² image: {mem['peak_rss_mib']:.0f} MiB "
            f"({mem['rss_before_mib']:.0f} MiB before it)"
        )
    return BenchReport(mode, json.loads(to_json(report)), "\n".join(lines))
