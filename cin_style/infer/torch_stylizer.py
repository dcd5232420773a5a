"""PyTorch models as stylizers: ``TorchStylizer`` (a ``.pt`` file) and the Python API
``stylize(model, image, weights)``."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cin_style.blend.weights import weight_matrix
from cin_style.data.photos import to_array, to_tensor
from cin_style.errors import ConfigError
from cin_style.infer.stylizer import Capabilities, stylize_images
from cin_style.nn.stylenet import StyleNet

# Inference precisions: fp32, or autocast to a 16-bit type (convolutions in 16 bits;
# autocast keeps the norms' statistics in fp32).
AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
PRECISIONS = ("fp32", *AUTOCAST_DTYPES)


def autocast(device: torch.device, precision: str = "fp32"):
    """The autocast context for ``precision`` on ``device`` (none for fp32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


@torch.no_grad()
def stylize_tensor(model: StyleNet, images: torch.Tensor, weights: np.ndarray, precision: str = "fp32") -> torch.Tensor:
    """[N, 3, H, W] float in [0, 1] + [N, S] weights → [N, 3, H, W] float32."""
    if not torch.isfinite(images).all():
        raise ValueError("input image contains NaN or infinite values")
    device = next(model.parameters()).device
    w = torch.as_tensor(weights, dtype=torch.float32, device=device)
    with autocast(device, precision):
        return model(images.to(device, torch.float32).clamp(0, 1), w).float()


class TorchStylizer:
    """A PyTorch model behind the ``Stylizer`` protocol: any blend, per-pixel masks,
    and tiles for images of any size."""

    capabilities = Capabilities(masks=True, tiles=True)

    def __init__(self, path: str | os.PathLike, device: str = "auto", precision: str = "fp32"):
        from cin_style.nn.checkpoint import load_model
        from cin_style.nn.devices import pick_device

        model, names = load_model(path)
        self._attach(model, names, pick_device(device), Path(path))
        autocast(torch.device(self.device), precision)  # refuse an unknown precision now
        self.precision = precision

    @classmethod
    def from_model(cls, model: StyleNet, path: str | os.PathLike = "<model>") -> TorchStylizer:
        """A model already in memory, on the device it is on."""
        stylizer = cls.__new__(cls)
        stylizer._attach(model, model.style_names, next(model.parameters()).device, Path(path))
        return stylizer

    def _attach(self, model: StyleNet, style_names: list[str], device: torch.device, path: Path) -> None:
        self.model, self.style_names = model.to(device), list(style_names)
        self.device, self.path = device.type, path
        self.metadata: dict[str, str] = {}  # a checkpoint's facts live in the checkpoint, not here
        self.precision = "fp32"

    def run(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        images = to_tensor(np.asarray(images, np.float32))
        return to_array(stylize_tensor(self.model, images, weights, self.precision))

    def run_tiled(
        self, image: np.ndarray, weights: np.ndarray, *, tile: int | None = None, finish=None, progress=None
    ) -> np.ndarray:
        """uint8 [H, W, 3] → uint8 [H, W, 3] in tiles, in bounded memory (infer/tiles.py)."""
        from cin_style.infer.tiles import DEFAULT_TILE, stylize_tiled
        from cin_style.infer.torch_tiles import TorchTileBackend

        return stylize_tiled(
            TorchTileBackend(self.model, weights), image, tile=tile or DEFAULT_TILE, finish=finish, progress=progress
        )


def stylize(model: StyleNet, image, weights, *, normalize: bool = True, style_scale: float = 1.0):
    """Stylize one image or a batch with a blend of the model's styles.

    ``image``: a PIL image, a uint8 or float [H, W, 3] array (floats in
    [0, 1]), a list of those, or a tensor [3, H, W] / [N, 3, H, W].
    ``weights``: see ``weight_matrix``; names refer to ``model.style_names``.
    Returns the kind it was given: PIL → PIL, uint8 → uint8, float → float,
    tensor → tensor (the same convention as ``StyleRunner.stylize``).  ``style_scale`` > 1
    makes the strokes that many times larger (not for tensors: infer/scale.py works on images).
    """
    names = model.style_names
    if isinstance(image, torch.Tensor):
        single = image.dim() == 3
        batch = image[None] if single else image
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"image tensor must be [3, H, W] or [N, 3, H, W], got {list(image.shape)}")
        if style_scale != 1:
            raise ValueError("style_scale needs PIL images or arrays, not tensors")
        out = stylize_tensor(model, batch, weight_matrix(weights, names, batch.shape[0], normalize))
        return out[0] if single else out
    if not isinstance(image, (list, tuple, np.ndarray, Image.Image)):
        raise TypeError(f"cannot stylize a {type(image).__name__}; pass a PIL image, array or tensor")
    return stylize_images(TorchStylizer.from_model(model), image, weights, normalize=normalize, style_scale=style_scale)
