"""The style network: a Johnson/Dumoulin feed-forward transformer with
conditional instance normalisation (CIN).

One network holds N styles.  Every normalisation layer keeps a γ and β row per
style; a style-weight matrix ``w`` of shape [batch, num_styles] picks the rows
for each sample (``w @ γ``), so a one-hot row selects a style and any other
row blends styles — per sample, inside one batch.  A weight map [batch,
num_styles, h, w] blends per pixel instead (style masks): every norm layer resizes
it to its own resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cin_style.config import StyleNetConfig


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose affine parameters are a weighted mix of per-style rows.

    ``gamma`` and ``beta`` have shape [num_styles, channels].  ``forward(x, w)``
    normalises each sample's channels, then applies ``w @ gamma`` and
    ``w @ beta`` (w: [N, num_styles]).  The normalisation itself carries no
    affine parameters, which is also what the ONNX ``InstanceNormalization``
    op needs (its scale/bias are per channel, not per sample).
    """

    def __init__(self, num_styles: int, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    @property
    def num_styles(self) -> int:
        return self.gamma.shape[0]

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        # Statistics in float32 whatever the activations' dtype: fp16/bf16 sums
        # over H·W drift (and for float32 input this cast is a no-op).
        if style_weights.dim() == 4:
            return self._regional(x, style_weights)
        normalized = F.instance_norm(x.float(), eps=self.eps).to(x.dtype)
        gamma = (style_weights @ self.gamma).to(x.dtype)[:, :, None, None]
        beta = (style_weights @ self.beta).to(x.dtype)[:, :, None, None]
        return normalized * gamma + beta

    def _regional(self, x: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """Per-pixel blends (style masks): ``maps`` [N, S, h, w], resized to this layer.

        Each style's region is normalised with its own statistics (weighted by its
        map), then gets that style's γ/β: a region stylized as if on its own.  With
        one global statistic instead, the sky's normalisation would also see the
        town (docs/deploy.md measures how much closer each region stays to its
        style's own output).  A constant map gives exactly the global blend.
        """
        x32 = x.float()
        maps = F.interpolate(maps.float(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        mass = maps.sum(dim=(2, 3)).clamp_min(1e-6)[..., None]  # [N, S, 1]
        mean = torch.einsum("nshw,nchw->nsc", maps, x32) / mass  # [N, S, C]
        var = (torch.einsum("nshw,nchw->nsc", maps, x32 * x32) / mass - mean * mean).clamp_min(0)
        scale = torch.rsqrt(var + self.eps) * self.gamma.float()[None]  # [N, S, C]
        shift = self.beta.float()[None] - mean * scale
        out = x32 * torch.einsum("nshw,nsc->nchw", maps, scale) + torch.einsum("nshw,nsc->nchw", maps, shift)
        return out.to(x.dtype)


class ConvCIN(nn.Module):
    """Reflection pad → conv → CIN → optional ReLU."""

    def __init__(self, num_styles, in_ch, out_ch, kernel, stride=1, relu=True):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride)
        self.norm = ConditionalInstanceNorm2d(num_styles, out_ch)
        self.relu = relu

    def forward(self, x, style_weights):
        x = self.norm(self.conv(self.pad(x)), style_weights)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    def __init__(self, num_styles, channels):
        super().__init__()
        self.conv1 = ConvCIN(num_styles, channels, channels, 3)
        self.conv2 = ConvCIN(num_styles, channels, channels, 3, relu=False)

    def forward(self, x, style_weights):
        return x + self.conv2(self.conv1(x, style_weights), style_weights)


# torch.export before 2.13 gives a slice by a size taken from elsewhere in the graph an
# unknown size, which the next reflection pad or instance norm cannot check (export fails);
# a negative pad has exactly that size.  Newer versions keep the slice: onnxruntime runs it
# a few percent faster.
SLICE_EXPORTS = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 13)


def crop_to(y: torch.Tensor, size) -> torch.Tensor:
    """``y`` cut to ``size`` (H, W) from its top left, in a form torch.export can trace."""
    if SLICE_EXPORTS:
        return y[..., : size[0], : size[1]]
    return F.pad(y, (0, size[1] - y.shape[3], 0, size[0] - y.shape[2]))


# Nearest 2x upsampling then a 3x3 conv, phase by phase: output row 2i takes input rows
# i-1 (tap 0) and i (taps 1+2), row 2i+1 takes rows i (taps 0+1) and i+1 (tap 2), and the
# same for columns.  So each of the four (row, column) output phases is a 2x2 conv of the
# input edge-padded by 1 (a reflection pad of the upsampled image by 1 is an edge pad of
# the input by 1), read at offset (row phase, column phase).  [phase, 2x2 row, 3x3 tap]:
_PHASE_TAPS = torch.tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], dtype=torch.float64)


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """[out, in, 3, 3] conv kernel → [4·out, in, 2, 2]: the 2x2 kernels of the four output
    phases of upsample-2x → reflection pad 1 → conv, phase-major (row phase, column phase)."""
    if weight.shape[-2:] != (3, 3):
        raise ValueError(f"expected a 3x3 kernel, got {list(weight.shape)}")
    taps = _PHASE_TAPS.to(weight.device)
    kernels = torch.einsum("ayp,bxq,oipq->aboiyx", taps, taps, weight.double())
    return kernels.reshape(4 * weight.shape[0], weight.shape[1], 2, 2).to(weight.dtype)


