"""Checkpoints: atomic saves, safe loads, one format for training and inference.

A checkpoint is a plain dict of tensors and primitives, so it loads with
``torch.load(weights_only=True)`` (no pickled code).  Saving goes through
``atomic_write`` (temp file, fsync, previous file kept as ``NAME.prev``,
rename): a SIGKILL at any moment leaves a loadable file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile
from pathlib import Path

import torch

from cin_style.config import StyleNetConfig
from cin_style.errors import CinStyleError, ConfigError, first_line
from cin_style.io.atomic import atomic_write, remove_stale_temps
from cin_style.nn.stylenet import StyleNet

FORMAT = "cin-style"
FORMAT_VERSION = 1


class CheckpointError(CinStyleError, RuntimeError):
    """A checkpoint that cannot be read; the message is meant for users."""


def file_sha256(path: str | os.PathLike) -> str:
    """A model file's fingerprint: runs that start from or learn from another model keep it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


CHECKSUM_KEY = "tensor_sha256"


def tensor_checksum(data) -> str:
    """sha256 over every tensor of a checkpoint (key paths, dtypes, shapes and bytes, in a
    fixed order), the checksum itself left out: a flipped byte anywhere in the weights or
    the optimizer state changes it."""
    digest = hashlib.sha256()

    def visit(value, key: str) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        elif isinstance(value, dict):
            for k in sorted(value, key=str):
                if not (key == "" and k == CHECKSUM_KEY):
                    visit(value[k], f"{key}/{k}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, f"{key}/{i}")

    visit(data, "")
    return digest.hexdigest()


def atomic_torch_save(obj, path: str | os.PathLike, keep_previous: bool = True) -> Path:
    """torch.save to ``path`` atomically, the old file kept as ``path.prev``; a checkpoint
    dict is saved with the checksum of its tensors (verified by ``load_checkpoint``)."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = {**obj, CHECKSUM_KEY: tensor_checksum(obj)}
    # A killed run's interrupted save stays behind as a temp file: the next save clears it.
    # (Checkpoints and videos only: a scan per write would be quadratic for a folder of images.)
    remove_stale_temps(path)
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
    except pickle.UnpicklingError:
        # torch's own text here suggests loading unsafely: never repeat it to a user.
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"{path}: not a readable cin-style checkpoint (not a PyTorch file)") from None
        raise CheckpointError(
            f"{path}: refused: it holds Python objects besides tensors, which a weights-only load does not "
            f"run; a cin-style checkpoint never does (do not load it any other way)"
        ) from None
    except Exception as exc:  # zip errors, truncated files ...
        raise CheckpointError(f"{path}: not a readable cin-style checkpoint ({first_line(exc)[:200]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cin-style checkpoint")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this "
            f"cin-style understands ({FORMAT_VERSION}); upgrade cin-style"
        )
    for key in ("model_config", "style_names", "model"):
        if key not in data:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    # Checkpoints from before 0.2 carry no checksum; every one written since does.
    if CHECKSUM_KEY in data and data[CHECKSUM_KEY] != tensor_checksum(data):
        raise CheckpointError(f"{path}: damaged: its tensors do not match the checksum it was saved with")
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


def _check_shapes(config: StyleNetConfig, weights: dict) -> None:
    """The config against the weights' own shapes, before anything is built: a crafted
    config cannot make the network allocate what its weights do not hold."""
    if not isinstance(weights, dict) or not all(hasattr(v, "shape") for v in weights.values()):
        raise ValueError("the weights are not a dict of tensors")
    head = weights.get("head.conv.weight")
    expected = (config.base_width, 3, config.outer_kernel, config.outer_kernel)
    if head is None or tuple(head.shape) != expected:
        raise ValueError(f"head.conv.weight is {None if head is None else list(head.shape)}, not {list(expected)}")
    gamma = weights.get("head.norm.gamma")
    if gamma is None or tuple(gamma.shape) != (config.num_styles, config.base_width):
        raise ValueError(f"head.norm.gamma does not hold {config.num_styles} styles")
    blocks = {key.split(".")[1] for key in weights if key.startswith("residuals.")}
    if len(blocks) != config.num_residual_blocks:
        raise ValueError(f"{len(blocks)} residual blocks in the weights, {config.num_residual_blocks} in the config")


def model_from_checkpoint(data: dict, path: str = "checkpoint") -> tuple[StyleNet, list[str]]:
    try:
        config = StyleNetConfig.from_dict(data["model_config"])
        _check_shapes(config, data["model"])
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


def load_model(path: str | os.PathLike | None = None) -> tuple[StyleNet, list[str]]:
    """Checkpoint file (default: the bundled reference model) → (model in eval
    mode on the CPU, style names)."""
    from cin_style.assets.bundled import resolve_model

    path = resolve_model(path)
    return model_from_checkpoint(load_checkpoint(path), str(path))


def load_model_to_build_on(
    model: str | os.PathLike, style_names: list[str], role: str, expected_sha256: str = ""
) -> tuple[StyleNet, str]:
    """A trained .pt model a run builds on — its teacher, or its starting weights — by path
    or bundled name: (float32 model, the file's sha256).  It must hold exactly
    ``style_names``, in that order; a file whose hash is not ``expected_sha256`` (when
    given: a resumed run) is refused.  ``role`` names it in the errors."""
    from cin_style.assets.bundled import resolve_model

    path = resolve_model(model)
    if not path.is_file():
        raise CheckpointError(f"{role} model not found: {path}")
    if path.suffix.lower() != ".pt":
        raise CheckpointError(f"{role} must be a PyTorch checkpoint (.pt), not {path.name}")
    digest = file_sha256(path)
    if expected_sha256 and digest != expected_sha256:
        raise CheckpointError(
            f"{role} {path} changed since this run began (sha256 {digest[:12]}…, "
            f"expected {expected_sha256[:12]}…): a resumed run needs the same file"
        )
    net, names = load_model(path)
    if names != list(style_names):
        raise CheckpointError(
            f"{role} {path.name} has styles {names}; this run trains {list(style_names)} (same names, same order)"
        )
    return net.float(), digest


# Keys only training needs; a shipped model drops them (a third of the size is Adam's state).
TRAINING_STATE_KEYS = ("optimizer", "rng", "history")


def slim_checkpoint(data: dict, precision: str = "fp32") -> dict:
    """A checkpoint for shipping: no training state, weights stored at
    ``precision`` ("fp32" or "fp16").  It loads like any other (``load_model``
    casts the weights back to float32) and still carries its configs, so
    ``add-style`` can grow it."""
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"precision must be fp32 or fp16 (got {precision!r})")
    dtype = torch.float16 if precision == "fp16" else torch.float32
    slim = {k: v for k, v in data.items() if k not in TRAINING_STATE_KEYS}
    slim["model"] = {k: v.to(dtype) if v.is_floating_point() else v for k, v in data["model"].items()}
    slim["weights_precision"] = precision
    return slim


def export_checkpoint(
    source: str | os.PathLike, out: str | os.PathLike, precision: str = "fp16", seed: int = 0
) -> dict:
    """Write ``slim_checkpoint(source)`` to ``out`` after checking that its outputs
    match the source model's on random images and blends (fp16: PSNR >= 40 dB).
    Returns the parity numbers and the style names."""
    import math

    from cin_style.io.image import MIN_PSNR_DB, output_parity

    data = load_checkpoint(source)
    reference, _ = model_from_checkpoint(data, str(source))
    slim = slim_checkpoint(data, precision)
    shipped, _ = model_from_checkpoint(slim, str(out))
    generator = torch.Generator().manual_seed(seed)
    worst_diff, worst_psnr = 0.0, math.inf
    for h, w in ((64, 64), (37, 53)):
        image = torch.rand(2, 3, h, w, generator=generator)
        weights = torch.rand(2, reference.num_styles, generator=generator)
        weights /= weights.sum(dim=1, keepdim=True)
        with torch.no_grad():
            a, b = reference(image, weights).numpy(), shipped(image, weights).numpy()
        parity = output_parity(a, b)
        if parity is None:
            raise CheckpointError(
                f"{precision} weights give non-finite outputs (values beyond the format's range?); keep fp32"
            )
        worst_diff, worst_psnr = max(worst_diff, parity[0]), min(worst_psnr, parity[1])
    floor = MIN_PSNR_DB["fp16"]
    if worst_psnr < floor:
        raise CheckpointError(
            f"{precision} weights change the output too much: PSNR {worst_psnr:.1f} dB < {floor} dB; keep fp32"
        )
    atomic_torch_save(slim, out, keep_previous=False)
    return {
        "precision": precision,
        "max_abs_diff": worst_diff,
        "min_psnr_db": round(worst_psnr, 2),
        "style_names": list(slim["style_names"]),
    }
