"""The same model in other runtimes: open an exported file (OpenVINO IR, LiteRT/TFLite,
ONNX Runtime's ORT format, or plain ONNX) as one function ``run(image, weights)``, with the
image [N,3,H,W] float32 in [0,1] and the weights [N,S], returning the stylized batch.

This is what export's parity checks and ``bench runtimes`` drive; ``StyleRunner`` stays
the way to stylize photos.  Each runtime's package comes with its own extra (``openvino``,
``tflite``); onnxruntime is in every install.  Torch-free.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from cin_style.errors import UsageError
from cin_style.infer.contract import INPUT_IMAGE, INPUT_WEIGHTS

RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Every runtime here, with the files it opens by suffix (the first to list a suffix opens it
# by default).  onnxruntime is in every install; the others come with their extras.
RUNTIMES = {"onnxruntime": (".onnx", ".ort"), "openvino": (".xml", ".onnx"), "litert": (".tflite",)}
DEFAULT_RUNTIME = "onnxruntime"
# The runtimes that stylize photos from .onnx graphs, every variant (tiled, masks, baked) included.
GRAPH_RUNTIMES = tuple(name for name, suffixes in RUNTIMES.items() if ".onnx" in suffixes)
PYTORCH = "pytorch"  # what runs a .pt checkpoint
AUTO_RUNTIME = "auto"  # the fastest installed for the model and device (fastest_graph_runtime)
# What `stylize`/`video --runtime` and the Python API take.
STYLIZE_RUNTIMES = (AUTO_RUNTIME, *GRAPH_RUNTIMES, PYTORCH)
# Pins what "auto" picks, for a deployment that wants one runtime everywhere (the tests pin
# onnxruntime: their parity checks are against float32).
RUNTIME_ENV = "CIN_STYLE_RUNTIME"
# Which runtime opens a file by default: the first that lists its suffix.
RUNTIME_OF_SUFFIX = {suffix: name for name, suffixes in reversed(RUNTIMES.items()) for suffix in suffixes}
LITERT_METADATA_NAME = "cin_style"  # the TFLite metadata entry holding the graph's facts (JSON)


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def fastest_graph_runtime(on_gpu: bool) -> str:
    """What "auto" runs a graph with: onnxruntime on a GPU (its CUDA provider); on the
    CPU, OpenVINO where its extra is installed (it runs in bf16 on CPUs that have it,
    several times onnxruntime's speed; README, "Performance"), else onnxruntime.
    ``RUNTIME_ENV`` overrides."""
    pinned = os.environ.get(RUNTIME_ENV, "").strip()
    if pinned:
        if pinned not in GRAPH_RUNTIMES:
            raise UsageError(f"{RUNTIME_ENV} must be one of {', '.join(GRAPH_RUNTIMES)}, got {pinned!r}")
        return pinned
    if not on_gpu and openvino_installed():
        return "openvino"
    return DEFAULT_RUNTIME


def runtime_of(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in RUNTIME_OF_SUFFIX:
        raise UsageError(f"{path}: no runtime here opens {suffix or 'a file without a suffix'} files")
    return RUNTIME_OF_SUFFIX[suffix]


def session_options(threads: int | None = None, *, arena: bool = True, optimize: bool = True):
    """onnxruntime session options as every cin-style session uses them: quiet logs, all
    graph optimisations (none with ``optimize=False``: the graph's own nodes stay
    observable), ``threads`` intra-op threads (None: onnxruntime's choice)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.enable_cpu_mem_arena = arena
    if threads:
        options.intra_op_num_threads = int(threads)
    return options


def cpu_session(graph: str | os.PathLike | bytes, threads: int | None = None, **options):
    """An onnxruntime CPU session of a graph file or serialized bytes (``session_options``)."""
    import onnxruntime as ort

    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, session_options(threads, **options), providers=["CPUExecutionProvider"])


def graph_session(
    path: Path, runtime: str, *, threads: int | None = None, providers: Sequence = (), arena: bool = True
):
    """A session over an .onnx graph in ``runtime`` (one of GRAPH_RUNTIMES): onnxruntime's
    ``InferenceSession`` with ``providers`` (default: the CPU), or an ``OpenVinoSession``
    (the same interface) on the CPU."""
    if runtime not in GRAPH_RUNTIMES:
        raise UsageError(f"runtime must be one of {', '.join(GRAPH_RUNTIMES)}, got {runtime!r}", parameter="runtime")
    if runtime == "openvino":
        from cin_style.infer.openvino_session import OpenVinoSession

        return OpenVinoSession(path, threads)
    import onnxruntime as ort

    return ort.InferenceSession(
        str(path), session_options(threads, arena=arena), providers=list(providers) or ["CPUExecutionProvider"]
    )


def open_converted(
    path: str | os.PathLike, threads: int | None = None, runtime: str | None = None, precision: str | None = "f32"
) -> RunFn:
    """``path`` in ``runtime`` (None: the one its suffix names; OpenVINO also reads .onnx), on
    the CPU with ``threads`` threads.  ``precision``: OpenVINO's inference precision hint
    (f32; bf16 where the CPU has it; None: OpenVINO's own choice)."""
    runtime = runtime or runtime_of(path)
    if runtime == "openvino":
        from cin_style.infer.openvino_session import OpenVinoSession

        return _session_run(OpenVinoSession(Path(path), threads, precision))
    if runtime == "litert":
        return _open_litert(Path(path), threads)
    return _session_run(cpu_session(Path(path), threads))


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
