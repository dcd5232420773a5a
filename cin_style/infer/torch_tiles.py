"""StyleNet one conv at a time, for tiled stylization (tiles.py): run directly by
``TorchTileBackend`` and traced as one graph by ``export --tiled``, so PyTorch and
onnxruntime tile with the same pieces.

A piece is one conv over a strip of rows that already carries its halo: it pads only
columns (the strip's edge rows are real neighbours, or the image's padding, from
tiles.py).  Its input is first normalised with the previous layer's whole-image
statistics (a per-channel scale and offset) and ReLU'd, or added to the residual
stream; its output comes back shifted, in fp16, with its per-channel sums.  The tests
check the pieces against ``StyleNet.forward``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cin_style.infer.tiles import PHOTO, SUM, Layer, network_layers
from cin_style.nn.stylenet import ConvCIN, StyleNet, UpsampleConvCIN, phase_kernels, phase_upsample_conv


def _affine(block: ConvCIN, weights: torch.Tensor) -> torch.Tensor:
    """[2, C]: the blended γ and β of the block's norm."""
    return torch.stack([(weights @ block.norm.gamma.float())[0], (weights @ block.norm.beta.float())[0]])


class LayerPieces(nn.Module):
    def __init__(self, net: StyleNet):
        super().__init__()
        if next(net.parameters()).dtype != torch.float32:  # a copy: the caller's model stays as it is
            net = copy.deepcopy(net).float()
        self.net = net.eval()
        convs = [conv for block in net.residuals for conv in (block.conv1, block.conv2)]
        self.layers = network_layers(len(convs), net.config.outer_kernel)
        modules = [net.head, net.down1, net.down2, *convs, net.up1, net.up2, net.tail]
        self.blocks: dict[str, ConvCIN | UpsampleConvCIN] = {
            layer.name: module for layer, module in zip(self.layers, modules)
        }
        # Upsampling convs run phase by phase (4/9 of the multiply-adds), as export writes them.
        with torch.no_grad():
            self.phases = {
                name: (phase_kernels(up.block.conv.weight), up.block.conv.bias.repeat(4))
                for name, up in (("up1", net.up1), ("up2", net.up2))
            }

    def norm_block(self, layer: Layer) -> ConvCIN:
        block = self.blocks[layer.name]
        return block.block if isinstance(block, UpsampleConvCIN) else block

    def piece(self, layer: Layer, rows, norm=None, stream=None, shift=None, kept=torch.float16):
        """``layer``'s conv (tiles.LayerBackend.conv): (output less ``shift``, its per-channel
        sums [2, C], the normalised input when the layer keeps the stream), kept in ``kept``."""
        x = rows.float()
        if norm is not None:
            x = x * norm[0][None, :, None, None] + norm[1][None, :, None, None]
            x = x + stream.float() if layer.source == SUM else F.relu(x)
        block = self.blocks[layer.name]
        if isinstance(block, UpsampleConvCIN):
            y = phase_upsample_conv(x, *self.phases[layer.name])
        else:
            pad = block.conv.kernel_size[0] // 2
            y = block.conv(F.pad(x, (pad, pad, 0, 0), mode="reflect"))
        y = y - shift[None, :, None, None]
        sums = torch.stack([y.sum(dim=(0, 2, 3)), (y * y).sum(dim=(0, 2, 3))])
        return y.to(kept), sums, (x.to(kept) if layer.keeps_stream else None)

    def affine(self, layer: Layer, weights: torch.Tensor) -> torch.Tensor:
        return _affine(self.norm_block(layer), weights)

    def forward(self, style_weights, rows: list, norms: list, streams: list, shifts: list):
        """Every piece at once, each from its own input: what `export --tiled` traces
        (contract.tiled_names gives the order).  ``rows`` and ``shifts``: one per layer;
        ``norms``: one per layer but the head; ``streams``: one per SUM layer."""
        norm_of, stream_of = iter(norms), iter(streams)
        outputs, sums, kept = [], [], []
        for layer, x, shift in zip(self.layers, rows, shifts):
            norm = None if layer.source == PHOTO else next(norm_of)
            y, total, written = self.piece(layer, x, norm, next(stream_of) if layer.source == SUM else None, shift)
            outputs.append(y)
            sums.append(total)
            if written is not None:
                kept.append(written)
        return (*outputs, *sums, *kept, *(self.affine(layer, style_weights) for layer in self.layers))


class TorchTileBackend:
    """tiles.LayerBackend over a PyTorch StyleNet for one blend; ``kept``: the dtype the
    strips are kept in (fp16 as the tiled graph keeps them; float32 to test the scheme)."""

    def __init__(self, net: StyleNet, weights: np.ndarray, kept=torch.float16):
        self.kept = kept
        self.pieces = LayerPieces(net)
        self.layers = self.pieces.layers
        self.device = next(net.parameters()).device
        weights = torch.as_tensor(np.asarray(weights, np.float32).reshape(1, -1), device=self.device)
        with torch.no_grad():
            self._affine = {layer.name: self.pieces.affine(layer, weights).cpu().numpy() for layer in self.layers}

    def _tensor(self, array: np.ndarray | None) -> torch.Tensor | None:
        return None if array is None else torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.no_grad()
    def conv(self, layer, rows, norm, stream, shift):
        outputs = self.pieces.piece(
            layer,
            self._tensor(rows),
            None if norm is None else self._tensor(np.stack(norm)),
            self._tensor(stream),
            self._tensor(shift),
            self.kept,
        )
        return tuple(None if t is None else t.cpu().numpy() for t in outputs)

    def affine(self, layer):
        gamma, beta = self._affine[layer.name]
        return gamma, beta
