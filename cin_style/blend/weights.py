"""Style blends: ``name=weight`` specs → validated weight vectors.

numpy only, so the torch-free ONNX runner shares exactly this code with the
PyTorch path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from cin_style.blend.specs import SpecError, parse_weighted_names
from cin_style.errors import CinStyleError


class BlendError(CinStyleError, ValueError):
    """A style blend that cannot be built; the message is meant for users."""


_FLOAT32_MAX = float(np.finfo(np.float32).max)
_OVERFLOW = "style weights too large: they or their sum overflow float32; use smaller weights (only ratios matter)"


def parse_style_spec(spec: str) -> list[tuple[str, float]]:
    """``"starry_night=0.7,great_wave=0.3"`` → [("starry_night", 0.7), ("great_wave", 0.3)].

    A bare name (or index) means weight 1.
    """
    try:
        return parse_weighted_names(spec, "=", "style")
    except SpecError as exc:
        raise BlendError(str(exc)) from None


def resolve_style(name: str, style_names: Sequence[str]) -> int:
    """A style name or 0-based index → index; unknown names list the valid ones."""
    if name in style_names:
        return list(style_names).index(name)
    if name.lstrip("-").isdigit():
        index = int(name)
        if 0 <= index < len(style_names):
            return index
        raise BlendError(
            f"style index {index} out of range: the model has {len(style_names)} styles (0..{len(style_names) - 1})"
        )
    raise BlendError(f"unknown style {name!r}; valid styles: {', '.join(style_names)}")


def blend_weights(
    items: Iterable[tuple[str | int, float]] | Mapping[str, float], style_names: Sequence[str], normalize: bool = True
) -> np.ndarray:
    """(name or index, weight) pairs → float32 vector of len(style_names).

    Repeated styles add up.  Negative, NaN and infinite weights are rejected;
    with ``normalize`` the vector is scaled to sum to 1.
    """
    if isinstance(items, Mapping):
        items = items.items()
    vector = np.zeros(len(style_names), dtype=np.float64)
    count = 0
    for name, weight in items:
        weight = float(weight)
        if math.isnan(weight) or math.isinf(weight):
            raise BlendError(f"weight for style {name!r} must be a finite number, got {weight}")
        if weight < 0:
            raise BlendError(f"weight for style {name!r} is negative ({weight}); weights must be >= 0")
        index = name if isinstance(name, int) else resolve_style(str(name), style_names)
        if not 0 <= index < len(style_names):
            raise BlendError(f"style index {index} out of range (0..{len(style_names) - 1})")
        with np.errstate(over="ignore"):
            vector[index] += weight
        count += 1
    if count == 0:
        raise BlendError("no styles given")
    with np.errstate(over="ignore"):  # an overflow is refused just below, in words
        total = vector.sum()
    if not total <= _FLOAT32_MAX:  # also catches an infinite or NaN sum
        raise BlendError(_OVERFLOW)
    if normalize:
        if total <= 0:
            raise BlendError("style weights sum to 0; give at least one positive weight")
        vector /= total
    return vector.astype(np.float32)


def weights_from_specs(specs: Sequence[str], style_names: Sequence[str], normalize: bool = True) -> np.ndarray:
    """CLI form: several ``--style`` values (each may hold a comma list) → one vector."""
    items = [item for spec in specs for item in parse_style_spec(spec)]
    return blend_weights(items, style_names, normalize=normalize)


def format_blend(vector: np.ndarray, style_names: Sequence[str]) -> str:
    """Weight vector → ``"a=0.5,b=0.5"`` (zero weights left out)."""
    return ",".join(f"{n}={float(w):.4g}" for n, w in zip(style_names, vector) if w != 0)


def check_weight_matrix(weights: np.ndarray, num_styles: int, batch: int) -> np.ndarray:
    """Validate a [batch, num_styles] (or [num_styles], broadcast) weight array."""
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 1:
        weights = np.broadcast_to(weights, (batch, weights.shape[0]))
    if weights.ndim != 2 or weights.shape != (batch, num_styles):
        raise BlendError(f"style weights must be [{batch}, {num_styles}], got {list(weights.shape)}")
    if not np.all(np.isfinite(weights)):
        raise BlendError("style weights contain NaN or infinity")
    if np.any(weights < 0):
        raise BlendError("style weights must be >= 0")
    return weights.copy()  # contiguous and writable (a broadcast view is neither)


def weight_matrix(weights, style_names: Sequence[str], batch: int, normalize: bool = True) -> np.ndarray:
    """Any accepted blend form → validated float32 [batch, num_styles].

    Accepts a spec string (``"a=0.7,b=0.3"``), a list of spec strings, a
    ``{name: weight}`` mapping, a style index, or a numeric vector/matrix.
    """
    if isinstance(weights, str):
        vector = weights_from_specs([weights], style_names, normalize)
    elif isinstance(weights, Mapping):
        vector = blend_weights(weights, style_names, normalize)
    elif isinstance(weights, (int, np.integer)) and not isinstance(weights, bool):
        vector = blend_weights([(int(weights), 1.0)], style_names, normalize)
    elif isinstance(weights, (list, tuple)) and weights and all(isinstance(w, str) for w in weights):
        vector = weights_from_specs(list(weights), style_names, normalize)
    else:
        if hasattr(weights, "detach"):  # a torch tensor, without importing torch here
            weights = weights.detach().cpu().numpy()
        with np.errstate(over="ignore"):  # a weight past float32 becomes inf, refused in words
            as_float32 = np.asarray(weights, dtype=np.float32)
        matrix = check_weight_matrix(as_float32, len(style_names), batch)
        if normalize:
            sums = matrix.sum(axis=1, keepdims=True, dtype=np.float64)
            if not np.all(sums <= _FLOAT32_MAX):
                raise BlendError(_OVERFLOW)
            if np.any(sums <= 0):
                raise BlendError("style weights sum to 0; give at least one positive weight")
            matrix = matrix / sums
        return matrix.astype(np.float32)
    return check_weight_matrix(vector, len(style_names), batch)
