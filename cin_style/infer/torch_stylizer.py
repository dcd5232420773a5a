"""PyTorch models as stylizers: ``TorchStylizer`` (a ``.pt`` file, or a model in memory)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from cin_style.blend.weights import weight_matrix
from cin_style.data.photos import to_array, to_tensor
from cin_style.errors import ConfigError
from cin_style.infer.stylizer import Capabilities, image_batch, unit_float
from cin_style.nn.stylenet import StyleNet

# Inference precisions: fp32, or autocast to a 16-bit type (convolutions in 16 bits;
# autocast keeps the norms' statistics in fp32).
AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
AUTOCAST_PRECISIONS = ("fp32", *AUTOCAST_DTYPES)


def autocast(device: torch.device, precision: str = "fp32"):
    """The autocast context for ``precision`` on ``device`` (none for fp32)."""
    if precision not in AUTOCAST_PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(AUTOCAST_PRECISIONS)} (got {precision!r})")
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
    runtime = "pytorch"
    runtime_precision: str | None = None

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

    def run(self, images: np.ndarray, weights) -> np.ndarray:
        """Images + blends (``image_batch``: uint8, or float in [0, 1]) → float32 in [0, 1]."""
        batch, rows, single = image_batch(images, weights)
        if np.ndim(rows) != 4:  # per-pixel blends [N, S, h, w] go as they are
            rows = weight_matrix(rows, self.style_names, len(batch), normalize=False)
        out = to_array(stylize_tensor(self.model, to_tensor(unit_float(batch)), rows, self.precision))
        return out[0] if single else out

    def run_tiled(
        self, images: np.ndarray, weights, *, tile: int | None = None, finish=None, progress=None, grain: int = 0
    ) -> np.ndarray:
        """Images + blends (``image_batch``) → uint8, in tiles, in bounded memory (infer/tiles.py);
        ``grain``: the network sees the photos with it (grain.py)."""
        from cin_style.infer.tiles import kept_bytes, stylize_tiled_each
        from cin_style.infer.torch_tiles import TorchTileBackend

        batch, rows, single = image_batch(images, weights)
        rows = weight_matrix(rows, self.style_names, len(batch), normalize=False)
        out = stylize_tiled_each(
            lambda row: TorchTileBackend(self.model, row),
            batch,
            rows,
            tile=tile,
            finish=finish,
            progress=progress,
            grain=grain,
            kept=kept_bytes(self.runtime),
        )
        return out[0] if single else out

    def run_tensor(self, images: torch.Tensor, weights, *, normalize: bool = True, **options) -> torch.Tensor:
        """A tensor [3, H, W] or [N, 3, H, W] in [0, 1] → the same shape, on the model's
        device (``cin_style.stylize`` with tensors; ``options`` apply to arrays only)."""
        if options.get("style_scale", 1) != 1:
            raise ValueError("style_scale needs PIL images or arrays, not tensors")
        single = images.dim() == 3
        batch = images[None] if single else images
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"image tensor must be [3, H, W] or [N, 3, H, W], got {list(images.shape)}")
        out = stylize_tensor(self.model, batch, weight_matrix(weights, self.style_names, batch.shape[0], normalize))
        return out[0] if single else out
