"""`cin-style bench torch`: PyTorch inference throughput of the bundled models (or any
``.pt``), per size, precision and batch, on the GPU (or the CPU).  Numbers only."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from cin_style.timing import median_seconds

log = logging.getLogger(__name__)


def _synchronized(fn, device: torch.device):
    """``fn`` followed by a wait for the device: a CUDA call returns before the GPU is done."""
    if device.type != "cuda":
        return fn

    def run():
        fn()
        torch.cuda.synchronize(device)

    return run


def run_torch_infer_bench(
    models: tuple[str, ...] = ("reference", "lite"),
    sizes: tuple[int, ...] = (256, 512, 1024),
    precisions: tuple[str, ...] = ("fp16", "bf16"),
    batches: tuple[int, ...] = (1, 8),
    device: str = "auto",
    repeats: int = 5,
) -> dict:
    """Median images/s of ``model(images, weights)`` for every model (a bundled name or a
    .pt path), square size, precision (fp32, fp16, bf16 autocast) and batch; channels-last
    on CUDA.  The first call of each case warms up (cuDNN plans, allocations)."""
    from cin_style.assets.bundled import resolve_model
    from cin_style.infer.torch_stylizer import stylize_tensor
    from cin_style.nn.checkpoint import load_model
    from cin_style.nn.devices import pick_device

    dev = pick_device(device)
    rows = []
    for name in models:
        model, names = load_model(resolve_model(name))
        model = model.to(dev).eval()
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        for size in sizes:
            for batch in batches:
                images = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(size)).to(dev)
                weights = torch.full((batch, len(names)), 1.0 / len(names)).numpy()
                for precision in precisions:
                    step = _synchronized(lambda: stylize_tensor(model, images, weights, precision), dev)
                    seconds = median_seconds(step, repeats)
                    rows.append(
                        {
                            "model": Path(str(name)).stem,
                            "size": size,
                            "batch": batch,
                            "precision": precision,
                            "ms_per_batch": seconds * 1000,
                            "images_per_s": batch / seconds,
                        }
                    )
                    log.info(f"{name} {size}² batch {batch} {precision}: {batch / seconds:.1f} img/s")
        if dev.type == "cuda":
            torch.cuda.empty_cache()  # the next model starts from a clean cache
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    return {"device": dev.type, "gpu": gpu, "torch": torch.__version__, "repeats": repeats, "rows": rows}


def format_torch_infer_table(report: dict) -> str:
    where = report["gpu"] or "CPU"
    lines = [
        f"PyTorch inference on {where} (torch {report['torch']}), median of {report['repeats']} runs",
        f"{'model':12s} {'size':>6s} {'batch':>5s} {'precision':>9s} {'ms/batch':>9s} {'img/s':>8s}",
    ]
    for r in report["rows"]:
        lines.append(
            f"{r['model']:12s} {r['size']:5d}² {r['batch']:5d} {r['precision']:>9s} "
            f"{r['ms_per_batch']:9.2f} {r['images_per_s']:8.1f}"
        )
    return "\n".join(lines)
