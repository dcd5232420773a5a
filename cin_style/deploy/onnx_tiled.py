"""The tiled variant (`cin-style export --tiled`, contract.py): the network cut at its
norm layers, each piece with its own inputs, which ``StyleRunner`` drives tile by tile
for images of any size in bounded memory."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from cin_style.deploy.onnx_export import (
    ExportError,
    ExportResult,
    check_style_names,
    export_program,
    finish_graph,
    float_copy,
    graph_metadata,
    store_weights_fp16,
)
from cin_style.infer.contract import INPUT_WEIGHTS, OUTPUT
from cin_style.infer.runtimes import cpu_session
from cin_style.io.image import psnr
from cin_style.io.synthetic import textured
from cin_style.nn.stylenet import StyleNet

log = logging.getLogger(__name__)


def tiled_names(residual_convs: int) -> tuple[list[str], list[str]]:
    """Input and output names of the tiled variant, in TileStages.forward's order."""
    from cin_style.infer.tiles import BACK, FRONT

    fronts, backs = (*FRONT, "quarter"), (*BACK, "stylized")
    inputs = (
        [INPUT_WEIGHTS]
        + [f"stats_{k}" for k in (*FRONT, *BACK)]
        + [f"in_{k}" for k in fronts]
        + [f"in_residual_{i}" for i in range(residual_convs)]
        + [f"in_{k}" for k in backs]
        + [f"size_{k}" for k in backs]
    )
    outputs = (
        list(fronts) + [f"residual_{i}" for i in range(residual_convs)] + ["residual_affine"] + list(BACK) + [OUTPUT]
    )
    return inputs, outputs


def export_tiled_onnx(
    model: StyleNet,
    style_names: list[str],
    path: str | os.PathLike,
    *,
    opset: int = 18,
    verify: bool = True,
    model_source: str = "",
    weights_fp16: bool = False,
) -> ExportResult:
    """The tiled variant (contract.py): the network cut at its norm layers, which
    ``StyleRunner`` drives tile by tile for images of any size in bounded memory.
    Verified by tiling a test image through onnxruntime against PyTorch untiled.
    ``weights_fp16``: weights stored in fp16, arithmetic in fp32 (``store_weights_fp16``),
    checked against the model with its weights rounded the same way."""
    from cin_style.infer.contract import VARIANT_TILED
    from cin_style.infer.torch_tiles import TileStages

    path = Path(path)
    check_style_names(model, style_names)
    reference = float_copy(model)
    stages = TileStages(reference).eval()
    precision = "fp16-weights" if weights_fp16 else "fp32"
    w, s = model.config.base_width, model.num_styles
    convs = len(stages.residual_blocks)
    input_names, output_names = tiled_names(convs)

    # Distinct example sizes, so that the tracer ties no two dimensions together.
    def spatial(name, channels, h, w_):
        return torch.rand(1, channels, h, w_), {
            2: torch.export.Dim(f"{name}_h", min=2, max=65536),
            3: torch.export.Dim(f"{name}_w", min=2, max=65536),
        }

    stats = [torch.rand(2, c) for c in (w, 2 * w, 4 * w, 2 * w, w, 3)]
    front = [spatial(f"front{i}", 3, 68 + 4 * i, 76 + 4 * i) for i in range(4)]
    residual = [spatial(f"res{i}", 4 * w, 21 + i, 23 + i) for i in range(convs)]
    back = [spatial(f"back{i}", 4 * w, 18 + i, 19 + i) for i in range(4)]
    sizes = [spatial(f"size{i}", 1, 70 + 4 * i, 73 + 4 * i) for i in range(4)]
    args = (
        torch.full((1, s), 1.0 / s),
        stats,
        [t for t, _ in front],
        [t for t, _ in residual],
        [t for t, _ in back],
        [t for t, _ in sizes],
    )
    dynamic = (
        None,
        [None] * 6,
        [d for _, d in front],
        [d for _, d in residual],
        [d for _, d in back],
        [d for _, d in sizes],
    )
    log.info(f"tracing the tiled variant (opset {opset}) ...")
    proto = export_program(stages, args, input_names, output_names, opset, dynamic)
    if weights_fp16:
        store_weights_fp16(proto)
        reference = reference.half().float()
    meta = graph_metadata(model, style_names, precision, model_source, variant=VARIANT_TILED, residual_convs=str(convs))
    parity = finish_graph(proto, meta, path, (lambda data: _verify_tiled(reference, data)) if verify else None)
    return ExportResult(path, list(style_names), precision, opset, None, parity)


def _verify_tiled(model: StyleNet, onnx_bytes: bytes) -> dict:
    """Tile a textured 150x203 image (tile 64: 3x4 tiles, odd sizes) through onnxruntime
    and compare with PyTorch untiled: uint8 outputs may differ by rounding only."""
    import onnxruntime as ort

    from cin_style.infer.onnx_runner import OrtTileBackend
    from cin_style.infer.tiles import stylize_tiled

    image = textured(150, 203, seed=0, noise=20)
    weights = np.linspace(1, 2, model.num_styles, dtype=np.float32)
    weights /= weights.sum()
    session = cpu_session(onnx_bytes)
    tiled = stylize_tiled(
        OrtTileBackend(session, weights, 2 * len(model.residuals)), image, tile=64, buffer_dtype=np.float32
    )
    with torch.no_grad():
        whole = (
            model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, torch.from_numpy(weights)[None])[0]
            .permute(1, 2, 0)
            .numpy()
        )
    expected = (np.clip(whole, 0, 1) * 255 + 0.5).astype(np.uint8)
    diff = np.abs(tiled.astype(int) - expected)
    report = {
        "runtime": f"onnxruntime {ort.__version__}",
        "size": [203, 150],
        "tile": 64,
        "max_abs_diff_uint8": int(diff.max()),
        "psnr_db": round(psnr(tiled / 255, expected / 255), 2),
    }
    if diff.max() > 1:
        raise ExportError(f"tiled parity check failed: uint8 outputs differ by up to {diff.max()}")
    return report
