"""The same model in other runtimes: open an exported file (OpenVINO IR, LiteRT/TFLite,
ONNX Runtime's ORT format, or plain ONNX) as one function ``run(image, weights)``, with the
image [N,3,H,W] float32 in [0,1] and the weights [N,S], returning the stylized batch.

This is what export's parity checks and ``bench --runtimes`` drive; ``StyleRunner`` stays
the way to stylize photos.  Each runtime's package comes with its own extra (``openvino``,
``tflite``); onnxruntime is in every install.  Torch-free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cin_style.errors import UsageError
from cin_style.infer.contract import INPUT_IMAGE, INPUT_WEIGHTS

RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Which runtime opens which file, by its suffix.
RUNTIME_OF_SUFFIX = {".onnx": "onnxruntime", ".ort": "onnxruntime", ".xml": "openvino", ".tflite": "litert"}
LITERT_METADATA_NAME = "cin_style"  # the TFLite metadata entry holding the graph's facts (JSON)


def runtime_of(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in RUNTIME_OF_SUFFIX:
        raise UsageError(f"{path}: no runtime here opens {suffix or 'a file without a suffix'} files")
    return RUNTIME_OF_SUFFIX[suffix]


def open_converted(
    path: str | os.PathLike, threads: int | None = None, runtime: str | None = None, precision: str | None = "f32"
) -> RunFn:
    """``path`` in ``runtime`` (None: the one its suffix names; OpenVINO also reads .onnx), on
    the CPU with ``threads`` threads.  ``precision``: OpenVINO's inference precision hint
    (f32; bf16 where the CPU has it; None: OpenVINO's own choice)."""
    runtime = runtime or runtime_of(path)
    if runtime == "openvino":
        return _open_openvino(Path(path), threads, precision)
    if runtime == "litert":
        return _open_litert(Path(path), threads)
    return _open_onnxruntime(Path(path), threads)


def _open_onnxruntime(path: Path, threads: int | None) -> RunFn:
    from cin_style.infer.onnx_runner import cpu_session

    return _session_run(cpu_session(path, threads))


def _open_openvino(path: Path, threads: int | None, precision: str | None) -> RunFn:
    from cin_style.infer.openvino_session import OpenVinoSession

    return _session_run(OpenVinoSession(path, threads, precision))


def _session_run(session) -> RunFn:
    """``run`` over an onnxruntime session or an OpenVinoSession (the same interface); a
    baked graph has no weights input, and is fed none."""
    names = {i.name for i in session.get_inputs()}

    def run(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
        feed = {INPUT_IMAGE: image, INPUT_WEIGHTS: weights}
        return session.run(None, {k: v for k, v in feed.items() if k in names})[0]

    return run


def _open_litert(path: Path, threads: int | None) -> RunFn:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads or 1)
    interpreter.allocate_tensors()
    inputs = {len(d["shape"]): d for d in interpreter.get_input_details()}  # 4-D image, 2-D weights
    output = interpreter.get_output_details()[0]
    fixed = tuple(int(v) for v in inputs[4]["shape"])

    def run(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
        if image.shape != fixed:
            raise UsageError(f"{path.name} takes images of shape {list(fixed)} only, got {list(image.shape)}")
        interpreter.set_tensor(inputs[4]["index"], np.ascontiguousarray(image, np.float32))
        if 2 in inputs:
            interpreter.set_tensor(inputs[2]["index"], np.ascontiguousarray(weights, np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(output["index"]).copy()

    return run


def input_shape(path: str | os.PathLike) -> tuple[int, ...] | None:
    """A LiteRT model's fixed image shape [1,3,H,W]; None for the runtimes with dynamic H, W."""
    if runtime_of(path) != "litert":
        return None
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_input_details()
    return next(tuple(int(v) for v in d["shape"]) for d in details if len(d["shape"]) == 4)


def litert_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The graph facts (style names, model config, ...) stored in a .tflite file."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(Path(path))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == LITERT_METADATA_NAME:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode())
    return {}
