"""Export a trained model to a standard ONNX graph, verified against PyTorch.

Graph contract (what deployments may rely on):

* input ``image``: float32 [N, 3, H, W], RGB in [0, 1]; H, W >= 16, any size;
* input ``style_weights``: float32 [N, num_styles], one blend per image
  (absent in a ``bake``d graph, which has the blend folded into constants);
* output ``stylized``: float32 [N, 3, H, W] in [0, 1], the input's exact size;
* N, H and W are dynamic; only standard ONNX ops (default opset 18);
* metadata props: ``cin_style.style_names`` (JSON list), ``cin_style.model_config``
  (JSON), ``cin_style.value_range``, ``cin_style.format_version``,
  ``cin_style.precision``, ``cin_style.baked_blend``, ``cin_style.parity`` (JSON).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from cin_style import __version__
from cin_style.atomic import atomic_write
from cin_style.errors import CinStyleError, first_line
from cin_style.imageio import psnr

from .contract import (GRAPH_FORMAT_VERSION, INPUT_IMAGE, INPUT_WEIGHTS, META_PREFIX, MIN_SIDE,
                       OUTPUT)
from cin_style.model import StyleNet

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-4
FP16_MIN_PSNR = 40.0
# Sizes the parity check runs at: square, odd, and the minimum side.
PARITY_SIZES = ((64, 64), (37, 53), (16, 23))


class ExportError(CinStyleError, RuntimeError):
    """An export that failed or did not verify; the message is meant for users."""


class _Graph(nn.Module):
    """What gets traced: the model, optionally in fp16 and/or with a baked blend.

    fp16 graphs keep float32 inputs and outputs (cast at the edges) and their
    instance-norm statistics in float32 (see ConditionalInstanceNorm2d).
    """

    def __init__(self, model: StyleNet, baked: np.ndarray | None, fp16: bool):
        super().__init__()
        self.model = model
        self.fp16 = fp16
        self.baked = baked is not None
        if baked is not None:
            self.register_buffer("blend", torch.as_tensor(baked, dtype=torch.float32).view(1, -1))

    def _run(self, image, style_weights):
        if self.fp16:
            out = self.model(image.half(), style_weights.half())
            return out.float()
        return self.model(image, style_weights)

    def forward(self, image, style_weights=None):
        if self.baked:
            style_weights = self.blend.expand(image.shape[0], -1)
        return self._run(image, style_weights)


@dataclass
class ExportResult:
    path: Path
    style_names: list[str]
    precision: str
    opset: int
    baked_blend: str | None
    parity: dict = field(default_factory=dict)


def _dynamic_shapes(baked: bool):
    batch = torch.export.Dim("batch", min=1, max=4096)
    height = torch.export.Dim("height", min=MIN_SIDE, max=32768)
    width = torch.export.Dim("width", min=MIN_SIDE, max=32768)
    shapes = {INPUT_IMAGE: {0: batch, 2: height, 3: width}}
    if not baked:
        shapes[INPUT_WEIGHTS] = {0: batch}
    return shapes


def _trace(graph: _Graph, num_styles: int, opset: int) -> onnx.ModelProto:
    image = torch.rand(2, 3, 64, 64)
    args = (image,) if graph.baked else (image, torch.full((2, num_styles), 1.0 / num_styles))
    names = [INPUT_IMAGE] if graph.baked else [INPUT_IMAGE, INPUT_WEIGHTS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(graph, args, input_names=names, output_names=[OUTPUT],
                                    dynamo=True, opset_version=opset, verbose=False,
                                    dynamic_shapes=_dynamic_shapes(graph.baked))
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.onnx"
        program.save(str(path))
        return onnx.load(str(path))  # external data (none for our sizes) folded back in


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def verify_parity(model: StyleNet, onnx_bytes: bytes, baked: np.ndarray | None,
                  precision: str, seed: int = 0) -> dict:
    """PyTorch fp32 vs onnxruntime (CPU) on random images; returns the numbers."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    s = model.num_styles
    cases, worst_diff, worst_psnr = [], 0.0, math.inf
    for h, w in PARITY_SIZES:
        image = rng.random((2, 3, h, w), dtype=np.float32)
        if baked is not None:
            weights = np.repeat(baked[None].astype(np.float32), 2, axis=0)
        else:  # two different blends in one batch: a one-hot row and a random mix
            weights = np.zeros((2, s), np.float32)
            weights[0, 0] = 1.0
            mix = rng.random(s).astype(np.float32)
            weights[1] = mix / mix.sum()
        with torch.no_grad():
            expected = model(torch.from_numpy(image), torch.from_numpy(weights)).numpy()
        feeds = {INPUT_IMAGE: image} if baked is not None else {INPUT_IMAGE: image, INPUT_WEIGHTS: weights}
        got = session.run([OUTPUT], feeds)[0]
        if got.shape != expected.shape or got.dtype != np.float32:
            raise ExportError(f"graph output {got.shape} {got.dtype} does not match "
                              f"{expected.shape} float32 at {h}x{w}")
        if not np.isfinite(got).all():  # NaN would slip through min()/max() below
            raise ExportError(f"parity check failed: the graph gives non-finite outputs at {h}x{w}")
        diff, quality = float(np.abs(got - expected).max()), psnr(got, expected)
        cases.append({"size": [h, w], "batch": 2, "max_abs_diff": diff, "psnr_db": round(quality, 2)})
        worst_diff, worst_psnr = max(worst_diff, diff), min(worst_psnr, quality)
    report = {"runtime": f"onnxruntime {ort.__version__} CPU", "precision": precision,
              "max_abs_diff": worst_diff, "min_psnr_db": round(worst_psnr, 2), "cases": cases}
    if precision == "fp32" and worst_diff > FP32_TOLERANCE:
        raise ExportError(f"parity check failed: max |diff| {worst_diff:.3g} > {FP32_TOLERANCE}")
    if precision == "fp16" and worst_psnr < FP16_MIN_PSNR:
        raise ExportError(f"parity check failed: fp16 PSNR {worst_psnr:.1f} dB < {FP16_MIN_PSNR} dB")
    return report


