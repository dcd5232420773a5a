"""Frozen VGG loss networks with named layers and their preprocessing.

Layer names follow the papers: ``conv{block}_{i}``, ``relu{block}_{i}``,
``pool{block}``.  The encoder is truncated after the deepest layer in use, so
asking only for ``relu2_2`` costs two blocks, not sixteen convolutions.
Where the weights come from is ``vgg_weights.py``'s job; the layer names are
``vgg_layers.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from cin_style.errors import ConfigError, WeightsError
from cin_style.nn.vgg_layers import CAFFE_MEAN_BGR, IMAGENET_MEAN, IMAGENET_STD, VGG_CHANNELS, layer_names


class VGGEncoder(nn.Module):
    """VGG features by layer name; frozen; preprocessing inside.

    Input: RGB float images in [0, 1].  ``forward`` returns ``{name: tensor}``
    for the requested layers.  ``preprocessing`` is ``"imagenet"``
    (torchvision weights: mean/std normalisation) or ``"caffe"`` (BGR, 0-255,
    mean subtraction), so callers never see either convention.
    """

    def __init__(
        self, arch: str, layers: Iterable[str], state_dict: dict | None = None, preprocessing: str = "imagenet"
    ):
        super().__init__()
        all_names = layer_names(arch)
        self.arch = arch
        self.layers = tuple(dict.fromkeys(layers))
        unknown = [n for n in self.layers if n not in all_names]
        if unknown:
            raise ConfigError(f"unknown {arch} layer(s) {unknown}; valid: {', '.join(all_names)}")
        if not self.layers:
            raise ConfigError("the encoder needs at least one layer")
        if preprocessing not in ("imagenet", "caffe"):
            raise ValueError(f"unknown preprocessing {preprocessing!r}")
        self.preprocessing = preprocessing
        last = max(all_names.index(n) for n in self.layers)
        self.names = all_names[: last + 1]
        modules, in_ch = {}, 3
        for name in self.names:
            if name.startswith("conv"):
                out_ch = VGG_CHANNELS[int(name[4]) - 1]
                modules[name] = nn.Conv2d(in_ch, out_ch, 3, padding=1)
                in_ch = out_ch
            elif name.startswith("relu"):
                modules[name] = nn.ReLU(inplace=False)
            else:
                modules[name] = nn.MaxPool2d(2, 2)
        self.stack = nn.ModuleDict(modules)
        if preprocessing == "imagenet":
            mean, scale = torch.tensor(IMAGENET_MEAN), 1.0 / torch.tensor(IMAGENET_STD)
        else:
            # subtracted after the RGB → BGR flip, so the means stay in BGR order
            mean, scale = torch.tensor(CAFFE_MEAN_BGR) / 255.0, torch.full((3,), 255.0)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        # Caffe networks see inputs ~255·σ̄ ≈ 58x larger than ImageNet-normalised ones,
        # and their features are that much larger: divide them back so content
        # (∝ scale²) and style (∝ scale⁴) losses keep the same balance, and the same
        # loss weights work for either encoder.
        self.feature_scale = 1.0 if preprocessing == "imagenet" else 1.0 / (255.0 * sum(IMAGENET_STD) / 3)
        if state_dict is not None:
            self.load_conv_weights(state_dict)
        self.requires_grad_(False)
        self.eval()

    def load_conv_weights(self, state_dict: dict) -> None:
        """Load ``{convX_Y.weight, convX_Y.bias}`` (extra deeper layers are ignored)."""
        for name, module in self.stack.items():
            if not name.startswith("conv"):
                continue
            for part in ("weight", "bias"):
                key = f"{name}.{part}"
                if key not in state_dict:
                    raise WeightsError(f"VGG weights lack {key}")
                value = state_dict[key]
                target = getattr(module, part)
                if tuple(value.shape) != tuple(target.shape):
                    raise WeightsError(
                        f"VGG weight {key} has shape {tuple(value.shape)}, expected {tuple(target.shape)}"
                    )
                target.data.copy_(value)

    def train(self, mode: bool = True):  # always frozen, always in eval mode
        return super().train(False)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        if self.preprocessing == "caffe":
            image = image.flip(1)  # RGB → BGR
        return (image - self.mean.to(image.dtype)) * self.scale.to(image.dtype)

    def forward(self, image: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """``{name: features}`` for ``layers`` (default: all of ``self.layers``); the
        stack stops after the deepest one asked for (content targets need only relu2_2)."""
        wanted = set(self.layers if layers is None else layers)
        unknown = wanted - set(self.layers)
        if unknown:
            raise ValueError(f"encoder was built without layer(s) {sorted(unknown)}")
        x, out = self.preprocess(image), {}
        for name in self.names:
            x = self.stack[name](x)
            if name in wanted:
                out[name] = x if self.feature_scale == 1.0 else x * self.feature_scale
                if len(out) == len(wanted):
                    break
        return out


def build_encoder(
    arch: str, layers: Iterable[str], weights: str | Path | None = None, pretrained: bool = True, fetch: bool = True
) -> VGGEncoder:
    """A frozen encoder for ``layers`` with weights found by ``weights.resolve_vgg_weights``;
    ``pretrained=False`` gives random init (tests)."""
    from cin_style.nn.vgg_weights import DEFAULT_PREPROCESSING, load_state_dict_file, resolve_vgg_weights

    if not pretrained:
        return VGGEncoder(arch, layers, None, preprocessing=DEFAULT_PREPROCESSING[arch])
    path = resolve_vgg_weights(arch, weights, fetch=fetch)
    state, preprocessing = load_state_dict_file(path, arch)
    return VGGEncoder(arch, layers, state, preprocessing=preprocessing)
