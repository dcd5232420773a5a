"""VGG layer names and shapes (no torch): what the encoder (vgg.py) and the weight
converters (vgg_weights.py) both need.

Layer names follow the papers: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``.
"""

from __future__ import annotations

from cin_style.errors import ConfigError

VGG_BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_CHANNELS = (64, 128, 256, 512, 512)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Caffe VGG: BGR channel order, 0-255 scale, per-channel mean subtracted, no std.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def layer_names(arch: str) -> list[str]:
    """All layer names of a VGG feature stack, in order."""
    names = []
    for block, convs in enumerate(check_arch(arch), start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def conv_names(arch: str) -> list[str]:
    return [n for n in layer_names(arch) if n.startswith("conv")]


def check_arch(arch: str) -> tuple[int, ...]:
    """The conv counts per block of ``arch``; a ConfigError for unknown names."""
    try:
        return VGG_BLOCKS[arch]
    except KeyError:
        raise ConfigError(f"unknown encoder {arch!r}; choose one of {sorted(VGG_BLOCKS)}") from None
