"""Model files behind one interface, so the CLI treats ``.pt`` and ``.onnx`` alike.

A stylizer has ``style_names``, ``device`` (what actually runs) and
``run(images [N, H, W, 3] float32, weights [N, S]) -> [N, H, W, 3]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class TorchStylizer:
    def __init__(self, path: str | Path, device: str = "auto"):

        from .checkpoint import load_model
        from .devices import pick_device

        self.model, self.style_names = load_model(path)
        self._device = pick_device(device)
        self.model.to(self._device)
        self.device = self._device.type
        self.path = Path(path)

    def run(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        from .data import to_array, to_tensor
        from .stylize import stylize_tensor

        return to_array(stylize_tensor(self.model, to_tensor(np.asarray(images, np.float32)), weights))


def load_stylizer(path: str | Path, device: str = "auto"):
    """``.onnx`` → onnxruntime runner; anything else → PyTorch checkpoint."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from cin_style_export.runner import StyleRunner

        return StyleRunner(path, device=device)
    return TorchStylizer(path, device=device)
