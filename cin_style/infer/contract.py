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
    "TILED_STATS",
    "VARIANT_MASKS",
    "VARIANT_TILED",
    "tiled_sibling_path",
]

# The tiled variant (`cin-style export --tiled`): the network cut at its norm layers,
# which the runner drives tile by tile (infer/tiles.py) for images of any size.
#   inputs   style_weights [1,S]; stats_<layer> [2,C] (mean and 1/std over the whole image)
#            for head, down1, down2, up1, up2, tail; one input per piece: in_head, in_down1,
#            in_down2, in_quarter [1,3,h,w] (photo crops); in_residual_<i> [1,4w,h,w] (padded
#            strips); in_up1, in_up2, in_tail, in_stylized [1,4w,h,w] (quarter-res crops) with
#            size_<piece> [1,1,H,W] whose shape is the tile's full-resolution size
#   outputs  head, down1, down2 (pre-norm), quarter (down2 normalised), residual_<i>
#            (pre-norm, 2 per block), residual_affine [2·blocks,2,4w] (blended γ, β), up1, up2,
#            tail (pre-norm), stylized
# A call feeds real data to the piece it fetches and 16-px dummies to the rest
# (onnxruntime runs every node of a graph, whatever is fetched).
VARIANT_TILED = "tiled"
# The masks variant (`cin-style export --masks`): style_weights is [N, S, h, w], per-pixel
# blends at any resolution (resized inside to every norm layer's), each summing to 1;
# every style's region is normalised with its own statistics (model.py).  A [N, S, 1, 1]
# map is a global blend.
VARIANT_MASKS = "masks"
TILED_STATS = ("head", "down1", "down2", "up1", "up2", "tail")


def tiled_sibling_path(path: str | os.PathLike) -> Path:
    """Where a plain graph's tiled sibling lives: ``NAME.onnx`` → ``NAME.tiled.onnx``
    (`cin-style export` writes it; the bundled graphs ship with theirs)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tiled.onnx")
