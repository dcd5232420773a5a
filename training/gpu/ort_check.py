"""The onnxruntime CUDA check (issue 38): what the project's own runner does on a GPU, in one
results file.  Run on the device by training/gpu/ort_check.sh (onnxruntime-gpu from
ort_gpu.sh's parts); DRY_RUN=1 runs every step here on the CPU provider with small sizes.

Records, per bundled graph (reference, lite):
  providers   what the session really uses, and what this onnxruntime offers
  parity      the CUDA runner against the CPU provider and against PyTorch on the same
              weights (random images and blends), and a fresh --precision fp16 export
              against fp32 (PSNR)
  throughput  images/s per size and batch: the public array API (StyleRunner.run, NHWC
              arrays in and out), run_nchw (numpy NCHW), I/O binding (tensors on the device),
              and the fp16 graph with I/O binding
  tiled       the tiled path at the largest size: seconds, and the largest uint8 difference
              from the CPU's tiles
then the service under a bounded local load beside the runner called directly
(bench/api.py), and PyTorch on the same weights (bench/torch_infer.py).

Usage: python training/gpu/ort_check.py OUT.json
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DRY = os.environ.get("DRY_RUN") == "1"
DEVICE = "cpu" if DRY else "cuda"
SIZES = (32, 48) if DRY else (256, 512, 1024)
BATCHES = (1, 2) if DRY else (1, 8)
TILED_SIDE = 160 if DRY else 4096
REPEATS = 2 if DRY else 10
GRAPHS = ("reference", "lite")


def median_seconds(call, repeats: int = REPEATS) -> float:
    call()  # warm-up: cuDNN plans, allocations
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def binding_run(session, images: np.ndarray, weights: np.ndarray, device: str):
    """session.run_with_iobinding with the inputs already on ``device`` and the output
    left there: the tensors-stay-on-the-device rate."""
    import onnxruntime as ort

    place = "cuda" if device == "cuda" else "cpu"
    image = ort.OrtValue.ortvalue_from_numpy(images, place, 0)
    blend = ort.OrtValue.ortvalue_from_numpy(weights, place, 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input("image", image)
    binding.bind_ortvalue_input("style_weights", blend)
    binding.bind_output("stylized", place)

    def run():
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    return run


def check_graph(name: str, rng: np.random.Generator, tmp: Path) -> dict:
    import torch

    from cin_style.assets.bundled import bundled_graph, bundled_model
    from cin_style.deploy.export import export
    from cin_style.infer.onnx_runner import StyleRunner
    from cin_style.io.image import psnr
    from cin_style.nn.checkpoint import load_model

    graph = bundled_graph(name)
    runner = StyleRunner(graph, device=DEVICE, runtime="onnxruntime")
    cpu = StyleRunner(graph, device="cpu", runtime="onnxruntime")
    styles = len(runner.style_names)
    report: dict = {"graph": graph.name, "providers": runner.providers, "device": runner.device}

    images = rng.random((2, 3, 256 if not DRY else 40, 256 if not DRY else 48), dtype=np.float32)
    weights = rng.dirichlet(np.ones(styles), 2).astype(np.float32)
    on_device, on_cpu = runner.run_nchw(images, weights), cpu.run_nchw(images, weights)
    model, _ = load_model(bundled_model(name))
    torch_device = torch.device("cuda" if DEVICE == "cuda" else "cpu")
    with torch.no_grad():
        expected = (
            model.float()
            .to(torch_device)(torch.from_numpy(images).to(torch_device), torch.from_numpy(weights).to(torch_device))
            .cpu()
            .numpy()
        )
    fp16_path = tmp / f"{name}.fp16.onnx"
    export(bundled_model(name), fp16_path, precision="fp16", tiled_sibling=False)
    fp16 = StyleRunner(fp16_path, device=DEVICE, runtime="onnxruntime")
    report["parity"] = {
        "vs_cpu_provider_max_abs": float(np.abs(on_device - on_cpu).max()),
        "vs_pytorch_max_abs": float(np.abs(on_device - expected).max()),
        "fp16_graph_vs_fp32_psnr_db": psnr(fp16.run_nchw(images, weights), on_device),
    }

    rows = []
    for side in SIZES:
        for batch in BATCHES:
            nchw = rng.random((batch, 3, side, side), dtype=np.float32)
            nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))
            blend = rng.dirichlet(np.ones(styles), batch).astype(np.float32)
            cases = {
                "public_api_run": lambda: runner.run(nhwc, blend),
                "run_nchw": lambda: runner.run_nchw(nchw, blend),
                "io_binding": binding_run(runner.session, nchw, blend, runner.device),
                "fp16_io_binding": binding_run(fp16.session, nchw, blend, fp16.device),
            }
            row = {"side": side, "batch": batch}
            for case, call in cases.items():
                row[f"{case}_images_per_s"] = round(batch / median_seconds(call), 2)
            rows.append(row)
            print(name, row, flush=True)
    report["throughput"] = rows

    photo = (rng.random((TILED_SIDE, TILED_SIDE, 3)) * 255).astype(np.uint8)
    blend = weights[0]
    started = time.perf_counter()
    tiled = runner.run_tiled(photo, blend)
    seconds = time.perf_counter() - started
    tiled_cpu = cpu.run_tiled(photo, blend)
    report["tiled"] = {
        "side": TILED_SIDE,
        "seconds": round(seconds, 3),
        "max_uint8_diff_vs_cpu_tiles": int(np.abs(tiled.astype(int) - tiled_cpu).max()),
    }
    return report


def main(out: Path) -> None:
    import onnxruntime as ort

    from cin_style.bench.api import run_api_bench
    from cin_style.bench.torch_infer import run_torch_infer_bench

    rng = np.random.default_rng(0)
    result: dict = {
        "dry_run": DRY,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers_offered": ort.get_available_providers(),
    }
    try:
        import torch

        result["torch"] = torch.__version__
        result["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        result["graphs"] = [check_graph(name, rng, Path(tmp)) for name in GRAPHS]
    result["api"] = run_api_bench("lite", side=SIZES[-1], requests=40 if DRY else 400, clients=4 if DRY else 16)
    result["pytorch"] = run_torch_infer_bench(
        GRAPHS, SIZES, ("fp32", "fp16") if not DRY else ("fp32",), BATCHES, DEVICE, REPEATS
    )
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