def phase_upsample_conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Upsample-2x → reflection pad 1 → conv at twice ``x``'s size, from ``phase_kernels``
    (and the bias repeated 4 times): one 2x2 conv at the input's size, the phases cut at
    their offsets and interleaved by DepthToSpace."""
    out = kernel.shape[0] // 4
    phases = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, bias)
    h, w = x.shape[-2:]
    cut = [
        phases[:, k * out : (k + 1) * out, a : a + h, b : b + w]
        for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1)))
    ]
    interleaved = torch.stack(cut, dim=2).reshape(x.shape[0], 4 * out, h, w)  # channel 4c + 2a + b
    return F.pixel_shuffle(interleaved, 2)


class UpsampleConvCIN(nn.Module):
    """Nearest 2x upsample, reflection pad, conv, then crop to ``size`` (an odd size
    drops the last row or column) → CIN → ReLU.

    Upsampling before the conv avoids the checkerboard artefacts of transposed
    convolutions (Odena et al. 2016).  Cropping after the conv (rather than resizing to
    an odd size first) makes the layer, at every size, four 2x2 convolutions of the
    edge-padded input, one per output phase, with kernels summed from this 3x3 one —
    what export writes (deploy/onnx_export.py): no full-size upsampled copy, and 4/9 of
    the multiply-adds.
    """

    def __init__(self, num_styles, in_ch, out_ch, kernel=3):
        super().__init__()
        self.block = ConvCIN(num_styles, in_ch, out_ch, kernel)

    def uncropped(self, x: torch.Tensor) -> torch.Tensor:
        """The conv's output at twice the input's size, before the crop and the norm."""
        return self.block.conv(self.block.pad(F.interpolate(x, scale_factor=2.0, mode="nearest")))

    def pre_norm(self, x: torch.Tensor, size) -> torch.Tensor:
        """The conv's output at ``size``, before the norm."""
        return self.uncropped(x)[..., : size[0], : size[1]]

    def forward(self, x, style_weights, size):
        x = self.block.norm(self.pre_norm(x, size), style_weights)
        return F.relu(x) if self.block.relu else x


