"""A model file → its ``Stylizer``: onnxruntime for a graph, PyTorch for a checkpoint.
Torch is imported only for a ``.pt`` file, so the light install loads graphs."""

from __future__ import annotations

import os
from pathlib import Path

from cin_style.errors import UsageError
from cin_style.infer.stylizer import Stylizer


def load_stylizer(path: str | os.PathLike, device: str = "auto", runtime: str = "onnxruntime") -> Stylizer:
    """``.onnx`` → the graph runner (onnxruntime, or OpenVINO with ``runtime``); anything
    else → a PyTorch checkpoint."""
    path = Path(path)
    if runtime != "onnxruntime" and path.suffix.lower() != ".onnx":
        from cin_style.assets.bundled import bundled_graph, models_folder

        if path.parent != models_folder():
            raise UsageError(
                f"--runtime {runtime} runs .onnx graphs: `cin-style export {path.name} -o NAME.onnx` first"
            )
        path = bundled_graph(path.stem)  # a bundled model: its ONNX copy
    if path.suffix.lower() == ".onnx":
        from cin_style.infer.onnx_runner import StyleRunner

        return StyleRunner(path, device=device, runtime=runtime)
    from cin_style.infer.torch_stylizer import TorchStylizer

    return TorchStylizer(path, device=device)
