"""Checkpoints: atomic saves, safe loads, one format for training and inference.

A checkpoint is a plain dict of tensors and primitives, so it loads with
``torch.load(weights_only=True)`` (no pickled code).  Saving goes through
``atomic_write`` (temp file, fsync, previous file kept as ``NAME.prev``,
rename): a SIGKILL at any moment leaves a loadable file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .atomic import atomic_write
from .model import StyleNet, StyleNetConfig

FORMAT = "cin-style"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message is meant for users."""


def atomic_torch_save(obj, path: str | os.PathLike, keep_previous: bool = True) -> Path:
    """torch.save to ``path`` atomically, the old file kept as ``path.prev``."""
    return atomic_write(path, lambda fh: torch.save(obj, fh), keep_previous=keep_previous)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read and validate a cin-style checkpoint dict (tensors on the CPU)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip errors, unpickling errors, truncated files ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"{path}: not a readable cin-style checkpoint ({reason[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cin-style checkpoint")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version} is newer than this "
                              f"cin-style understands ({FORMAT_VERSION}); upgrade cin-style")
    for key in ("model_config", "style_names", "model"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    return data


def make_checkpoint(model: StyleNet, style_names: list[str], **extra) -> dict:
    if len(style_names) != model.num_styles:
        raise ValueError(f"{len(style_names)} style names for a {model.num_styles}-style model")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "style_names": list(style_names),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }


def model_from_checkpoint(data: dict, path: str = "checkpoint") -> tuple[StyleNet, list[str]]:
    try:
        config = StyleNetConfig.from_dict(data["model_config"])
        model = StyleNet(config)
        model.load_state_dict(data["model"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: model weights do not match its config ({exc})") from None
    names = [str(n) for n in data["style_names"]]
    if len(names) != model.num_styles:
        raise CheckpointError(f"{path}: {len(names)} style names for {model.num_styles} styles")
    model.style_names = names
    model.eval()
    return model, names


def load_model(path: str | os.PathLike) -> tuple[StyleNet, list[str]]:
    """Checkpoint file → (model in eval mode on the CPU, style names)."""
    return model_from_checkpoint(load_checkpoint(path), str(path))
