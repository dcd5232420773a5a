"""Which torch device runs the work (shared by training, inference and tools)."""

from __future__ import annotations

import torch

from cin_style.errors import ConfigError


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when PyTorch sees a GPU, else the CPU; ``cuda`` fails
    loudly without one rather than falling back."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but PyTorch sees no CUDA GPU")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda (got {device!r})")
    return torch.device(device)
