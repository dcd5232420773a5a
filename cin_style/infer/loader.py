"""A model → its ``Stylizer``: the fastest installed runtime for a graph (OpenVINO or
onnxruntime), PyTorch for a checkpoint or a model in memory.  Torch is imported only for
those, so the light install loads graphs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cin_style.errors import UsageError
from cin_style.infer.runtimes import AUTO_RUNTIME, DEFAULT_RUNTIME, PYTORCH, STYLIZE_RUNTIMES
from cin_style.infer.stylizer import Stylizer


def load_stylizer(path: str | os.PathLike, device: str = "auto", runtime: str = AUTO_RUNTIME) -> Stylizer:
    """A model file → what runs it.  ``runtime`` (STYLIZE_RUNTIMES): "auto" runs a graph
    with the fastest runtime installed (``fastest_graph_runtime``), and a bundled model's
    checkpoint as its graph (the same weights, faster than PyTorch); "pytorch" runs a
    checkpoint; onnxruntime or OpenVINO run a graph (a bundled checkpoint's graph)."""
    path = Path(path)
    if runtime not in STYLIZE_RUNTIMES:
        raise UsageError(f"runtime must be one of {', '.join(STYLIZE_RUNTIMES)}, got {runtime!r}", parameter="runtime")
    graph = path.suffix.lower() == ".onnx"
    if runtime == PYTORCH and graph:
        raise UsageError(f"{path.name} is an ONNX graph: PyTorch runs .pt checkpoints", parameter="runtime")
    if not graph and runtime != PYTORCH:
        from cin_style.assets.bundled import bundled_graph_of

        bundled = bundled_graph_of(path)
        if bundled is not None:
            path, graph = bundled, True
        elif runtime != AUTO_RUNTIME:
            raise UsageError(
                f"the {runtime} runtime runs .onnx graphs; export {path.name} to one first", parameter="runtime"
            )
    if graph:
        from cin_style.infer.onnx_runner import StyleRunner

        return StyleRunner(path, device=device, runtime=runtime)
    from cin_style.infer.torch_stylizer import TorchStylizer

    return TorchStylizer(path, device=device)


def exact_runtime(path: str | os.PathLike) -> str:
    """The runtime that runs a model file as it was saved, in float32: PyTorch for a
    checkpoint, onnxruntime for a graph (what evaluation and inspection use, not "auto")."""
    return DEFAULT_RUNTIME if Path(path).suffix.lower() == ".onnx" else PYTORCH


def as_stylizer(model: Any, device: str = "auto") -> Stylizer:
    """A ``Stylizer`` as it is; a PyTorch ``StyleNet`` in memory; a model file or a bundled
    model's name (``assets.bundled.resolve_model``) loaded."""
    if isinstance(model, Stylizer):
        return model
    if isinstance(model, str | os.PathLike):
        from cin_style.assets.bundled import resolve_model

        return load_stylizer(resolve_model(model), device=device)
    if hasattr(model, "style_names") and hasattr(model, "parameters"):
        from cin_style.infer.torch_stylizer import TorchStylizer

        return TorchStylizer.from_model(model)
    raise TypeError(f"cannot stylize with a {type(model).__name__}; pass a model, a model file or a stylizer")
