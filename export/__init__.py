"""cin-style deployment: ONNX export (needs torch) and the onnxruntime runner
(needs only numpy, Pillow and onnxruntime).  Installed as ``cin_style_export``.

``StyleRunner`` and ``export_onnx`` load on first use (PEP 562): importing the
package imports neither torch nor onnxruntime.
"""

from importlib import import_module

_LAZY = {
    "StyleRunner": "cin_style_export.runner",
    "RunnerError": "cin_style_export.runner",
    "export_onnx": "cin_style_export.onnx_export",
    "ExportError": "cin_style_export.onnx_export",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cin_style_export' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
