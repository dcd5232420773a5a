"""Files that ship inside the package: the reference model, its style
paintings and the sample photos.  Paths only; nothing is loaded here."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from cin_style.errors import CinStyleError

MODEL_SUFFIXES = (".pt", ".onnx")
# The bundled models by name (a MODEL argument may be one of these names): the
# reference model, and the lite model with the same styles in a smaller network
# (issue 15), which the browser page uses by default.  Each is a PyTorch checkpoint
# and the same weights as an ONNX graph, which a light install (no torch) runs.
BUNDLED_MODELS = {"reference": ("reference.pt", "reference.onnx"), "lite": ("lite.pt", "lite.onnx")}


class BundledModelMissing(CinStyleError, FileNotFoundError):
    """This installation has no reference model (a source tree without it)."""


def bundled_styles() -> Path:
    return Path(str(resources.files("cin_style.assets.styles")))


def bundled_samples() -> Path:
    return Path(str(resources.files("cin_style.assets.samples")))


def torch_installed() -> bool:
    """Whether PyTorch can be imported (the `train` extra), without importing it."""
    return importlib.util.find_spec("torch") is not None


def models_folder() -> Path:
    """Where the bundled model files are installed."""
    return Path(str(resources.files("cin_style.assets.models")))


def bundled_model(name: str = "reference") -> Path:
    """A bundled model by name: the PyTorch checkpoint, or its ONNX copy where torch is
    not installed.  ``reference`` is what every command uses without a MODEL."""
    folder = models_folder()
    checkpoint, graph = BUNDLED_MODELS[name]
    names = [checkpoint, graph] if torch_installed() else [graph]
    for file in names:
        if (folder / file).is_file():
            return folder / file
    raise BundledModelMissing(f"this installation has no bundled {name} model ({folder / names[0]}); pass a MODEL file")


def bundled_graph(name: str = "reference") -> Path:
    """A bundled model's ONNX graph."""
    return models_folder() / BUNDLED_MODELS[name][1]


def reference_model() -> Path:
    return bundled_model("reference")


def shipped_models() -> list[str]:
    """The names of the bundled models this installation has files for, default first."""
    folder = models_folder()
    return [name for name, files in BUNDLED_MODELS.items() if any((folder / f).is_file() for f in files)]


def split_model_argument(args: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """``[MODEL] REST...``: a leading argument that names a model (``looks_like_model``)
    is the model; None means the bundled one (``resolve_model``)."""
    if args and looks_like_model(args[0]):
        return args[0], tuple(args[1:])
    return None, tuple(args)


def resolve_model(model: str | Path | None) -> Path:
    """An explicit model path wins; a bundled model's name (``lite``, ``reference``) that
    is not also a file here picks that model; ``None`` means the bundled reference model."""
    if model is None:
        return reference_model()
    if names_bundled_model(str(model)):
        return bundled_model(str(model))
    return Path(model)


def looks_like_model(arg: str) -> bool:
    """Whether a leading positional argument names a model (a ``.pt``/``.onnx`` file or a
    bundled model's name) rather than an input: lets ``stylize [MODEL] INPUT...`` drop it."""
    return Path(arg).suffix.lower() in MODEL_SUFFIXES or names_bundled_model(arg)


def names_bundled_model(arg: str) -> bool:
    """A bundled model's name that is not also a file or folder here (a path always wins)."""
    return arg in BUNDLED_MODELS and not Path(arg).exists()


def bundled_style_image(name: str) -> Path | None:
    """The packaged painting of a style name, if there is one."""
    for suffix in (".jpg", ".png", ".webp"):
        path = bundled_styles() / f"{name}{suffix}"
        if path.is_file():
            return path
    return None
