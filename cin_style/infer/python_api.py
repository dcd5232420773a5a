"""The Python API's one door, for every runtime: ``cin_style.stylize(model, images, weights)``."""

from __future__ import annotations

from typing import Any

from cin_style.infer.loader import as_stylizer
from cin_style.infer.pipeline import stylize_images


def stylize(model: Any, images: Any, weights: Any, **options):
    """The Python API, one door for every runtime: stylize ``images`` with a blend of the
    ``model``'s styles.

    ``model``: a loaded ``Stylizer`` (``StyleRunner``, ``TorchStylizer``), a PyTorch
    ``StyleNet``, or a model file or bundled model's name.  ``images``: a PIL image, a
    uint8/float [H, W, 3] array, a list of those, or (PyTorch models) a tensor
    [3, H, W] / [N, 3, H, W].  Results come back as their inputs came.  ``options``:
    normalize, batch_size, style_scale, tile, grain (``stylize_images``).
    """
    stylizer = as_stylizer(model)
    if type(images).__module__.startswith("torch"):
        run_tensor = getattr(stylizer, "run_tensor", None)
        if run_tensor is None:
            raise TypeError(f"tensors go to PyTorch models; {stylizer.path.name} takes PIL images or arrays")
        return run_tensor(images, weights, **options)
    return stylize_images(stylizer, images, weights, **options)
