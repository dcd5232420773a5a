"""int8 graphs: static quantization of an exported fp32 graph with onnxruntime's
quantization tools, calibrated on real photos, checked against fp32 on real photos.

Only the residual blocks' convolutions go to int8 (QDQ, per-channel int8 weights,
uint8 activations, percentile calibration): of the choices measured, it kept the
output closest to fp32 (docs/design-notes.md, "int8").  Instance norm, the γ/β
blend and every other op stay float.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cin_style.errors import CinStyleError
from cin_style.infer.contract import INPUT_IMAGE, INPUT_WEIGHTS, META_PREFIX, OUTPUT
from cin_style.infer.runtimes import DEFAULT_RUNTIME, cpu_session
from cin_style.io.atomic import atomic_write
from cin_style.io.image import MIN_PSNR_DB, load_image, psnr, resize_short_side
from cin_style.timing import median_seconds

log = logging.getLogger(__name__)

CALIBRATION_SIDE = 256  # calibration crops: percentile calibration needs one size
CALIBRATION_PERCENTILE = 99.99
MAX_CALIBRATION_PHOTOS = 64


class QuantizationError(CinStyleError, RuntimeError):
    """An int8 graph that cannot be made or is not good enough; meant for users."""


def _center_crop(photo: np.ndarray, side: int) -> np.ndarray:
    photo = resize_short_side(photo, side)
    h, w = photo.shape[:2]
    top, left = (h - side) // 2, (w - side) // 2
    return photo[top : top + side, left : left + side]


def _float_convs(model) -> list[str]:
    """Every Conv but the residual blocks' (graph order: head, down1, down2, residual
    blocks, up1, up2, tail): these stay float."""
    convs = [node.name for node in model.graph.node if node.op_type == "Conv"]
    return convs[:3] + convs[-3:]


def quantize_int8(
    fp32_graph: str | os.PathLike,
    output: str | os.PathLike,
    calibration: Sequence[Path],
    check_photos: Sequence[Path],
    *,
    min_psnr: float = MIN_PSNR_DB["int8"],
) -> dict:
    """Write an int8 copy of ``fp32_graph`` to ``output``; returns the parity report.

    ``calibration`` photos set the activation ranges (center crops, each with the
    next style one-hot, so every style's γ/β path is seen); ``check_photos`` (real
    photos, kept apart from calibration) compare int8 with fp32, each in three
    styles.  Nothing is written when the worst PSNR is below ``min_psnr``.
    """
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from cin_style.deploy.onnx_export import set_metadata
    from cin_style.infer.onnx_runner import StyleRunner

    fp32 = StyleRunner(fp32_graph, device="cpu", warmup=False, runtime=DEFAULT_RUNTIME)
    can = fp32.capabilities
    if can.baked or can.tiles or can.masks:
        raise QuantizationError("int8 export takes a plain graph (not baked, tiled or masks)")
    styles = len(fp32.style_names)
    if not calibration:
        raise QuantizationError("no calibration photos: pass --calibrate with a folder of photos")
    photos = list(calibration)[:MAX_CALIBRATION_PHOTOS]

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.index = 0

        def get_next(self):
            if self.index >= len(photos):
                return None
            crop = _center_crop(load_image(photos[self.index]), CALIBRATION_SIDE)
            weights = np.eye(styles, dtype=np.float32)[[self.index % styles]]
            self.index += 1
            return {INPUT_IMAGE: crop.transpose(2, 0, 1)[None].copy(), INPUT_WEIGHTS: weights}

    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="cin-style-int8-") as tmp,
        contextlib.redirect_stdout(io.StringIO()),
    ):  # the calibrator prints its progress
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_graph), str(prepared), skip_symbolic_shape=True)
        log.info(f"calibrating on {len(photos)} photos ...")
        quantize_static(
            str(prepared),
            str(quantized),
            Photos(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=_float_convs(onnx.load(str(prepared))),
            calibrate_method=CalibrationMethod.Percentile,
            extra_options={"CalibPercentile": CALIBRATION_PERCENTILE},
        )
        proto = onnx.load(str(quantized))
    seconds = time.perf_counter() - started
    session = cpu_session(proto.SerializeToString())
    cases = []
    for i, path in enumerate(check_photos):
        photo = load_image(path)
        image = photo.transpose(2, 0, 1)[None].copy()
        for k in range(3):
            weights = np.eye(styles, dtype=np.float32)[[(3 * i + k) % styles]]
            expected = fp32.run_nchw(image, weights)
            got = session.run([OUTPUT], {INPUT_IMAGE: image, INPUT_WEIGHTS: weights})[0]
            cases.append(
                {
                    "photo": Path(path).name,
                    "style": fp32.style_names[(3 * i + k) % styles],
                    "psnr_db": round(psnr(got, expected), 2),
                }
            )
    if not cases:
        raise QuantizationError("no photos to check the int8 graph against fp32")
    values = [c["psnr_db"] for c in cases]
    speed = _speed(fp32.session, session, styles)
    report = {
        "runtime": f"onnxruntime {ort.__version__} CPU",
        "precision": "int8",
        **speed,
        "min_psnr_db": min(values),
        "mean_psnr_db": round(float(np.mean(values)), 2),
        "floor_db": min_psnr,
        "calibration_photos": len(photos),
        "checked": len(cases),
        "quantize_seconds": round(seconds, 1),
        "cases": cases,
    }
    if min(values) < min_psnr:
        raise QuantizationError(
            f"int8 graph rejected: worst PSNR against fp32 {min(values):.1f} dB < "
            f"{min_psnr} dB floor (mean {report['mean_psnr_db']:.1f} dB); keep fp32 or fp16"
        )
    set_metadata(proto, {META_PREFIX + "precision": "int8", META_PREFIX + "parity": json.dumps(report)})
    data = proto.SerializeToString()
    atomic_write(output, lambda fh: fh.write(data))
    return report


def _speed(fp32_session, int8_session, styles: int, side: int = 512, repeats: int = 3) -> dict:
    """Median ms per 512² image, fp32 and int8 graphs, in this one run (numbers only)."""
    rng = np.random.default_rng(0)
    feeds = {
        INPUT_IMAGE: rng.random((1, 3, side, side), dtype=np.float32),
        INPUT_WEIGHTS: np.eye(styles, dtype=np.float32)[[0]],
    }
    times = {}
    for name, session in (("fp32", fp32_session), ("int8", int8_session)):
        median = median_seconds(lambda session=session: session.run([OUTPUT], feeds), repeats)
        times[f"{name}_ms_{side}"] = round(median * 1000, 1)
    return times
