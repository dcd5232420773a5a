"""cin-style: multi-style neural style transfer with conditional instance norm.

Import the submodules you need (``cin_style.model``, ``cin_style.train``,
``cin_style.stylize`` ...); this package file imports nothing heavy, so the
torch-free ONNX runner can use ``cin_style.blend`` and ``cin_style.imageio``.
"""

__version__ = "0.1.0"
