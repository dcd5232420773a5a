"""`cin-style bench train`: images/s of one training step, ours against
pytorch/examples' fast_neural_style step, in the same process and run.

Ours is the real trainer step (``Trainer.train_step``: crop sampling, the
CIN network, the perceptual loss, Adam) on synthetic photos and paintings.
Theirs is their TransformerNet and Vgg16 loss loaded from a folder the user
gives (never copied here), with our VGG16 weights in place of torchvision's
download, driven by the body of their training loop.  Numbers only.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from cin_style.bench.peers import peer_step, peer_vgg_state
from cin_style.io.synthetic import write_smooth_images
from cin_style.nn.vgg_layers import VGG_CHANNELS, layer_names
from cin_style.timing import median_seconds

log = logging.getLogger(__name__)

JOHNSON_STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
# (label, channels-last, TrainConfig.precision) of our step, each measured
OUR_VARIANTS = (
    ("cin-style fp32", False, "fp32"),
    ("cin-style fp32 channels-last", True, "fp32"),
    ("cin-style bf16", False, "bf16"),
    ("cin-style bf16 channels-last", True, "bf16"),
)


def vgg_flops(arch: str, deepest: str, height: int, width: int) -> int:
    """Multiply-adds x2 of a VGG stack's convolutions up to ``deepest``."""
    total, cin, h, w = 0, 3, height, width
    for name in layer_names(arch)[: layer_names(arch).index(deepest) + 1]:
        if name.startswith("conv"):
            cout = VGG_CHANNELS[int(name[4]) - 1]
            total += 2 * cin * cout * 9 * h * w
            cin = cout
        elif name.startswith("pool"):
            h, w = h // 2, w // 2
    return total


def train_step_flops(
    net_flops: int, arch: str, style_deepest: str, content_deepest: str, height: int, width: int
) -> int:
    """One image's training step: the network forward and backward (input and
    weight gradients: 3x), VGG on the output forward and backward (input
    gradients only: 2x), VGG on the photo forward up to the content layer."""
    return (
        3 * net_flops
        + 2 * vgg_flops(arch, style_deepest, height, width)
        + vgg_flops(arch, content_deepest, height, width)
    )


def our_step(
    size: int,
    batch: int,
    channels_last: bool,
    precision: str = "fp32",
    encoder=None,
    workdir: Path | None = None,
    device: str = "cpu",
    compile: bool = False,
) -> tuple[Callable[[], None], int]:
    """A ready trainer step and its FLOPs per image; ``compile`` runs the network through
    ``torch.compile``.  (Each step reads its loss back as a float, which waits for the
    GPU: wall-clock timing is honest on CUDA too.)"""
    from cin_style.config import StyleNetConfig, TrainConfig
    from cin_style.data.photos import ContentImages
    from cin_style.data.styles import parse_style_inputs
    from cin_style.nn.stylenet import StyleNet
    from cin_style.nn.vgg import build_encoder
    from cin_style.train.recipes import StyleRows, build_trainer

    workdir = workdir or Path(tempfile.mkdtemp(prefix="cin-style-bench-"))
    photos = write_smooth_images(workdir / "photos", 8, max(size, 288), seed=1)
    paintings = write_smooth_images(workdir / "styles", 4, 384, seed=2)
    config = TrainConfig(batch_size=batch, image_size=size, style_size=384, precision=precision)
    encoder = encoder or build_encoder(config.loss.encoder, config.loss.layers)
    torch.manual_seed(0)
    specs = parse_style_inputs([paintings])
    dev = torch.device(device)
    model = StyleNet(StyleNetConfig(num_styles=len(specs))).to(dev)
    trainer = build_trainer(
        StyleRows.all_styles(model, specs),
        ContentImages(photos, size),
        config,
        dev,
        encoder.to(dev),
        channels_last=channels_last,
    )
    flops = train_step_flops(
        model.flops(size, size),
        config.loss.encoder,
        _deepest(config.loss.encoder, config.loss.style_layers),
        _deepest(config.loss.encoder, config.loss.content_layers),
        size,
        size,
    )
    if compile:
        trainer.net = torch.compile(trainer.net)
    return trainer.train_step, flops


def _deepest(arch: str, layers) -> str:
    names = layer_names(arch)
    return max(layers, key=names.index)


