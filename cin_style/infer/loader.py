"""A model file → its ``Stylizer``: onnxruntime for a graph, PyTorch for a checkpoint.
Torch is imported only for a ``.pt`` file, so the light install loads graphs."""

from __future__ import annotations

import os
from pathlib import Path

from cin_style.infer.stylizer import Stylizer


def load_stylizer(path: str | os.PathLike, device: str = "auto") -> Stylizer:
    """``.onnx`` → the onnxruntime runner; anything else → a PyTorch checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from cin_style.infer.onnx_runner import StyleRunner

        return StyleRunner(path, device=device)
    from cin_style.infer.torch_stylizer import TorchStylizer

    return TorchStylizer(path, device=device)
