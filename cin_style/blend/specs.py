"""The small text grammars of the CLI and the API, parsed in one place.

* weighted names — ``starry_night=0.7,great_wave`` (blends, ``sep="="``) and
  ``relu1_2:1,relu3_3:0.5`` (loss layers, ``sep=":"``); a bare name weighs 1;
* path assignments — ``name=painting.jpg`` and ``painting.jpg=0.7``, where an
  argument that names an existing file is always taken whole (so files with
  ``=`` in their names still work);
* text styles — ``text:a watercolor painting`` and ``name=text:…``.
"""

from __future__ import annotations

import re
from pathlib import Path

from cin_style.errors import ConfigError


class SpecError(ConfigError):
    """A spec string that does not parse; the message is meant for users."""


def parse_weighted_names(spec: str, sep: str = "=", what: str = "style") -> list[tuple[str, float]]:
    """``"a=0.7, b"`` → ``[("a", 0.7), ("b", 1.0)]``; empty items are skipped."""
    items = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, weight = part, 1.0
        if sep in part:
            name, _, raw = part.rpartition(sep)
            name = name.strip()
            try:
                weight = float(raw)
            except ValueError:
                raise SpecError(f"weight for {what} {name!r} is not a number: {raw!r}") from None
        if not name:
            raise SpecError(f"missing {what} name in {spec!r}")
        items.append((name, weight))
    if not items:
        raise SpecError(f"empty {what} spec {spec!r}")
    return items


def split_path_weight(item: str) -> tuple[Path, float]:
    """``painting.jpg`` or ``painting.jpg=0.7`` → (path, weight)."""
    if Path(item).exists() or "=" not in item:
        return Path(item), 1.0
    path, _, raw = item.rpartition("=")
    try:
        return Path(path), float(raw)
    except ValueError:
        raise SpecError(f"style weight in {item!r} is not a number") from None


def split_name_path(item: str) -> tuple[str | None, Path]:
    """``name=painting.jpg`` or ``painting.jpg`` → (name or None, path)."""
    if "=" in item and not Path(item).exists():
        name, _, path = item.partition("=")
        return name, Path(path)
    return None, Path(item)


TEXT_PREFIX = "text:"


def any_text_style(items) -> bool:
    """Whether any of the style arguments is given in words (and so needs CLIP)."""
    return any(split_text_style(str(item)) is not None for item in items)


def split_text_style(item: str) -> tuple[str | None, str] | None:
    """``text:PROMPT`` or ``name=text:PROMPT`` → (name or None, prompt); None for anything else."""
    head, sep, rest = item.partition("=")
    name: str | None = head
    if item.startswith(TEXT_PREFIX):
        name, rest = None, item
    elif not (sep and rest.startswith(TEXT_PREFIX)) or Path(item).exists():
        return None
    prompt = rest[len(TEXT_PREFIX) :].strip()
    if not prompt:
        raise SpecError(f"{item!r}: give the style in words after 'text:'")
    return name, prompt


def prompt_name(prompt: str) -> str:
    """A style name from a prompt: its words joined by '_' (the characters style names allow)."""
    name = re.sub(r"[^A-Za-z0-9.-]+", "_", prompt.strip()).strip("_").lower()
    return name[:60].rstrip("_") or "text"
