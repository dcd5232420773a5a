"""`cin-style bench`: inference latency, throughput and memory, printed as numbers.

Everything in one process and one run so ratios compare (these machines are
noisy); nothing here asserts a speed.
"""

from __future__ import annotations

import logging
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .config import StyleNetConfig
from .model import StyleNet

log = logging.getLogger(__name__)

NETS = {"default": dict(base_width=32, num_residual_blocks=5),
        "lite": dict(base_width=16, num_residual_blocks=5)}
NUM_STYLES = 8


def blend_rows(kind: str, num_styles: int = NUM_STYLES) -> np.ndarray:
    if kind == "one-hot":
        row = np.eye(num_styles, dtype=np.float32)[0]
    elif kind == "50/50":
        row = np.zeros(num_styles, np.float32)
        row[:2] = 0.5
    else:
        row = np.full(num_styles, 1.0 / num_styles, np.float32)
    return row[None]


def measure_sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Machine peak stand-in: best of a few large float32 matrix products."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass
class Row:
    net: str
    backend: str
    size: int
    blend: str
    median_ms: float
    gflops: float

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _backends(model: StyleNet, onnx_path: Path) -> dict[str, Callable]:
    from cin_style_export.runner import StyleRunner, cuda_driver_present

    runs: dict[str, Callable] = {}

    def torch_run(device):
        net = StyleNet(model.config).to(device).eval()
        net.load_state_dict(model.state_dict())

        def run(image, weights):
            with torch.no_grad():
                out = net(torch.from_numpy(image).to(device), torch.from_numpy(weights).to(device))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                return out
        return run

    runs["torch-cpu"] = torch_run(torch.device("cpu"))
    cpu = StyleRunner(onnx_path, device="cpu")
    runs["ort-cpu"] = cpu.run_nchw
    if torch.cuda.is_available():
        runs["torch-cuda"] = torch_run(torch.device("cuda"))
    if cuda_driver_present():
        try:
            gpu = StyleRunner(onnx_path, device="cuda")
            runs["ort-cuda"] = gpu.run_nchw
        except RuntimeError as exc:
            log.info(f"onnxruntime CUDA not measured: {exc}")
    return runs


def _repeats_for(size: int, repeats: int) -> int:
    # Large CPU images take seconds each; fewer repeats keep the run bounded.
    return max(1, repeats if size <= 512 else repeats // 2)


def run_latency(sizes=(256, 512, 1024), repeats: int = 3, nets=("default", "lite"),
                blends=("one-hot", "50/50", "all")) -> list[Row]:
    from cin_style_export.onnx_export import export_onnx

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-") as tmp:
        for net_name in nets:
            torch.manual_seed(0)
            model = StyleNet(StyleNetConfig(num_styles=NUM_STYLES, **NETS[net_name])).eval()
            onnx_path = Path(tmp) / f"{net_name}.onnx"
            export_onnx(model, [f"s{i}" for i in range(NUM_STYLES)], onnx_path, verify=False)
            runs = _backends(model, onnx_path)
            for size in sizes:
                image = np.random.default_rng(size).random((1, 3, size, size), dtype=np.float32)
                flops = model.flops(size, size)
                for blend in blends:
                    weights = blend_rows(blend)
                    for backend, run in runs.items():
                        run(image, weights)  # warm-up (allocations, cuDNN plans)
                        times = [_timed(lambda: run(image, weights))
                                 for _ in range(_repeats_for(size, repeats))]
                        median = statistics.median(times)
                        rows.append(Row(net_name, backend, size, blend, median * 1000,
                                        flops / median / 1e9))
                        log.info(f"{net_name:7s} {backend:10s} {size:5d}² {blend:7s} "
                            f"{median * 1000:9.1f} ms")
    return rows


_MEMORY_SCRIPT = """
import sys, numpy as np
from cin_style.memory import peak_rss_mib as hwm_mib

backend, size, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
image = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
weights = np.full((1, 8), 0.125, np.float32)
if backend == "torch-cpu":
    import torch
    from cin_style.model import StyleNet, StyleNetConfig
    net = StyleNet(StyleNetConfig(num_styles=8)).eval()
    before = hwm_mib()
    with torch.no_grad():
        net(torch.from_numpy(image), torch.from_numpy(weights))
else:
    from cin_style_export.runner import StyleRunner
    runner = StyleRunner(path, device="cpu", warmup=False)
    before = hwm_mib()
    runner.run_nchw(image, weights)
print(before, hwm_mib())
"""


def run_memory(size: int = 2048) -> dict[str, dict]:
    """Peak resident memory (MiB) of a fresh process stylizing one size² image on the CPU."""
    from cin_style_export.onnx_export import export_onnx

    results = {}
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-") as tmp:
        path = Path(tmp) / "default.onnx"
        torch.manual_seed(0)
        export_onnx(StyleNet(StyleNetConfig(num_styles=NUM_STYLES)).eval(),
                    [f"s{i}" for i in range(NUM_STYLES)], path, verify=False)
        for backend in ("torch-cpu", "ort-cpu"):
            proc = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, backend, str(size), str(path)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                log.info(f"memory run for {backend} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            before, peak = map(float, proc.stdout.split())
            results[backend] = {"size": size, "rss_before_mib": round(before, 1),
                                "peak_rss_mib": round(peak, 1)}
            log.info(f"{backend}: peak RSS {peak:.0f} MiB ({before:.0f} MiB before the image)")
    return results


def format_table(rows: list[Row], peak_gflops: float) -> str:
    lines = [f"{'net':8s} {'backend':10s} {'size':>6s} {'blend':8s} {'median ms':>10s} "
             f"{'GFLOP/s':>8s} {'% of sgemm':>10s}"]
    for r in rows:
        lines.append(f"{r.net:8s} {r.backend:10s} {r.size:5d}² {r.blend:8s} {r.median_ms:10.1f} "
                     f"{r.gflops:8.1f} {100 * r.gflops / peak_gflops:9.1f}%")
    return "\n".join(lines)


def run_bench(sizes=(256, 512, 1024), repeats: int = 3, memory_size: int | None = 2048) -> dict:
    threads = torch.get_num_threads()
    peak = measure_sgemm_gflops()
    log.info(f"sgemm peak: {peak:.1f} GFLOP/s ({threads} torch threads)")
    rows = run_latency(sizes, repeats)
    memory = run_memory(memory_size) if memory_size else {}
    return {"sgemm_gflops": peak, "torch_threads": threads, "rows": [r.to_dict() for r in rows],
            "memory": memory, "table": format_table(rows, peak)}


def to_json(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2)