def export_onnx(model: StyleNet, style_names: list[str], path: str | os.PathLike, *,
                opset: int = 18, bake: np.ndarray | None = None, precision: str = "fp32",
                verify: bool = True, model_source: str = "",
) -> ExportResult:
    """Trace ``model`` into ``path``; check it, verify parity, write metadata.

    ``path`` is written only once everything passed (atomically).
    """
    from cin_style.blend import format_blend

    path = Path(path)
    if precision not in ("fp32", "fp16"):
        raise ExportError(f"precision must be fp32 or fp16, got {precision!r}")
    if opset < 18:
        raise ExportError(f"opset {opset} is too old: the exporter needs opset >= 18")
    if len(style_names) != model.num_styles:
        raise ExportError(f"{len(style_names)} style names for a {model.num_styles}-style model")
    baked = None if bake is None else np.asarray(bake, dtype=np.float32).reshape(-1)
    if baked is not None and baked.shape[0] != model.num_styles:
        raise ExportError(f"baked blend has {baked.shape[0]} weights for {model.num_styles} styles")
    # A float32 CPU copy: the caller's model keeps its device, dtype and train/eval mode.
    reference = StyleNet(model.config).eval()
    reference.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    traced = _Graph(StyleNet(reference.config), baked, precision == "fp16")
    traced.model.load_state_dict(reference.state_dict())
    if precision == "fp16":
        traced.model.half()
    traced.eval()
    log.info(f"tracing ({precision}, opset {opset}{', baked' if baked is not None else ''}) ...")
    proto = _trace(traced, model.num_styles, opset)
    proto.producer_name, proto.producer_version = "cin-style", __version__
    blend_text = format_blend(baked, style_names) if baked is not None else ""
    meta = {
        "style_names": json.dumps(list(style_names)),
        "model_config": json.dumps(model.config.to_dict()),
        "value_range": "[0, 1]",
        "format_version": str(GRAPH_FORMAT_VERSION),
        "precision": precision,
        "baked_blend": blend_text,
        "inputs": INPUT_IMAGE if baked is not None else f"{INPUT_IMAGE},{INPUT_WEIGHTS}",
        "source": model_source,
    }
    set_metadata(proto, {META_PREFIX + k: v for k, v in meta.items()})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the graph: {first_line(exc)}") from None
    parity: dict = {}
    if verify:
        log.info("verifying against PyTorch with onnxruntime ...")
        parity = verify_parity(reference, proto.SerializeToString(), baked, precision)
        set_metadata(proto, {META_PREFIX + "parity": json.dumps(parity)})
    data = proto.SerializeToString()
    atomic_write(path, lambda fh: fh.write(data))
    return ExportResult(path, list(style_names), precision, opset, blend_text or None, parity)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``cin_style.*`` metadata of an exported file (prefix stripped)."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key[len(META_PREFIX):]: p.value for p in proto.metadata_props
            if p.key.startswith(META_PREFIX)}
