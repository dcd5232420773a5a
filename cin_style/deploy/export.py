"""One entry point for every export: ``export(model, output, ...)`` picks the variant
from the output's suffix and the options, refuses combinations that cannot go
together, and returns what was written with its checks (``format_export`` prints it).

    .pt     a slim checkpoint (no training state), fp32 or fp16 weights
    .onnx   plain, baked (--bake), per-pixel blends (--masks), tiled (--tiled);
            fp32, fp16, fp16-weights or int8 (quantized, calibrated on photos)

A plain graph ``NAME.onnx`` gets its tiled sibling ``NAME.tiled.onnx`` (fp32) beside it
by default: the runner tiles large images through it, so memory stays bounded.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cin_style.deploy.targets import TARGETS, check_target_options, default_precision, export_target, format_of
from cin_style.errors import UsageError
from cin_style.infer.contract import GRAPH_PRECISIONS
from cin_style.io.image import MIN_PSNR_DB


@dataclass
class ExportSummary:
    """What ``export`` wrote: ``kind`` is checkpoint, graph, tiled or int8."""

    path: Path
    kind: str
    precision: str
    style_names: list[str]
    source: Path
    opset: int | None = None
    baked_blend: str | None = None
    masks: bool = False
    parity: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every file a target format wrote
    facts: dict = field(default_factory=dict)  # what a target's check found (Core ML: its spec)
    int8: dict = field(default_factory=dict)  # the int8 report (quantize_int8) and the sizes
    sibling: ExportSummary | None = None  # the tiled sibling written beside a plain graph


def _refuse_training_state(path: Path) -> None:
    from cin_style.nn.checkpoint import TRAINING_STATE_KEYS, CheckpointError, load_checkpoint

    try:
        data = load_checkpoint(path)
    except CheckpointError:
        return  # not a checkpoint of ours: nothing of a training run to lose
    if any(key in data for key in TRAINING_STATE_KEYS):
        raise UsageError(
            f"{path} holds a training run's state (optimizer, RNG, history) that a slim export would "
            f"replace; choose another output",
            parameter="replace_training_state",
        )


def _check_options(output: Path, bake, precision: str, calibrate, masks: bool, tiled: bool) -> None:
    """The variant matrix: which options go together, as usage errors."""
    if precision not in GRAPH_PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(GRAPH_PRECISIONS)}, got {precision!r}")
    if (precision == "int8") != (calibrate is not None):
        raise UsageError("--precision int8 and --calibrate PHOTOS go together")
    suffix = output.suffix.lower()
    if suffix == ".pt":
        if bake or precision == "int8":
            raise UsageError("--bake and int8 need an .onnx output")
        if masks or tiled:
            raise UsageError("--masks and --tiled are graph variants: they need an .onnx output")
        return
    if suffix != ".onnx":
        raise UsageError(f"{output}: the output (-o) must end in .onnx or .pt")
    if masks and bake:
        raise UsageError("--masks and --bake exclude each other: a baked graph has one blend")
    if tiled and (bake or precision not in ("fp32", "fp16-weights") or masks):
        raise UsageError("--tiled takes none of --bake, --masks, --precision fp16/int8")
    if precision == "int8" and (bake or masks):
        raise UsageError("int8 export takes a plain graph: no --bake or --masks")


def export(
    model: str | os.PathLike | None,
    output: str | os.PathLike,
    *,
    bake: str | None = None,
    precision: str | None = None,
    calibrate: str | os.PathLike | None = None,
    int8_floor: float = MIN_PSNR_DB["int8"],
    opset: int = 18,
    verify: bool = True,
    masks: bool = False,
    tiled: bool = False,
    tiled_sibling: bool = True,
    format: str | None = None,
    size: tuple[int, int] | None = None,
    replace_training_state: bool = False,
) -> ExportSummary:
    """Export ``model`` (a .pt path or a bundled model's name; None: the bundled reference
    model) to ``output``, in ``format`` (None: the one the output's suffix names;
    deploy/targets.py has the other runtimes; ``size`` is the fixed size of a tflite
    export; ``precision`` None is the format's default).  ``bake`` is a blend spec ("NAME=W,...") folded into the graph.
    ``tiled_sibling``: a plain graph (not baked, not masks) gets its tiled variant beside it.
    Nothing a user holds is replaced: never the source model, and a checkpoint with training
    state (optimizer, RNG, history) only with ``replace_training_state``."""
    from cin_style.assets.bundled import resolve_model
    from cin_style.io.atomic import refuse_overwriting_inputs

    source, output = resolve_model(model), Path(output)
    refuse_overwriting_inputs([output], [source])
    if output.suffix.lower() == ".pt" and output.is_file() and not replace_training_state:
        _refuse_training_state(output)
    fmt = "onnx" if output.suffix.lower() == ".pt" and format is None else format_of(output, format)
    precision = precision or default_precision(fmt)
    if output.is_dir() and fmt != "coreml":
        raise UsageError(f"{output} is a folder: name the file to write")
    if fmt != "onnx":
        check_target_options(fmt, precision, bake, masks, tiled, calibrate)
        from cin_style.nn.checkpoint import load_model

        net, names = load_model(source)
        done = export_target(fmt, net, names, source, output, precision=precision, bake=bake, size=size, verify=verify)
        return ExportSummary(
            done.path, fmt, precision, names, source, parity=done.parity, files=done.files, facts=done.facts
        )
    if size is not None:
        raise UsageError("--size is for --format tflite (a fixed image size)")
    _check_options(output, bake, precision, calibrate, masks, tiled)
    if output.suffix.lower() == ".pt":
        from cin_style.nn.checkpoint import export_checkpoint

        stored = "fp16" if precision == "fp16-weights" else precision  # a .pt stores weights only
        parity = export_checkpoint(source, output, stored)
        return ExportSummary(output, "checkpoint", stored, parity.pop("style_names"), source, parity=parity)

    from cin_style.deploy import onnx_export
    from cin_style.nn.checkpoint import load_model

    net, names = load_model(source)
    if tiled:
        return _export_tiled(net, names, source, output, opset, verify, precision == "fp16-weights")
    sibling = None
    if tiled_sibling and not (bake or masks):
        from cin_style.infer.contract import tiled_sibling_path

        # Half-precision graphs get a sibling with fp16-stored weights (half the file);
        # its arithmetic stays fp32 either way.
        half = precision in ("fp16", "fp16-weights")
        sibling = _export_tiled(net, names, source, tiled_sibling_path(output), opset, verify, half)
    if precision == "int8":
        summary = _export_int8(net, names, source, output, Path(calibrate), opset, int8_floor)
        summary.sibling = sibling
        return summary
    from cin_style.blend.weights import weights_from_specs

    baked = weights_from_specs([bake], names) if bake else None
    result = onnx_export.export_onnx(
        net,
        names,
        output,
        opset=opset,
        bake=baked,
        precision=precision,
        verify=verify,
        model_source=source.name,
        masks=masks,
    )
    return ExportSummary(
        result.path, "graph", precision, names, source, opset, result.baked_blend, masks, result.parity, sibling=sibling
    )


def _export_tiled(
    net, names: list[str], source: Path, output: Path, opset: int, verify: bool, weights_fp16: bool
) -> ExportSummary:
    from cin_style.deploy.onnx_tiled import export_tiled_onnx

    result = export_tiled_onnx(
        net, names, output, opset=opset, verify=verify, model_source=source.name, weights_fp16=weights_fp16
    )
    return ExportSummary(result.path, "tiled", result.precision, names, source, opset, parity=result.parity)


def _export_int8(
    net, names: list[str], source: Path, output: Path, calibrate: Path, opset: int, floor: float
) -> ExportSummary:
    """fp32 graph → int8 residual convolutions calibrated on ``calibrate``'s photos, checked
    on the bundled sample photos; refused below ``floor`` dB (nothing written)."""
    from cin_style.assets.bundled import bundled_samples
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.deploy.quantize import quantize_int8
    from cin_style.io.image import list_images

    with tempfile.TemporaryDirectory(prefix="cin-style-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(net, names, fp32, opset=opset, model_source=source.name)
        report = quantize_int8(
            fp32, output, list_images(calibrate), sorted(bundled_samples().glob("*.jpg")), min_psnr=floor
        )
        report = {**report, "fp32_bytes": fp32.stat().st_size, "int8_bytes": output.stat().st_size}
    return ExportSummary(output, "int8", "int8", names, source, opset, int8=report)


def format_export(summary: ExportSummary) -> list[str]:
    """The lines `cin-style export` prints."""
    if summary.sibling is not None:
        return format_export(summary.sibling) + _format_one(summary)
    return _format_one(summary)


def _format_one(summary: ExportSummary) -> list[str]:
    s, parity, lines = summary, summary.parity, []
    styles = f"{len(s.style_names)} styles"
    if s.kind == "checkpoint":
        return [
            f"wrote {s.path} ({s.precision} weights, no training state; max |diff| "
            f"{parity['max_abs_diff']:.3g}, min PSNR {parity['min_psnr_db']:.1f} dB vs {s.source})"
        ]
    if s.kind == "tiled":
        if parity:
            lines.append(
                f"tiled parity vs PyTorch untiled ({parity['runtime']}, {parity['size'][0]}x"
                f"{parity['size'][1]} in {parity['tile']}-px tiles): max uint8 diff "
                f"{parity['max_abs_diff_uint8']}, PSNR {parity['psnr_db']:.1f} dB"
            )
        return [*lines, f"wrote {s.path} (tiled variant, {s.precision}, opset {s.opset}, {styles})"]
    if s.kind == "int8":
        r = s.int8
        return [
            f"int8 vs fp32 on {r['checked']} photo/style pairs ({r['runtime']}): worst PSNR "
            f"{r['min_psnr_db']:.1f} dB, mean {r['mean_psnr_db']:.1f} dB (floor {r['floor_db']:.0f} dB); "
            f"calibrated on {r['calibration_photos']} photos",
            f"CPU speed at 512², same run: fp32 {r['fp32_ms_512']:.0f} ms, int8 {r['int8_ms_512']:.0f} ms "
            f"({r['fp32_ms_512'] / r['int8_ms_512']:.2f}x)",
            f"wrote {s.path} (int8, opset {s.opset}, {styles}, {r['int8_bytes'] / 1e6:.1f} MB vs "
            f"{r['fp32_bytes'] / 1e6:.1f} MB fp32)",
        ]
    if s.kind in TARGETS:
        return _format_target(s)
    if parity:
        lines.append(
            f"parity vs PyTorch ({parity['runtime']}): max |diff| {parity['max_abs_diff']:.3g}, "
            f"min PSNR {parity['min_psnr_db']:.1f} dB over "
            + ", ".join(f"{c['size'][0]}x{c['size'][1]}" for c in parity["cases"])
        )
    kind = ", per-pixel blends" if s.masks else (f", baked {s.baked_blend}" if s.baked_blend else "")
    return [*lines, f"wrote {s.path} ({s.precision}, opset {s.opset}, {styles}{kind})"]


def _format_target(s: ExportSummary) -> list[str]:
    lines = []
    if s.parity:
        p = s.parity
        lines.append(
            f"parity vs {p['against']} ({p['runtime']}): max |diff| {p['max_abs_diff']:.3g}, "
            f"min PSNR {p['min_psnr_db']:.1f} dB over "
            + ", ".join(f"{c['size'][0]}x{c['size'][1]}" for c in p["cases"])
        )
    if s.facts:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(s.facts["ops"].items(), key=lambda kv: -kv[1])[:6])
        sides = [r for f in s.facts["inputs"] for r in f["ranges"][2:]]
        lines.append(
            f"Core ML spec: inputs {', '.join(f['name'] for f in s.facts['inputs'])} (H, W in {sides[0]}), "
            f"output {', '.join(f['name'] for f in s.facts['outputs'])}; ops: {ops}; not run (predictions need macOS)"
        )
    size = sum(file_size(f) for f in s.files)
    names = " + ".join(f.name for f in s.files)
    lines.append(f"wrote {names} ({s.kind}, {s.precision}, {len(s.style_names)} styles, {size / 1e6:.1f} MB)")
    return lines


def file_size(path: Path) -> int:
    """Bytes on disk of a file, or of every file in a folder (an .mlpackage)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
