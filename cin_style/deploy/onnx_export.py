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
import torch.nn.functional as F
from torch import nn

from cin_style import __version__
from cin_style.errors import CinStyleError, first_line
from cin_style.infer.contract import (
    FLOAT_PRECISIONS,
    GRAPH_FORMAT_VERSION,
    HALF_PRECISIONS,
    INPUT_IMAGE,
    INPUT_WEIGHTS,
    META_PREFIX,
    MIN_SIDE,
    OUTPUT,
    PARITY_SIZES,
    VARIANT_MASKS,
)
from cin_style.infer.runtimes import cpu_session
from cin_style.io.atomic import atomic_write
from cin_style.io.image import MIN_PSNR_DB, output_parity
from cin_style.nn.stylenet import (
    ConditionalInstanceNorm2d,
    StyleNet,
    UpsampleConvCIN,
    crop_to,
    phase_kernels,
    phase_upsample_conv,
)

log = logging.getLogger(__name__)

FP32_TOLERANCE = 1e-4


class ExportError(CinStyleError, RuntimeError):
    """An export that failed or did not verify; the message is meant for users."""


class _OneNormPassCIN(ConditionalInstanceNorm2d):
    """What export traces in place of each CIN layer: the same numbers, with the
    per-sample γ/β applied inside the one InstanceNormalization op.  Folding the
    batch into the channels ([1, N·C, H, W]) makes them per-channel, which is what
    the op's scale and bias are; that saves two full passes over every activation
    (the Mul and Add; docs/design-notes.md has the measurement)."""

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        if style_weights.dim() == 4:  # per-pixel maps (style masks): the plain way
            return super().forward(x, style_weights)
        n, c, h, w = x.shape
        gamma = (style_weights @ self.gamma).float().reshape(n * c)
        beta = (style_weights @ self.beta).float().reshape(n * c)
        folded = F.instance_norm(x.float().reshape(1, n * c, h, w), weight=gamma, bias=beta, eps=self.eps)
        return folded.reshape(n, c, h, w).to(x.dtype)


class _PhaseUpsampleConv(UpsampleConvCIN):
    """What export traces in place of each upsampling layer: the same numbers from one
    2x2 conv at the input's size (all four phases, 4x the channels), the phases cut at
    their offsets and interleaved by DepthToSpace — no full-size upsampled copy and its
    pad, and 4/9 of the multiply-adds (the upsampled image repeats each value 4 times).
    Chosen over resize-pad-conv and one ConvTranspose by measurement
    (docs/design-notes.md, "Upsampling")."""

    def pre_norm(self, x: torch.Tensor, size) -> torch.Tensor:
        return crop_to(phase_upsample_conv(x, self.phase_kernel, self.phase_bias), size)


class _Graph(nn.Module):
    """What gets traced: the model, optionally in fp16 and/or with a baked blend.

    fp16 graphs keep float32 inputs and outputs (cast at the edges) and their
    instance-norm statistics in float32 (see ConditionalInstanceNorm2d).
    """

    def __init__(self, model: StyleNet, baked: np.ndarray | None, fp16: bool):
        super().__init__()
        for norm in model.cin_layers():
            norm.__class__ = _OneNormPassCIN  # same parameters, one-pass forward
        for up in (model.up1, model.up2):  # from the weights as loaded: trace after this
            up.__class__ = _PhaseUpsampleConv
            conv = up.block.conv
            up.register_buffer("phase_kernel", phase_kernels(conv.weight), persistent=False)
            up.register_buffer("phase_bias", conv.bias.detach().repeat(4), persistent=False)
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


def _dynamic_shapes(baked: bool, masks: bool = False):
    batch = torch.export.Dim("batch", min=1, max=4096)
    height = torch.export.Dim("height", min=MIN_SIDE, max=32768)
    width = torch.export.Dim("width", min=MIN_SIDE, max=32768)
    shapes = {INPUT_IMAGE: {0: batch, 2: height, 3: width}}
    if masks:
        shapes[INPUT_WEIGHTS] = {
            0: batch,
            2: torch.export.Dim("map_height", min=1, max=32768),
            3: torch.export.Dim("map_width", min=1, max=32768),
        }
    elif not baked:
        shapes[INPUT_WEIGHTS] = {0: batch}
    return shapes


def _trace(graph: _Graph, num_styles: int, opset: int, masks: bool = False) -> onnx.ModelProto:
    image = torch.rand(2, 3, 64, 64)
    if masks:  # a per-pixel map of another size than the image's
        maps = torch.rand(2, num_styles, 9, 11)
        weights = maps / maps.sum(dim=1, keepdim=True)
    else:
        weights = torch.full((2, num_styles), 1.0 / num_styles)
    args = (image,) if graph.baked else (image, weights)
    names = [INPUT_IMAGE] if graph.baked else [INPUT_IMAGE, INPUT_WEIGHTS]
    return export_program(graph, args, names, [OUTPUT], opset, _dynamic_shapes(graph.baked, masks))


