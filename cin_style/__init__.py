"""cin-style: multi-style neural style transfer with conditional instance norm.

The names below load on first use (PEP 562), so ``import cin_style`` imports
neither torch nor onnxruntime::

    import cin_style
    model, names = cin_style.load_model()                # the bundled 16-style model
    out = cin_style.stylize(model, pil_image, "starry_night=0.7,great_wave=0.3")
    out = cin_style.stylize("lite", pil_image, "poppies")  # a model file or bundled name
    runner = cin_style.StyleRunner("model.onnx")         # torch-free: an exported graph

The package is laid out by capability, each layer importing only those below it
(`lint-imports` enforces the same list, from pyproject.toml):

cli → bench → web → evaluate → video | deploy | optimize | api | batch → train → infer →
losses → nn | data → assets | blend → config → io | progress | timing → errors
"""

from importlib import import_module

__version__ = "0.3.0"

_LAZY = {
    "load_model": "cin_style.nn.checkpoint",
    "stylize": "cin_style.infer.python_api",
    "load_stylizer": "cin_style.infer.loader",
    "Stylizer": "cin_style.infer.stylizer",
    "StyleRunner": "cin_style.infer.onnx_runner",
    "reference_model": "cin_style.assets.bundled",
    "evaluate_model": "cin_style.evaluate.scores",
    "TrainConfig": "cin_style.config",
    "LossConfig": "cin_style.config",
    "StyleNetConfig": "cin_style.config",
    "OptimizeConfig": "cin_style.config",
    "CinStyleError": "cin_style.errors",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        try:
            module = import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            from cin_style.errors import TRAIN_EXTRA_MODULES, missing_extra

            if exc.name not in TRAIN_EXTRA_MODULES:
                raise
            raise missing_extra(f"cin_style.{name}", "train", exc.name) from None
        value = getattr(module, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'cin_style' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