class StyleNet(nn.Module):
    """Image [N,3,H,W] in [0,1] + style weights [N,S] → stylized [N,3,H,W] in [0,1].

    Any H, W work: each upsampling stage doubles, then crops to the exact size its
    matching downsampling stage started from, so the output always has the input's size.
    """

    def __init__(self, config: StyleNetConfig):
        super().__init__()
        self.config = config
        # Display names only (the checkpoint stores the real ones); not part of the state dict.
        self.style_names = [str(i) for i in range(config.num_styles)]
        s, w, k = config.num_styles, config.base_width, config.outer_kernel
        self.head = ConvCIN(s, 3, w, k)
        self.down1 = ConvCIN(s, w, 2 * w, 3, stride=2)
        self.down2 = ConvCIN(s, 2 * w, 4 * w, 3, stride=2)
        self.residuals = nn.ModuleList(ResidualBlock(s, 4 * w) for _ in range(config.num_residual_blocks))
        self.up1 = UpsampleConvCIN(s, 4 * w, 2 * w)
        self.up2 = UpsampleConvCIN(s, 2 * w, w)
        self.tail = ConvCIN(s, w, 3, k, relu=False)

    @property
    def num_styles(self) -> int:
        return self.config.num_styles

    def cin_layers(self) -> list[ConditionalInstanceNorm2d]:
        return [m for m in self.modules() if isinstance(m, ConditionalInstanceNorm2d)]

    def forward(self, image: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be [N, 3, H, W], got {list(image.shape)}")
        if (
            style_weights.dim() not in (2, 4)
            or style_weights.shape[0] != image.shape[0]
            or style_weights.shape[1] != self.num_styles
        ):
            raise ValueError(
                f"style_weights must be [N, {self.num_styles}] (one blend per image) or "
                f"[N, {self.num_styles}, h, w] (per-pixel blends, any h, w), got "
                f"{list(style_weights.shape)}"
            )
        style_weights = style_weights.to(self.head.norm.gamma.dtype)
        x = self.head(image, style_weights)
        size_full = x.shape[-2:]
        x = self.down1(x, style_weights)
        size_half = x.shape[-2:]
        x = self.down2(x, style_weights)
        for block in self.residuals:
            x = block(x, style_weights)
        x = self.up1(x, style_weights, size_half)
        x = self.up2(x, style_weights, size_full)
        return torch.sigmoid(self.tail(x, style_weights))

    def flops(self, height: int, width: int) -> int:
        """Multiply-adds x2 of the convolutions for one image (norms, activations
        and resizes are a rounding error beside them)."""
        cfg, total = self.config, 0
        w, k = cfg.base_width, cfg.outer_kernel
        half = (-(-height // 2), -(-width // 2))
        quarter = (-(-half[0] // 2), -(-half[1] // 2))

        def conv(cin, cout, kernel, size):
            return 2 * cin * cout * kernel * kernel * size[0] * size[1]

        total += conv(3, w, k, (height, width)) + conv(w, 2 * w, 3, half)
        total += conv(2 * w, 4 * w, 3, quarter)
        total += 2 * cfg.num_residual_blocks * conv(4 * w, 4 * w, 3, quarter)
        # The upsampling convs run on the doubled grid, before the crop to an odd size.
        total += conv(4 * w, 2 * w, 3, (2 * quarter[0], 2 * quarter[1]))
        total += conv(2 * w, w, 3, (2 * half[0], 2 * half[1]))
        total += conv(w, 3, k, (height, width))
        return total

    @torch.no_grad()
    def add_styles(self, count: int) -> None:
        """Grow every CIN layer by ``count`` new style rows.

        New rows start from the mean of the existing rows, a sensible point
        between the known styles to fine-tune from.
        """
        for norm in self.cin_layers():
            for name in ("gamma", "beta"):
                old = getattr(norm, name)
                new_rows = old.mean(dim=0, keepdim=True).expand(count, -1)
                setattr(norm, name, nn.Parameter(torch.cat([old, new_rows], dim=0)))
        self.config = StyleNetConfig(**{**self.config.to_dict(), "num_styles": self.num_styles + count})
        self.style_names = self.style_names + [str(i) for i in range(len(self.style_names), self.num_styles)]


def one_hot_weights(indices: torch.Tensor, num_styles: int) -> torch.Tensor:
    """[N] style indices → [N, num_styles] one-hot float weights."""
    return F.one_hot(indices.long(), num_styles).float()
