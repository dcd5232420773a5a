"""The options of a stylize request: one pydantic model, ``StylizeParams``, that FastAPI
validates the query with (and documents on /docs), and that validates the form fields and
the JSON ``options`` object the same way.  Every problem is an ``ApiError`` with an HTTP
status and one line: an unknown name is 400, a bad value 422.  Torch-free."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cin_style.blend.weights import format_blend, weight_matrix
from cin_style.errors import CinStyleError
from cin_style.infer.grain import DEFAULT_GRAIN, MAX_GRAIN
from cin_style.infer.scale import AUTO_STYLE_SCALE, DEFAULT_STYLE_SCALE, MAX_STYLE_SCALE
from cin_style.infer.stylizer import Stylizer, blend_for

# format → (Pillow's name, media type)
OUTPUT_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "webp": ("WEBP", "image/webp")}
MAX_SIDE_RANGE = (16, 65535)
QUALITY_RANGE = (1, 100)
_VALUE_ERROR = "Value error, "  # what pydantic puts before a validator's own message


class ApiError(CinStyleError, ValueError):
    """A request the service refuses: ``status`` (4xx, or 503) and a one-line message."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, dict(headers or {})


class StylizeParams(BaseModel):
    """What a stylize request may ask for, from the query, form fields or JSON options."""

    model_config = ConfigDict(extra="forbid")

    style: list[str] | dict[str, float] | list[float] | None = Field(
        None,
        description='a style name or index, or a blend "a=0.7,b=0.3"; may repeat (JSON: also '
        "an object of weights or a weight vector)",
    )
    strength: float = Field(1.0, description="0..1, the mix with the photo")
    preserve_color: bool = Field(False, description="keep the photo's colours (true/false)")
    format: str = Field("png", description=f"the output: {', '.join(OUTPUT_FORMATS)}")
    max_side: int | None = Field(None, description="scale the photo down to this long side first (px)")
    quality: int = Field(95, description=f"JPEG/WebP quality {QUALITY_RANGE[0]}..{QUALITY_RANGE[1]}")
    style_scale: float | str = Field(
        DEFAULT_STYLE_SCALE,
        description=f"1..{MAX_STYLE_SCALE:g}: brush strokes that many times larger; auto: by the photo's size "
        "(the X-Style-Scale header says what ran)",
    )
    grain: int = Field(
        DEFAULT_GRAIN, description=f"0..{MAX_GRAIN}: levels of a fixed faint grain so flat areas get texture (0: off)"
    )

    @field_validator("style", mode="before")
    @classmethod
    def _one_spec_is_a_list(cls, value):
        return [value] if isinstance(value, str) else value

    @field_validator("strength", mode="before")
    @classmethod
    def _strength(cls, value):
        return _number(value, "strength", 0.0, 1.0)

    @field_validator("preserve_color", mode="before")
    @classmethod
    def _preserve_color(cls, value):
        return _flag(value, "preserve_color")

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value):
        fmt = str(value).lower()
        fmt = "jpeg" if fmt == "jpg" else fmt
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(OUTPUT_FORMATS)}, got {value!r}")
        return fmt

    @field_validator("max_side", mode="before")
    @classmethod
    def _max_side(cls, value):
        return None if value is None else int(_number(value, "max_side", *MAX_SIDE_RANGE, whole=True))

    @field_validator("quality", mode="before")
    @classmethod
    def _quality(cls, value):
        return int(_number(value, "quality", *QUALITY_RANGE, whole=True))

    @field_validator("grain", mode="before")
    @classmethod
    def _grain(cls, value):
        return int(_number(value, "grain", 0, MAX_GRAIN, whole=True))

    @field_validator("style_scale", mode="before")
    @classmethod
    def _style_scale(cls, value):
        if isinstance(value, str) and value.strip().lower() == AUTO_STYLE_SCALE:
            return AUTO_STYLE_SCALE
        return _number(value, "style_scale", 1.0, MAX_STYLE_SCALE)


OPTION_NAMES = tuple(StylizeParams.model_fields)


@dataclass(frozen=True)
class StylizeOptions:
    """A request's options with its blend resolved against the model."""

    weights: np.ndarray  # [S], normalised
    blend: str
    strength: float = 1.0
    preserve_color: bool = False
    format: str = "png"
    max_side: int | None = None
    quality: int = 95
    style_scale: float | str = DEFAULT_STYLE_SCALE
    grain: int = DEFAULT_GRAIN


def validation_error(errors: Sequence[Mapping[str, Any]], where: str = "parameter") -> ApiError:
    """pydantic's errors → one ApiError: an unknown name is 400, a bad value 422."""
    first = errors[0] if errors else {}
    name = str(first.get("loc", ("?",))[-1])
    if first.get("type") == "extra_forbidden":
        return ApiError(400, f"unknown {where} {name!r}; the parameters are {', '.join(OPTION_NAMES)}")
    message = str(first.get("msg", "invalid request"))
    if message.startswith(_VALUE_ERROR):
        return ApiError(422, message[len(_VALUE_ERROR) :])
    return ApiError(422, f"{name}: {message}")


def merge_options(
    query: StylizeParams,
    query_pairs: Sequence[tuple[str, str]],
    form_fields: Sequence[tuple[str, str]],
    json_options: Mapping[str, Any] | None,
) -> StylizeParams:
    """The query (validated by FastAPI), form fields and JSON options as one set of
    params: a name given twice, or both as a parameter and in JSON, is 400."""
    given: dict[str, Any] = {}
    for name, value in [*query_pairs, *form_fields]:
        if name == "style":
            given.setdefault("style", []).append(value)
        elif name in given:
            raise ApiError(400, f"parameter {name!r} given twice")
        else:
            given[name] = value
    for name in json_options or {}:
        if name in given:
            raise ApiError(400, f"{name!r} given both as a parameter and in the JSON options")
    if not form_fields and not json_options:
        return query
    try:
        return StylizeParams.model_validate({**given, **(json_options or {})})
    except ValidationError as exc:
        raise validation_error(exc.errors(), "option" if json_options else "parameter") from None


def resolve_options(params: StylizeParams, stylizer: Stylizer) -> StylizeOptions:
    """The params with their style resolved to a normalised blend of the model's styles."""
    weights, blend = _weights(params.style, stylizer)
    return StylizeOptions(
        weights=weights,
        blend=blend,
        strength=params.strength,
        preserve_color=params.preserve_color,
        format=params.format,
        max_side=params.max_side,
        quality=params.quality,
        style_scale=params.style_scale,
        grain=params.grain,
    )


def _weights(style: Any, stylizer: Stylizer) -> tuple[np.ndarray, str]:
    """Spec strings ("a=0.7,b=0.3", a name, an index), a {name: weight} object or a
    weight vector → (normalised weights, label)."""
    try:
        if style is None or (isinstance(style, list) and all(isinstance(s, str) for s in style)):
            return blend_for(stylizer, style or [])
        if stylizer.capabilities.baked:
            raise ApiError(422, f"{stylizer.path.name} has a baked blend; send no style")
        row = weight_matrix(style, stylizer.style_names, 1)[0]
        return row, format_blend(row, stylizer.style_names)
    except CinStyleError as exc:
        if isinstance(exc, ApiError):
            raise
        raise ApiError(422, str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise ApiError(422, f"style: {exc}") from None


def _number(value: Any, name: str, low: float, high: float, whole: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high or (whole and number != int(number)):
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind} in [{low:g}, {high:g}], got {value!r}")
    return number


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")
