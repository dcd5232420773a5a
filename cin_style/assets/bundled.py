"""Files that ship inside the package: the reference model, its style
paintings and the sample photos.  Paths only; nothing is loaded here."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from cin_style.errors import CinStyleError

MODEL_SUFFIXES = (".pt", ".onnx")


@dataclass(frozen=True)
class BundledModel:
    """One bundled model's files in ``models_folder()``: the PyTorch checkpoint (the train
    extra runs it), the same weights as an ONNX graph (every install runs it) and that
    graph's tiled sibling (contract.tiled_sibling_path: images above the tiling threshold
    run through it in bounded memory)."""

    checkpoint: str
    graph: str
    tiled_graph: str

    @property
    def files(self) -> tuple[str, ...]:
        return (self.checkpoint, self.graph, self.tiled_graph)


# The bundled models by name (a MODEL argument may be one of these names, or one of their
# file names): the reference model first (the default), and the lite model with the same
# styles in a smaller network, which the browser page uses by default.
BUNDLED_MODELS = {
    name: BundledModel(f"{name}.pt", f"{name}.onnx", f"{name}.tiled.onnx") for name in ("reference", "lite")
}
DEFAULT_MODEL = "reference"


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


def bundled_model(name: str = DEFAULT_MODEL) -> Path:
    """A bundled model by name: the PyTorch checkpoint, or its ONNX copy where torch is
    not installed.  ``reference`` is what every command uses without a MODEL."""
    folder, model = models_folder(), BUNDLED_MODELS[name]
    names = [model.checkpoint, model.graph] if torch_installed() else [model.graph]
    for file in names:
        if (folder / file).is_file():
            return folder / file
    raise BundledModelMissing(f"this installation has no bundled {name} model ({folder / names[0]}); pass a MODEL file")


def bundled_graph(name: str = DEFAULT_MODEL) -> Path:
    """A bundled model's ONNX graph."""
    return models_folder() / BUNDLED_MODELS[name].graph


def reference_model() -> Path:
    return bundled_model(DEFAULT_MODEL)


def shipped_models() -> list[str]:
    """The names of the bundled models this installation has files for, default first."""
    folder = models_folder()
    return [name for name, model in BUNDLED_MODELS.items() if any((folder / f).is_file() for f in model.files)]


def split_model_argument(args: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """``[MODEL] REST...``: a leading argument that names a model (``looks_like_model``)
    is the model; None means the bundled one (``resolve_model``)."""
    if args and looks_like_model(args[0]):
        return args[0], tuple(args[1:])
    return None, tuple(args)


def resolve_model(model: str | os.PathLike | None, *, graph: bool = False) -> Path:
    """The one place a MODEL argument becomes a file.  An existing path wins; else a bundled
    model's name (``lite``) or one of its file names (``lite.onnx``) picks that bundled
    file; ``None`` means the bundled reference model.  ``graph``: a bundled model's ONNX
    graph, whatever is installed (what the service and batch jobs run)."""
    if model is None:
        return bundled_graph() if graph else reference_model()
    path = Path(model)
    if path.exists():
        return path
    if str(model) in BUNDLED_MODELS:
        return bundled_graph(str(model)) if graph else bundled_model(str(model))
    if path.name in _bundled_files() and path.parent == Path("."):
        return models_folder() / path.name
    return path


def bundled_graph_of(path: str | os.PathLike) -> Path | None:
    """The ONNX graph of the bundled model that ``path`` is a file of, else None."""
    path = Path(path)
    if path.parent != models_folder():
        return None
    for name, model in BUNDLED_MODELS.items():
        if path.name in model.files:
            return bundled_graph(name)
    return None


def _bundled_files() -> set[str]:
    return {file for model in BUNDLED_MODELS.values() for file in model.files}


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
