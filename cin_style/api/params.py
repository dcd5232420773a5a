"""The options of a stylize request, parsed strictly: from query parameters (or form
fields, strings) and an optional JSON object (typed).  Every problem is an
``ApiError`` with an HTTP status and one line.  Torch-free."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cin_style.blend.weights import format_blend, weight_matrix
from cin_style.errors import CinStyleError
from cin_style.infer.scale import MAX_STYLE_SCALE
from cin_style.infer.stylizer import Stylizer, blend_for

# format → (Pillow's name, media type)
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
OPTION_NAMES = ("style", "strength", "preserve_color", "format", "max_side", "quality", "style_scale")
MAX_SIDE_RANGE = (16, 65535)


class ApiError(CinStyleError, ValueError):
    """A request the service refuses: ``status`` (4xx, or 503) and a one-line message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


@dataclass(frozen=True)
class StylizeOptions:
    weights: np.ndarray  # [S], normalised
    blend: str
    strength: float = 1.0
    preserve_color: bool = False
    format: str = "png"
    max_side: int | None = None
    quality: int = 95
    style_scale: float = 1.0


def parse_options(
    query: Sequence[tuple[str, str]], json_options: Mapping[str, Any] | None, stylizer: Stylizer
) -> StylizeOptions:
    """Query pairs (``style`` may repeat) and a JSON object → options.  Unknown names are
    400; values out of range, unknown styles and bad weights are 422."""
    values: dict[str, Any] = {}
    for name, value in query:
        if name not in OPTION_NAMES:
            raise ApiError(400, f"unknown parameter {name!r}; the parameters are {', '.join(OPTION_NAMES)}")
        if name == "style":
            values.setdefault("style", []).append(value)
        elif name in values:
            raise ApiError(400, f"parameter {name!r} given twice")
        else:
            values[name] = value
    for name, value in (json_options or {}).items():
        if name not in OPTION_NAMES:
            raise ApiError(400, f"unknown option {name!r} in the JSON options; they are {', '.join(OPTION_NAMES)}")
        if name in values:
            raise ApiError(400, f"{name!r} given both as a parameter and in the JSON options")
        values[name] = value
    weights, blend = _weights(values.get("style"), stylizer)
    fmt = str(values.get("format", "png")).lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in OUTPUT_FORMATS:
        raise ApiError(422, f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {values['format']!r}")
    max_side = values.get("max_side")
    return StylizeOptions(
        weights=weights,
        blend=blend,
        strength=_number(values.get("strength", 1.0), "strength", 0.0, 1.0),
        preserve_color=_flag(values.get("preserve_color", False), "preserve_color"),
        format=fmt,
        max_side=None if max_side is None else int(_number(max_side, "max_side", *MAX_SIDE_RANGE, whole=True)),
        quality=int(_number(values.get("quality", 95), "quality", 1, 100, whole=True)),
        style_scale=_number(values.get("style_scale", 1.0), "style_scale", 1.0, MAX_STYLE_SCALE),
    )


def _weights(style: Any, stylizer: Stylizer) -> tuple[np.ndarray, str]:
    """Spec strings ("a=0.7,b=0.3", a name, an index), a {name: weight} object or a
    weight vector → (normalised weights, label)."""
    try:
        if style is None or (isinstance(style, list) and all(isinstance(s, str) for s in style)):
            return blend_for(stylizer, style or [])
        if isinstance(style, str):
            return blend_for(stylizer, [style])
        if stylizer.capabilities.baked:
            raise ApiError(422, f"{stylizer.path.name} has a baked blend; send no style")
        if isinstance(style, (Mapping, list)) and not isinstance(style, bool):
            row = weight_matrix(style, stylizer.style_names, 1)[0]
            return row, format_blend(row, stylizer.style_names)
    except CinStyleError as exc:
        if isinstance(exc, ApiError):
            raise
        raise ApiError(422, str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ApiError(422, f"style: {exc}") from None
    raise ApiError(422, f"style must be a spec string, a list of them, an object of weights or a vector, got {style!r}")


def _number(value: Any, name: str, low: float, high: float, whole: bool = False) -> float:
    if isinstance(value, bool):
        raise ApiError(422, f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ApiError(422, f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high or (whole and number != int(number)):
        kind = "a whole number" if whole else "a number"
        raise ApiError(422, f"{name} must be {kind} in [{low:g}, {high:g}], got {value!r}")
    return number


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ApiError(422, f"{name} must be true or false, got {value!r}")
