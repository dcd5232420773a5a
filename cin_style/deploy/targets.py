"""Export to the runtimes people ship to, each checked against onnxruntime:

    openvino  OpenVINO IR (.xml + .bin) from the ONNX graph; H, W (and N) dynamic
    ort       ONNX Runtime's ORT format (.ort) for its mobile builds, with the operator
              config a reduced build needs (NAME.required_operators.config)
    tflite    LiteRT / TFLite (.tflite) from the PyTorch model with litert-torch; one fixed
              image size (--size): the network's trace with dynamic H, W fails its
              constraint check, and phone deployments run one camera size anyway
    coreml    Core ML (.mlpackage) from the PyTorch model with coremltools; flexible H, W
              (16..4096), fp16 compute by default; predictions need macOS, so here it is
              checked by its spec and program, not run

Every format keeps the style-weight input (blends at run time) and stores the graph facts
(style names, model config, weights checksum) where the format has metadata.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cin_style.errors import UsageError
from cin_style.infer.contract import INPUT_IMAGE, INPUT_WEIGHTS, OUTPUT, PARITY_SIZES
from cin_style.infer.runtimes import LITERT_METADATA_NAME, open_converted
from cin_style.io.atomic import atomic_write
from cin_style.io.image import MIN_PSNR_DB, output_parity

log = logging.getLogger(__name__)
# format → (the output's suffix, the precisions it offers, the extra that brings its converter)
TARGETS = {
    "openvino": (".xml", ("fp32", "fp16-weights"), "openvino"),  # (first precision: the default)
    "ort": (".ort", ("fp32",), None),
    "tflite": (".tflite", ("fp32", "int8"), "tflite"),
    "coreml": (".mlpackage", ("fp16", "fp32"), "coreml"),  # first: the default
}
FORMATS = ("onnx", *TARGETS)
SUFFIX_FORMATS = {suffix: name for name, (suffix, _, _) in TARGETS.items()}
DEFAULT_TFLITE_SIZE = (512, 512)
COREML_SIDE_RANGE = (16, 4096)
# Parity against onnxruntime on the same fp32 weights: fp32 targets to this max |diff|
# (outputs in [0, 1]); reduced-precision ones to a PSNR floor.
FP32_MAX_DIFF = 1e-4


@dataclass
class TargetResult:
    path: Path
    format: str
    precision: str
    files: list[Path]
    parity: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)  # what a format's check found (Core ML: its spec)


def format_of(output: Path, fmt: str | None) -> str:
    """The format asked for, or the one the output's suffix names; both must agree."""
    suffix = output.suffix.lower()
    named = "onnx" if suffix == ".onnx" else SUFFIX_FORMATS.get(suffix)
    if fmt is None:
        return named or "onnx"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    wanted = ".onnx" if fmt == "onnx" else TARGETS[fmt][0]
    if suffix != wanted:
        raise UsageError(f"--format {fmt} writes a {wanted} file: name the output NAME{wanted}")
    return fmt


def parse_size(text: str) -> tuple[int, int]:
    """``"256x320"`` → (256, 320): --size for a fixed-size target."""
    try:
        h, w = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size takes HxW, like 512x512; got {text!r}") from None
    if min(h, w) < 16:
        raise UsageError(f"--size must be at least 16x16, got {text}")
    return h, w


def default_precision(fmt: str) -> str:
    return "fp32" if fmt == "onnx" else TARGETS[fmt][1][0]


# The packages each target's converter and check need (its extra brings them).
TARGET_MODULES = {"openvino": ("openvino",), "tflite": ("litert_torch", "ai_edge_litert"), "coreml": ("coremltools",)}


