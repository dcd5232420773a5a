"""A model → its ``Stylizer``: onnxruntime (or OpenVINO) for a graph, PyTorch for a
checkpoint or a model in memory.  Torch is imported only for those, so the light install
loads graphs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cin_style.errors import UsageError
from cin_style.infer.runtimes import DEFAULT_RUNTIME
from cin_style.infer.stylizer import Stylizer


def load_stylizer(path: str | os.PathLike, device: str = "auto", runtime: str = DEFAULT_RUNTIME) -> Stylizer:
    """``.onnx`` → the graph runner (onnxruntime, or OpenVINO with ``runtime``); anything
    else → a PyTorch checkpoint.  A bundled model's checkpoint runs as its graph in a
    runtime other than onnxruntime."""
    path = Path(path)
    if runtime != DEFAULT_RUNTIME and path.suffix.lower() != ".onnx":
        from cin_style.assets.bundled import bundled_graph_of

        graph = bundled_graph_of(path)
        if graph is None:
            raise UsageError(
                f"the {runtime} runtime runs .onnx graphs; export {path.name} to one first", parameter="runtime"
            )
        path = graph
    if path.suffix.lower() == ".onnx":
        from cin_style.infer.onnx_runner import StyleRunner

        return StyleRunner(path, device=device, runtime=runtime)
    from cin_style.infer.torch_stylizer import TorchStylizer

    return TorchStylizer(path, device=device)


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
