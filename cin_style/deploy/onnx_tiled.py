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
from cin_style.infer.contract import tiled_names
from cin_style.infer.runtimes import cpu_session
from cin_style.io.image import psnr
from cin_style.io.synthetic import textured
from cin_style.nn.stylenet import StyleNet

log = logging.getLogger(__name__)


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
    """The tiled variant (contract.py): the network one conv at a time, which
    ``StyleRunner`` drives strip by strip for images of any size in bounded memory.
    Verified by tiling a test image through onnxruntime against PyTorch untiled.
    ``weights_fp16``: weights stored in fp16, arithmetic in fp32 (``store_weights_fp16``),
    checked against the model with its weights rounded the same way."""
    from cin_style.infer.contract import VARIANT_TILED
    from cin_style.infer.tiles import PHOTO, SUM
    from cin_style.infer.torch_tiles import LayerPieces

    path = Path(path)
    check_style_names(model, style_names)
    reference = float_copy(model)
    pieces = LayerPieces(reference).eval()
    precision = "fp16-weights" if weights_fp16 else "fp32"
    s, layers = model.num_styles, pieces.layers
    input_names, output_names = tiled_names(layers)

    # Distinct example sizes, so that the tracer ties no two layers' dimensions together.
    rows, norms, streams, dynamic_rows, dynamic_streams = [], [], [], [], []
    for i, layer in enumerate(layers):
        channels = pieces.norm_block(layer).conv.in_channels
        dims = {
            2: torch.export.Dim(f"{layer.name}_h", min=2, max=65536),
            3: torch.export.Dim(f"{layer.name}_w", min=2, max=65536),
        }
        dtype = torch.float32 if layer.source == PHOTO else torch.float16
        rows.append(torch.rand(1, channels, 20 + 2 * i, 23 + 2 * i).to(dtype))
        dynamic_rows.append(dims)
        if layer.source != PHOTO:
            norms.append(torch.rand(2, channels))
        if layer.source == SUM:
            streams.append(torch.rand(1, channels, 20 + 2 * i, 23 + 2 * i).half())
            dynamic_streams.append(dims)
    shifts = [torch.zeros(pieces.norm_block(layer).conv.out_channels) for layer in layers]
    args = (torch.full((1, s), 1.0 / s), rows, norms, streams, shifts)
    dynamic = (None, dynamic_rows, [None] * len(norms), dynamic_streams, [None] * len(shifts))
    log.info(f"tracing the tiled variant (opset {opset}) ...")
    proto = export_program(pieces, args, input_names, output_names, opset, dynamic)
    if weights_fp16:
        store_weights_fp16(proto)
        reference = reference.half().float()
    meta = graph_metadata(
        model,
        style_names,
        precision,
        model_source,
        variant=VARIANT_TILED,
        residual_convs=str(2 * len(model.residuals)),
        outer_kernel=str(model.config.outer_kernel),
    )
    parity = finish_graph(proto, meta, path, (lambda data: _verify_tiled(reference, data)) if verify else None)
    return ExportResult(path, list(style_names), precision, opset, None, parity)


def _verify_tiled(model: StyleNet, onnx_bytes: bytes) -> dict:
    """Tile a textured 150x203 image (tile 64: strips of 20 rows, odd sizes) through onnxruntime
    and compare with PyTorch untiled: uint8 outputs may differ by rounding only."""
    import onnxruntime as ort

    from cin_style.infer.onnx_runner import OrtTileBackend
    from cin_style.infer.tiles import stylize_tiled

    image = textured(150, 203, seed=0, noise=20)
    weights = np.linspace(1, 2, model.num_styles, dtype=np.float32)
    weights /= weights.sum()
    session = cpu_session(onnx_bytes)
    tiled = stylize_tiled(
        OrtTileBackend(session, weights, 2 * len(model.residuals), model.config.outer_kernel), image, tile=64
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
