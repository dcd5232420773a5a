"""One base for errors meant for users.

The CLI prints a ``CinStyleError`` (and an ``OSError``) as one line and exits
1; anything else is a bug and keeps its traceback.  Each subclass also keeps
the builtin base it always had, so ``except ValueError`` callers still work.
Pure Python: the torch-free runner imports it too.
"""

from __future__ import annotations


class CinStyleError(Exception):
    """Something the user can fix: bad input, a missing file, a wrong option."""


class UsageError(CinStyleError, ValueError):
    """Options that do not go together (the CLI exits 2, as for any usage error).

    ``parameter``: the library parameter it is about (``style``, ``tile``, ...); the
    message names no command-line option, so the CLI and the service each name that
    parameter in their own words."""

    def __init__(self, message: str = "", parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class ConfigError(CinStyleError, ValueError):
    """An option or config value out of its range."""


class DataError(CinStyleError, ValueError):
    """Training data that cannot be used; the message is meant for users."""


class WeightsError(CinStyleError, RuntimeError):
    """The loss network's weights could not be found, fetched or read."""


class TrainingDiverged(CinStyleError, FloatingPointError):
    """The loss became NaN or infinite; lower the learning rate or clip gradients."""


class MissingExtra(CinStyleError, ImportError):
    """A feature whose optional packages are not installed (the CLI exits 1, as for any
    error a user can fix)."""


# The `train` extra's packages: a light install lacks them, which is said in one line.
TRAIN_EXTRA_MODULES = frozenset({"torch", "torchvision", "onnx", "onnxscript", "pytorch_msssim"})
# The `serve` extra's packages (`cin-style api`).
SERVE_EXTRA_MODULES = frozenset(
    {"fastapi", "starlette", "uvicorn", "multipart", "python_multipart", "prometheus_client"}
)
# What each extra is called in the messages: the install a user did not make.
EXTRA_NAMES = {
    "train": "the training install",
    "video": "the video install",
    "clip": "the CLIP install",
    "serve": "the serve install",
    "batch": "the batch install",
    "openvino": "the OpenVINO install",
    "tflite": "the LiteRT install",
    "coreml": "the Core ML install",
}
# The deploy targets' converters and runtimes, each in its own extra.
TARGET_EXTRA_MODULES = {
    "openvino": "openvino",
    "ai_edge_litert": "tflite",
    "litert_torch": "tflite",
    "ai_edge_quantizer": "tflite",
    "coremltools": "coreml",
}


def extra_of_module(name: str | None) -> str | None:
    """The extra that brings the top-level module ``name``, if it is one of ours."""
    top = (name or "").split(".")[0]
    if top in TRAIN_EXTRA_MODULES:
        return "train"
    if top in SERVE_EXTRA_MODULES:
        return "serve"
    if top in ("ray", "pyarrow"):
        return "batch"
    return TARGET_EXTRA_MODULES.get(top)


def install_hint(extra: str) -> str:
    """The command that adds an extra, as it works today: from a clone of the repository."""
    return f"in your cin-style clone, pip install -e '.[{extra}]'"


def missing_extra(feature: str, extra: str, missing: str) -> MissingExtra:
    """``feature`` needs the ``extra`` install, whose ``missing`` package is not there."""
    return MissingExtra(
        f"{feature} needs {EXTRA_NAMES.get(extra, extra)} ({missing} is missing): {install_hint(extra)}"
    )


def first_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (its class name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