def require_converter(fmt: str) -> None:
    """One line naming the extra when ``fmt``'s converter is not installed, before any work."""
    import importlib

    from cin_style.errors import missing_extra

    for module in TARGET_MODULES.get(fmt, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            raise missing_extra(f"--format {fmt}", TARGETS[fmt][2], module) from None


def check_target_options(fmt: str, precision: str, bake, masks: bool, tiled: bool, calibrate) -> None:
    offered = TARGETS[fmt][1]
    if precision not in offered:
        raise UsageError(f"--format {fmt} offers --precision {' or '.join(offered)}, not {precision}")
    for flag, on in (("--masks", masks), ("--tiled", tiled), ("--calibrate", calibrate is not None)):
        if on:
            raise UsageError(f"{flag} is an ONNX variant: --format {fmt} cannot express it")
    if bake and fmt in ("tflite", "coreml"):
        raise UsageError(f"--bake: --format {fmt} keeps the style-weight input; blend at run time")
    require_converter(fmt)


def export_target(
    fmt: str, net, names: list[str], source: Path, output: Path, *, precision: str, bake, size, verify: bool
) -> TargetResult:
    """Convert ``net`` to ``fmt`` at ``output``, checked against onnxruntime on the fp32
    ONNX graph of the same weights (unless ``verify`` is off)."""
    from cin_style.blend.weights import weights_from_specs
    from cin_style.deploy.onnx_export import export_onnx, float_copy, graph_metadata

    baked = weights_from_specs([bake], names) if bake else None
    model = float_copy(net)
    meta = graph_metadata(model, names, precision, source.name, format=fmt)
    if baked is not None:
        meta["baked_blend"] = json.dumps([float(v) for v in baked])
    if fmt == "coreml":  # checked by its spec: no ONNX reference to run against
        return _coreml(model, names, output, meta, precision)
    with tempfile.TemporaryDirectory(prefix="cin-style-target-") as tmp:
        reference = Path(tmp) / "reference.onnx"
        export_onnx(model, names, reference, bake=baked, verify=False, model_source=source.name)
        if fmt == "openvino":
            files = _openvino(reference, output, meta, precision)
        elif fmt == "ort":
            files = _ort(reference, output, Path(tmp))
        else:
            files = _tflite(model, names, output, meta, precision, size or DEFAULT_TFLITE_SIZE)
        try:
            parity = check_parity(output, reference, len(names), precision) if verify else {}
        except UsageError:
            for written in files:  # a file that does not match is not left behind, nor its parts
                written.unlink(missing_ok=True)
            raise
    return TargetResult(output, fmt, precision, files, parity)


def check_parity(path: Path, reference: Path, num_styles: int, precision: str) -> dict:
    """``path`` against onnxruntime on ``reference`` (the fp32 ONNX graph): random images at
    odd and even sizes (a fixed-size model at its size) and random blends."""
    from cin_style.infer.runtimes import input_shape, runtime_of

    got, expected = open_converted(path, threads=2), open_converted(reference, threads=2)
    fixed = input_shape(path)
    sizes = [fixed[2:]] if fixed else PARITY_SIZES
    rng = np.random.default_rng(0)
    cases = []
    for h, w in sizes:
        image = rng.random((1, 3, h, w), dtype=np.float32)
        weights = rng.dirichlet(np.ones(num_styles)).astype(np.float32)[None]
        measured = output_parity(expected(image, weights), got(image, weights))
        if measured is None:
            raise UsageError(f"{path.name}: the converted model gave non-finite outputs")  # pragma: no cover
        cases.append({"size": [h, w], "max_abs_diff": measured[0], "psnr_db": measured[1]})
    report = {
        "runtime": runtime_of(path),
        "against": "onnxruntime fp32",
        "max_abs_diff": max(c["max_abs_diff"] for c in cases),
        "min_psnr_db": min(c["psnr_db"] for c in cases),
        "cases": cases,
    }
    floor = MIN_PSNR_DB.get(precision)
    ok = report["min_psnr_db"] >= floor if floor else report["max_abs_diff"] <= FP32_MAX_DIFF
    if not ok:
        limit = f"PSNR {floor} dB" if floor else f"max |diff| {FP32_MAX_DIFF}"
        raise UsageError(
            f"{path.name} does not match onnxruntime (max |diff| {report['max_abs_diff']:.3g}, "
            f"PSNR {report['min_psnr_db']:.1f} dB; needs {limit}): not written"
        )
    return report


@contextmanager
def _quiet_stdout():
    """The converters print their progress to stdout, which is ours (``--json``): it goes
    to the log at debug level instead."""
    captured = io.StringIO()
    with redirect_stdout(captured):
        yield
    if captured.getvalue().strip():
        log.debug(captured.getvalue())


def _openvino(reference: Path, output: Path, meta: dict, precision: str) -> list[Path]:
    import openvino as ov

    model = ov.convert_model(str(reference))
    for key, value in meta.items():
        model.set_rt_info(value, ["cin_style", key])
    bin_path = output.with_suffix(".bin")
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".cin-style-") as tmp:
        staged = Path(tmp) / output.name
        ov.save_model(model, str(staged), compress_to_fp16=precision == "fp16-weights")
        # The .bin first: an .xml is never there without the weights it names.
        staged.with_suffix(".bin").replace(bin_path)
        staged.replace(output)
    return [output, bin_path]


def openvino_metadata(path: Path) -> dict[str, str]:
    import openvino as ov

    model = ov.Core().read_model(str(path))
    info = model.get_rt_info()
    return {str(k): v.astype(str) for k, v in info["cin_style"].items()} if "cin_style" in info else {}


