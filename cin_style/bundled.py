"""Files that ship inside the package: the reference model, its style
paintings and the sample photos.  Paths only; nothing is loaded here."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from .errors import CinStyleError

REFERENCE_MODEL_FILE = "reference.pt"
# The same weights as an ONNX graph: what a light install (no torch) runs.
REFERENCE_GRAPH_FILE = "reference.onnx"
MODEL_SUFFIXES = (".pt", ".onnx")


class BundledModelMissing(CinStyleError, FileNotFoundError):
    """This installation has no reference model (a source tree without it)."""


def bundled_styles() -> Path:
    return Path(str(resources.files("cin_style.styles")))


def bundled_samples() -> Path:
    return Path(str(resources.files("cin_style.samples")))


def torch_installed() -> bool:
    """Whether PyTorch can be imported (the `train` extra), without importing it."""
    return importlib.util.find_spec("torch") is not None


def models_folder() -> Path:
    """Where the bundled model files are installed."""
    return Path(str(resources.files("cin_style.models")))


def reference_model() -> Path:
    """The bundled reference model, what every command uses without a MODEL: the
    PyTorch checkpoint, or its ONNX copy where torch is not installed."""
    folder = models_folder()
    names = [REFERENCE_MODEL_FILE, REFERENCE_GRAPH_FILE] if torch_installed() else [REFERENCE_GRAPH_FILE]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise BundledModelMissing(f"this installation has no bundled model ({folder / names[0]}); "
                              f"pass a MODEL file")


def resolve_model(model: str | Path | None) -> Path:
    """An explicit model path wins; ``None`` means the bundled reference model."""
    return Path(model) if model is not None else reference_model()


def looks_like_model(arg: str) -> bool:
    """Whether a leading positional argument names a model file (``.pt``/``.onnx``)
    rather than an input: lets ``stylize [MODEL] INPUT...`` drop the model."""
    return Path(arg).suffix.lower() in MODEL_SUFFIXES


def bundled_style_image(name: str) -> Path | None:
    """The packaged painting of a style name, if there is one."""
    for suffix in (".jpg", ".png", ".webp"):
        path = bundled_styles() / f"{name}{suffix}"
        if path.is_file():
            return path
    return None