def export_program(
    module: nn.Module, args: tuple, input_names: list[str], output_names: list[str], opset: int, dynamic_shapes
) -> onnx.ModelProto:
    """``torch.onnx.export`` (dynamo) of ``module`` → the loaded ModelProto."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            args,
            input_names=input_names,
            output_names=output_names,
            dynamo=True,
            opset_version=opset,
            verbose=False,
            dynamic_shapes=dynamic_shapes,
        )
    if program is None:
        raise ExportError("torch.onnx.export returned no program")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.onnx"
        program.save(str(path))
        return onnx.load(str(path))  # external data (none for our sizes) folded back in


def check_style_names(model: StyleNet, style_names: list[str]) -> None:
    if len(style_names) != model.num_styles:
        raise ExportError(f"{len(style_names)} style names for a {model.num_styles}-style model")


def graph_metadata(model: StyleNet, style_names: list[str], precision: str, source: str, **extra: str) -> dict:
    """The ``cin_style.*`` metadata every graph carries (contract.py), plus ``extra``.
    ``weights_sha256`` (over the float32 weights) ties a plain graph to its tiled sibling."""
    from cin_style.nn.checkpoint import tensor_checksum

    weights = {k: v.float() for k, v in model.state_dict().items()}
    return {
        "style_names": json.dumps(list(style_names)),
        "model_config": json.dumps(model.config.to_dict()),
        "weights_sha256": tensor_checksum(weights),
        "value_range": "[0, 1]",
        "format_version": str(GRAPH_FORMAT_VERSION),
        "precision": precision,
        "baked_blend": "",
        "source": source,
        **extra,
    }


# Float initializers this small (shape-like constants) stay float32 in fp16-weights graphs.
_STORE_FP16_MIN_SIZE = 16


def store_weights_fp16(proto: onnx.ModelProto) -> None:
    """An fp32 graph → the same graph with its weights stored as fp16, each cast back
    to float32 by a Cast node.  onnxruntime folds those casts into float32 weights
    when it loads the graph, so the file is half the size and the arithmetic stays
    fp32: on CPUs that is the fast choice (onnxruntime's x86 CPU provider has no fp16
    convolutions and casts around each op, so a plain fp16 graph runs slower there)."""
    from onnx import numpy_helper

    casts, initializers = [], []
    for tensor in proto.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if values.dtype != np.float32 or values.size < _STORE_FP16_MIN_SIZE:
            initializers.append(tensor)
            continue
        stored = numpy_helper.from_array(values.astype(np.float16), tensor.name + "__fp16")
        initializers.append(stored)
        casts.append(
            onnx.helper.make_node(
                "Cast", [stored.name], [tensor.name], to=onnx.TensorProto.FLOAT, name=tensor.name + "__to_fp32"
            )
        )
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(initializers)
    nodes = casts + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def _parity_weights(rng, s: int, h: int, w: int, masks: bool) -> np.ndarray:
    """Two different blends in one batch: a one-hot row and a random mix; as maps
    (masks): a left/right split between two styles and a random per-pixel mix."""
    if not masks:
        weights = np.zeros((2, s), np.float32)
        weights[0, 0] = 1.0
        mix = rng.random(s).astype(np.float32)
        weights[1] = mix / mix.sum()
        return weights
    maps = np.zeros((2, s, 7, 9), np.float32)
    maps[0, 0, :, :4] = 1.0
    maps[0, min(1, s - 1), :, 4:] = 1.0
    mix = rng.random((s, 7, 9)).astype(np.float32)
    maps[1] = mix / mix.sum(axis=0, keepdims=True)
    return maps


def verify_parity(
    model: StyleNet, onnx_bytes: bytes, baked: np.ndarray | None, precision: str, seed: int = 0, masks: bool = False
) -> dict:
    """PyTorch fp32 vs onnxruntime (CPU) on random images; returns the numbers."""
    import onnxruntime as ort

    session = cpu_session(onnx_bytes)
    rng = np.random.default_rng(seed)
    s = model.num_styles
    cases, worst_diff, worst_psnr = [], 0.0, math.inf
    for h, w in PARITY_SIZES:
        image = rng.random((2, 3, h, w), dtype=np.float32)
        if baked is not None:
            weights = np.repeat(baked[None].astype(np.float32), 2, axis=0)
        else:
            weights = _parity_weights(rng, s, h, w, masks)
        with torch.no_grad():
            expected = model(torch.from_numpy(image), torch.from_numpy(weights)).numpy()
        feeds = {INPUT_IMAGE: image} if baked is not None else {INPUT_IMAGE: image, INPUT_WEIGHTS: weights}
        got = session.run([OUTPUT], feeds)[0]
        if got.shape != expected.shape or got.dtype != np.float32:
            raise ExportError(
                f"graph output {got.shape} {got.dtype} does not match {expected.shape} float32 at {h}x{w}"
            )
        parity = output_parity(expected, got)
        if parity is None:
            raise ExportError(f"parity check failed: the graph gives non-finite outputs at {h}x{w}")
        diff, quality = parity
        cases.append({"size": [h, w], "batch": 2, "max_abs_diff": diff, "psnr_db": round(quality, 2)})
        worst_diff, worst_psnr = max(worst_diff, diff), min(worst_psnr, quality)
    report = {
        "runtime": f"onnxruntime {ort.__version__} CPU",
        "precision": precision,
        "max_abs_diff": worst_diff,
        "min_psnr_db": round(worst_psnr, 2),
        "cases": cases,
    }
    if precision == "fp32" and worst_diff > FP32_TOLERANCE:
        raise ExportError(f"parity check failed: max |diff| {worst_diff:.3g} > {FP32_TOLERANCE}")
    if precision in HALF_PRECISIONS and worst_psnr < MIN_PSNR_DB[precision]:
        raise ExportError(f"parity check failed: {precision} PSNR {worst_psnr:.1f} dB < {MIN_PSNR_DB[precision]} dB")
    return report


def float_copy(model: StyleNet) -> StyleNet:
    """A float32 CPU copy in eval mode: the caller's model keeps its device, dtype and mode."""
    reference = StyleNet(model.config).eval()
    reference.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    return reference


