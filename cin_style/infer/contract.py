"""The ONNX graph contract, defined once for the exporter, the runner, the CLI
and the benchmarks (pure Python: the runner imports it without torch).

    image          float32 [N, 3, H, W], RGB in [0, 1], H and W >= MIN_SIDE
    style_weights  float32 [N, num_styles], one blend per image (absent when baked)
    → stylized     float32 [N, 3, H, W], RGB in [0, 1], the input's size

Metadata props carry ``META_PREFIX`` + style_names, model_config, value_range,
format_version, precision, baked_blend, parity.
"""

import os
from pathlib import Path

from cin_style.config import MAX_STYLES  # style_names: a JSON list of 1..MAX_STYLES distinct names
from cin_style.io.image import MIN_SIDE

INPUT_IMAGE = "image"
INPUT_WEIGHTS = "style_weights"
OUTPUT = "stylized"
META_PREFIX = "cin_style."
GRAPH_FORMAT_VERSION = 1
# A graph's precision (its cin_style.precision metadata): fp32; fp16 weights and arithmetic;
# fp16-weights (fp16 storage, fp32 arithmetic); int8 (quantized weights, fp32 activations).
GRAPH_PRECISIONS = ("fp32", "fp16", "fp16-weights", "int8")
FLOAT_PRECISIONS = GRAPH_PRECISIONS[:3]  # what a float graph (and its tiled sibling) is traced in
HALF_PRECISIONS = ("fp16", "fp16-weights")
# The image sizes (H, W) every exported file is compared with its source at: square, odd
# and the network's smallest side.
PARITY_SIZES = ((64, 64), (37, 53), (16, 23))

__all__ = [
    "FLOAT_PRECISIONS",
    "GRAPH_FORMAT_VERSION",
    "GRAPH_PRECISIONS",
    "HALF_PRECISIONS",
    "INPUT_IMAGE",
    "INPUT_WEIGHTS",
    "MAX_STYLES",
    "META_PREFIX",
    "MIN_SIDE",
    "OUTPUT",
    "PARITY_SIZES",
    "VARIANT_MASKS",
    "VARIANT_TILED",
    "tiled_names",
    "tiled_sibling_path",
]

# The tiled variant (`cin-style export --tiled`): the network one conv at a time, which
# the runner drives over row strips (infer/tiles.py) for images of any size.  For each conv
# layer (head, down1, down2, residual_<i>, up1, up2, tail: tiles.network_layers):
#   inputs   in_<layer> [1,C,h,w] the rows it reads (fp16; the head's float32 photo rows);
#            norm_<layer> [2,C] (scale, offset) of the previous layer's norm (all but the
#            head); stream_<layer> [1,C,h,w] fp16, the residual stream's rows (block sums);
#            shift_<layer> [C'] subtracted from its output; and style_weights [1,S]
#   outputs  <layer> fp16 (its conv's output before its norm, less the shift),
#            sums_<layer> [2,C'] (per-channel sum and sum of squares of that),
#            stream_out_<layer> fp16 (the stream's next rows, for layers that start a block),
#            affine_<layer> [2,C'] (the blended γ and β of its norm)
#   metadata residual_convs, outer_kernel
# A call feeds real data to the piece it fetches and 16-px dummies to the rest
# (onnxruntime runs every node of a graph, whatever is fetched).
VARIANT_TILED = "tiled"
# The masks variant (`cin-style export --masks`): style_weights is [N, S, h, w], per-pixel
# blends at any resolution (resized inside to every norm layer's), each summing to 1;
# every style's region is normalised with its own statistics (model.py).  A [N, S, 1, 1]
# map is a global blend.
VARIANT_MASKS = "masks"


def tiled_names(layers) -> tuple[list[str], list[str]]:
    """The tiled variant's input and output names for ``layers`` (tiles.network_layers),
    in torch_tiles.LayerPieces.forward's order."""
    from cin_style.infer.tiles import PHOTO, SUM

    inputs = (
        [INPUT_WEIGHTS]
        + [f"in_{layer.name}" for layer in layers]
        + [f"norm_{layer.name}" for layer in layers if layer.source != PHOTO]
        + [f"stream_{layer.name}" for layer in layers if layer.source == SUM]
        + [f"shift_{layer.name}" for layer in layers]
    )
    outputs = (
        [layer.name for layer in layers]
        + [f"sums_{layer.name}" for layer in layers]
        + [f"stream_out_{layer.name}" for layer in layers if layer.keeps_stream]
        + [f"affine_{layer.name}" for layer in layers]
    )
    return inputs, outputs


def tiled_sibling_path(path: str | os.PathLike) -> Path:
    """Where a plain graph's tiled sibling lives: ``NAME.onnx`` → ``NAME.tiled.onnx``
    (`cin-style export` writes it; the bundled graphs ship with theirs)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tiled.onnx")
