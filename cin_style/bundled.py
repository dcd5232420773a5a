"""Files that ship inside the package: the reference model, its style
paintings and the sample photos.  Paths only; nothing is loaded here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import CinStyleError

REFERENCE_MODEL_FILE = "reference.pt"
MODEL_SUFFIXES = (".pt", ".onnx")


class BundledModelMissing(CinStyleError, FileNotFoundError):
    """This installation has no reference model (a source tree without it)."""


def bundled_styles() -> Path:
    return Path(str(resources.files("cin_style.styles")))


def bundled_samples() -> Path:
    return Path(str(resources.files("cin_style.samples")))


def reference_model() -> Path:
    """The bundled reference model: what every command uses without a MODEL."""
    path = Path(str(resources.files("cin_style.models"))) / REFERENCE_MODEL_FILE
    if not path.is_file():
        raise BundledModelMissing(f"this installation has no bundled model ({path}); "
                                  f"pass a MODEL file")
    return path


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