def finish_graph(proto: onnx.ModelProto, meta: dict[str, str], path: Path, verify) -> dict:
    """Metadata, onnx.checker, then ``verify(bytes) -> parity`` (None: skipped), then an
    atomic write: ``path`` appears only for a graph that passed."""
    proto.producer_name, proto.producer_version = "cin-style", __version__
    set_metadata(proto, {META_PREFIX + k: v for k, v in meta.items()})
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected the graph: {first_line(exc)}") from None
    parity: dict = {}
    if verify is not None:
        log.info("verifying against PyTorch with onnxruntime ...")
        parity = verify(proto.SerializeToString())
        set_metadata(proto, {META_PREFIX + "parity": json.dumps(parity)})
    data = proto.SerializeToString()
    atomic_write(path, lambda fh: fh.write(data))
    return parity


def export_onnx(
    model: StyleNet,
    style_names: list[str],
    path: str | os.PathLike,
    *,
    opset: int = 18,
    bake: np.ndarray | None = None,
    precision: str = "fp32",
    verify: bool = True,
    model_source: str = "",
    masks: bool = False,
) -> ExportResult:
    """Trace ``model`` into ``path``; check it, verify parity, write metadata.

    ``path`` is written only once everything passed (atomically).
    """
    from cin_style.blend.weights import format_blend

    path = Path(path)
    if precision not in FLOAT_PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(FLOAT_PRECISIONS)}, got {precision!r}")
    if opset < 18:
        raise ExportError(f"opset {opset} is too old: the exporter needs opset >= 18")
    check_style_names(model, style_names)
    if masks and bake is not None:
        raise ExportError("a graph for style masks takes its blends per pixel: it cannot be baked")
    baked = None if bake is None else np.asarray(bake, dtype=np.float32).reshape(-1)
    if baked is not None and baked.shape[0] != model.num_styles:
        raise ExportError(f"baked blend has {baked.shape[0]} weights for {model.num_styles} styles")
    reference = float_copy(model)
    net = float_copy(reference)
    traced = _Graph(net.half() if precision == "fp16" else net, baked, precision == "fp16").eval()
    log.info(f"tracing ({precision}, opset {opset}{', baked' if baked is not None else ''}) ...")
    proto = _trace(traced, model.num_styles, opset, masks)
    if precision == "fp16-weights":
        store_weights_fp16(proto)
    blend_text = format_blend(baked, style_names) if baked is not None else ""
    meta = graph_metadata(
        model,
        style_names,
        precision,
        model_source,
        baked_blend=blend_text,
        inputs=INPUT_IMAGE if baked is not None else f"{INPUT_IMAGE},{INPUT_WEIGHTS}",
        **({"variant": VARIANT_MASKS} if masks else {}),
    )
    check = (lambda data: verify_parity(reference, data, baked, precision, masks=masks)) if verify else None
    parity = finish_graph(proto, meta, path, check)
    return ExportResult(path, list(style_names), precision, opset, blend_text or None, parity)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``cin_style.*`` metadata of an exported file (prefix stripped)."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key[len(META_PREFIX) :]: p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}