def _ort(reference: Path, output: Path, tmp: Path) -> list[Path]:
    """onnxruntime's own converter; the .ort keeps the ONNX graph's metadata."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    work = tmp / "ort"
    work.mkdir()
    staged = work / (output.stem + ".onnx")
    shutil.copy(reference, staged)
    # Fixed: the optimizations a mobile build applies at load time need kernels it lacks.
    with _quiet_stdout():
        convert_onnx_models_to_ort(work, output_dir=work, optimization_styles=[OptimizationStyle.Fixed])
    config = output.with_name(output.stem + ".required_operators.config")
    for src, dst in ((work / "required_operators.config", config), (work / (output.stem + ".ort"), output)):
        atomic_write(dst, lambda handle, src=src: handle.write(src.read_bytes()))
    return [output, config]


def _tflite(model, names: list[str], output: Path, meta: dict, precision: str, size) -> list[Path]:
    import litert_torch
    import torch
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    h, w = size
    sample = (torch.rand(1, 3, h, w), torch.full((1, len(names)), 1.0 / len(names)))
    with tempfile.TemporaryDirectory(prefix="cin-style-tflite-") as tmp:
        plain = Path(tmp) / "plain.tflite"
        with _quiet_stdout():
            litert_torch.convert(model, sample).export(str(plain))
        data = plain.read_bytes()
        if precision == "int8":
            from ai_edge_quantizer import quantizer, recipe

            quantized = quantizer.Quantizer(str(plain), recipe.dynamic_wi8_afp32())
            with _quiet_stdout():
                data = bytes(quantized.quantize().quantized_model)
    flat = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps({**meta, "image_size": f"{h}x{w}"}).encode(), np.uint8)
    flat.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = LITERT_METADATA_NAME, len(flat.buffers) - 1
    flat.metadata = [*(flat.metadata or []), entry]
    data = bytes(flatbuffer_utils.convert_object_to_bytearray(flat))
    atomic_write(output, lambda handle: handle.write(data))
    return [output]


def _coreml(model, names: list[str], output: Path, meta: dict, precision: str) -> TargetResult:
    import coremltools as ct
    import torch

    lo, hi = COREML_SIDE_RANGE
    sample = (torch.rand(1, 3, 256, 256), torch.full((1, len(names)), 1.0 / len(names)))
    with torch.no_grad():
        traced = torch.jit.trace(model, sample)
    side = ct.RangeDim(lower_bound=lo, upper_bound=hi, default=256)
    mlmodel = ct.convert(
        traced,
        inputs=[
            # float32 in and out, as every other format; fp16 compute casts inside.
            ct.TensorType(name=INPUT_IMAGE, shape=(1, 3, side, ct.RangeDim(lo, hi, 256)), dtype=np.float32),
            ct.TensorType(name=INPUT_WEIGHTS, shape=(1, len(names)), dtype=np.float32),
        ],
        outputs=[ct.TensorType(name=OUTPUT, dtype=np.float32)],
        convert_to="mlprogram",
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        minimum_deployment_target=ct.target.iOS16,
    )
    mlmodel.short_description = f"cin-style: {len(names)} styles, blend with style_weights"
    mlmodel.user_defined_metadata.update(meta)
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".cin-style-") as tmp:
        staged = Path(tmp) / output.name
        mlmodel.save(str(staged))
        if output.exists():  # the old package goes into the temp folder, the new one takes its place
            output.replace(Path(tmp) / "previous.mlpackage")
        staged.replace(output)
    return TargetResult(output, "coreml", precision, [output], facts=coreml_facts(output))


def coreml_facts(path: Path) -> dict:
    """What Linux can check of an .mlpackage: its inputs, outputs, shapes, metadata and
    the MIL program's operations (predictions need macOS)."""
    import coremltools as ct
    from coremltools.proto import FeatureTypes_pb2

    spec = ct.utils.load_spec(str(path))
    desc = spec.description

    def shape(feature) -> dict:
        array = feature.type.multiArrayType
        ranges = [[r.lowerBound, r.upperBound] for r in array.shapeRange.sizeRanges]
        dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(array.dataType)
        return {"name": feature.name, "shape": list(array.shape), "ranges": ranges, "dtype": dtype}

    ops: dict[str, int] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
    return {
        "inputs": [shape(f) for f in desc.input],
        "outputs": [shape(f) for f in desc.output],
        "metadata": dict(desc.metadata.userDefined),
        "ops": ops,
        "spec_version": spec.specificationVersion,
    }
