"""Stylize images with a PyTorch model: ``stylize(model, image, weights)``."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .blend import weight_matrix
from .data import to_array, to_tensor
from .imageio import as_float_image, like_input
from .model import StyleNet


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def stylize_tensor(model: StyleNet, images: torch.Tensor, weights: np.ndarray) -> torch.Tensor:
    """[N, 3, H, W] float in [0, 1] + [N, S] weights → [N, 3, H, W]."""
    if not torch.isfinite(images).all():
        raise ValueError("input image contains NaN or infinite values")
    device = _model_device(model)
    w = torch.as_tensor(weights, dtype=torch.float32, device=device)
    return model(images.to(device, torch.float32).clamp(0, 1), w).float()


def stylize(model: StyleNet, image, weights, *, normalize: bool = True):
    """Stylize one image or a batch with a blend of the model's styles.

    ``image``: a PIL image, a uint8 or float [H, W, 3] array (floats in
    [0, 1]), or a tensor [3, H, W] / [N, 3, H, W].  ``weights``: see
    ``weight_matrix``; names refer to ``model.style_names``.
    Returns the kind it was given: PIL → PIL, uint8 → uint8, float → float,
    tensor → tensor (the same convention as ``StyleRunner.stylize``).
    """
    names = model.style_names
    if isinstance(image, (Image.Image, np.ndarray)):
        array, kind = as_float_image(image)
        out = stylize_tensor(model, to_tensor(array)[None], weight_matrix(weights, names, 1, normalize))
        return like_input(to_array(out[0]), kind)
    if isinstance(image, torch.Tensor):
        single = image.dim() == 3
        batch = image[None] if single else image
        if batch.dim() != 4 or batch.shape[1] != 3:
            raise ValueError(f"image tensor must be [3, H, W] or [N, 3, H, W], got {list(image.shape)}")
        out = stylize_tensor(model, batch, weight_matrix(weights, names, batch.shape[0], normalize))
        return out[0] if single else out
    raise TypeError(f"cannot stylize a {type(image).__name__}; pass a PIL image, array or tensor")
