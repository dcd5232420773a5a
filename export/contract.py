"""The ONNX graph contract, defined once for the exporter, the runner, the CLI
and the benchmarks (pure Python: the runner imports it without torch).

    image          float32 [N, 3, H, W], RGB in [0, 1], H and W >= MIN_SIDE
    style_weights  float32 [N, num_styles], one blend per image (absent when baked)
    → stylized     float32 [N, 3, H, W], RGB in [0, 1], the input's size

Metadata props carry ``META_PREFIX`` + style_names, model_config, value_range,
format_version, precision, baked_blend, parity.
"""

from cin_style.imageio import MIN_SIDE

INPUT_IMAGE = "image"
INPUT_WEIGHTS = "style_weights"
OUTPUT = "stylized"
META_PREFIX = "cin_style."
GRAPH_FORMAT_VERSION = 1

__all__ = ["INPUT_IMAGE", "INPUT_WEIGHTS", "OUTPUT", "META_PREFIX", "GRAPH_FORMAT_VERSION", "MIN_SIDE"]
