"""Where the VGG loss networks' weights files are (no torch): an explicit file or
``CIN_STYLE_<ARCH>_WEIGHTS``, else the cache (``$CIN_STYLE_CACHE``, else the platform's
user cache folder via ``platformdirs``).  Fetching and reading them is
``cin_style.nn.vgg_weights``'s job."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from cin_style.errors import WeightsError

ENV_CACHE = "CIN_STYLE_CACHE"


def env_weights_var(arch: str) -> str:
    return f"CIN_STYLE_{arch.upper()}_WEIGHTS"


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    return Path(platformdirs.user_cache_dir("cin-style", appauthor=False))


def cached_weights_path(arch: str) -> Path:
    return cache_dir() / f"{arch}.pt"


def find_vgg_weights(arch: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """The weights file that would be used without fetching: ``explicit`` (or the
    environment's) must exist; else the cached file if there is one; else None."""
    explicit = explicit or os.environ.get(env_weights_var(arch))
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsError(f"VGG weights file not found: {path}")
        return path
    cached = cached_weights_path(arch)
    return cached if cached.is_file() else None