def run_train_bench(
    peer_dir: str | Path | None = None,
    size: int = 256,
    batch: int = 4,
    steps: int = 5,
    device: str = "cpu",
    batches: tuple[int, ...] | None = None,
    compile: bool = False,
) -> dict:
    """Median images/s of training steps, GFLOP/s and, on the CPU, the share of a measured
    sgemm peak (an fp32 number: bf16 rows can pass 100 %).

    CPU: ours in fp32 and bf16, each plain and channels-last, at ``batch``.  CUDA: the GPU
    recipe (bf16 autocast, channels-last) at each of ``batches`` (default: ``batch``), and
    with ``compile`` also through ``torch.compile``.  Theirs, when ``peer_dir`` is given,
    on the same device at the same batches."""
    from cin_style.bench.peak import measure_matmul_peak
    from cin_style.nn.devices import pick_device
    from cin_style.nn.vgg import build_encoder
    from cin_style.nn.vgg_weights import resolve_vgg_weights

    dev = pick_device(device)
    gpu = dev.type == "cuda"
    batches = tuple(batches or (batch,))
    peak = measure_matmul_peak()["peak"]
    log.info(f"matmul peak: {peak:.1f} GFLOP/s ({torch.get_num_threads()} torch threads)")
    weights_file = resolve_vgg_weights("vgg16")
    encoder = build_encoder("vgg16", list(JOHNSON_STYLE_LAYERS), weights_file)
    if gpu:
        variants = [
            (f"cin-style CUDA bf16 channels-last{' compiled' if c else ''}", True, "bf16", b, c)
            for b in batches
            for c in ((False, True) if compile else (False,))
        ]
    else:
        variants = [
            (label, channels_last, precision, b, False)
            for label, channels_last, precision in OUR_VARIANTS
            for b in batches
        ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-") as tmp:
        for i, (label, channels_last, precision, b, compiled) in enumerate(variants):
            workdir = Path(tmp) / f"run{i}"
            step, flops = our_step(
                size, b, channels_last, precision, copy.deepcopy(encoder), workdir, dev.type, compiled
            )
            try:
                ips = b / median_seconds(step, steps, warmup=3 if compiled else 1)
            except Exception as exc:  # torch.compile can fail on a platform: the other rows still count
                if not compiled:
                    raise
                log.warning(f"{label}, batch {b}: torch.compile failed ({exc.__class__.__name__}: {exc})")
                continue
            rows.append({"trainer": label, "batch": b, "images_per_s": ips, "gflops": ips * flops / 1e9, "gpu": gpu})
            log.info(f"{label}, batch {b}: {ips:.3f} img/s")
    if peer_dir is not None:
        # their step runs VGG to relu4_3 on the photo too, and uses the same network shape
        from cin_style.config import StyleNetConfig
        from cin_style.nn.stylenet import StyleNet

        net = StyleNet(StyleNetConfig(num_styles=1)).flops(size, size)
        flops = 3 * net + 3 * vgg_flops("vgg16", "relu4_3", size, size)
        for b in batches:
            step = peer_step(Path(peer_dir), size, b, peer_vgg_state(weights_file), device=dev.type)
            ips = b / median_seconds(step, steps)
            rows.append(
                {
                    "trainer": "pytorch/examples",
                    "batch": b,
                    "images_per_s": ips,
                    "gflops": ips * flops / 1e9,
                    "gpu": gpu,
                }
            )
            log.info(f"pytorch/examples, batch {b}: {ips:.3f} img/s")
    base = {r["batch"]: r["images_per_s"] for r in rows if r["trainer"] == "pytorch/examples"}
    for row in rows:  # the sgemm peak is the CPU's: no share for a GPU row
        row["percent_of_sgemm"] = None if row["gpu"] else 100 * row["gflops"] / peak
        row["vs_pytorch_examples"] = row["images_per_s"] / base[row["batch"]] if row["batch"] in base else None
    return {
        "size": size,
        "batch": batch,
        "batches": list(batches),
        "device": dev.type,
        "steps": steps,
        "sgemm_gflops": peak,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
    }


def format_train_table(report: dict) -> str:
    batches = ",".join(str(b) for b in report.get("batches", [report["batch"]]))
    lines = [
        f"training step on {report.get('device', 'cpu')}, {report['size']}² batch {batches}, VGG16 to relu4_3, "
        f"median of {report['steps']} steps, {report['torch_threads']} threads, "
        f"sgemm peak {report['sgemm_gflops']:.1f} GFLOP/s",
        f"{'trainer':40s} {'batch':>5s} {'img/s':>8s} {'GFLOP/s':>8s} {'% sgemm':>8s} {'vs peer':>8s}",
    ]
    for r in report["rows"]:
        ratio = f"{r['vs_pytorch_examples']:.2f}x" if r["vs_pytorch_examples"] else "-"
        share = "-" if r["percent_of_sgemm"] is None else f"{r['percent_of_sgemm']:.1f}%"
        batch = r.get("batch", report["batch"])
        lines.append(
            f"{r['trainer']:40s} {batch:5d} {r['images_per_s']:8.3f} {r['gflops']:8.1f} {share:>8s} {ratio:>8s}"
        )
    return "\n".join(lines)
