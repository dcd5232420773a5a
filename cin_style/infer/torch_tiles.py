"""StyleNet cut at its norm layers, for tiled stylization (tiles.py): run directly
by ``TorchTileBackend`` and traced as one graph by ``export --tiled``, so PyTorch
and onnxruntime tile with the same pieces.

Each norm layer here takes its statistics from outside ([2, C]: mean, 1/std over
the whole image) instead of from the tensor it sees, then applies the blended γ/β
exactly like ConditionalInstanceNorm2d.  The tests check the pieces against
``StyleNet.forward``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cin_style.infer.tiles import BACK, FRONT, Stats
from cin_style.nn.stylenet import ConvCIN, StyleNet, crop_to


def _apply_norm(block: ConvCIN, pre: torch.Tensor, weights: torch.Tensor, stats: torch.Tensor):
    gamma = (weights @ block.norm.gamma.float())[0]
    beta = (weights @ block.norm.beta.float())[0]
    scale = stats[1] * gamma
    y = pre * scale[None, :, None, None] + (beta - stats[0] * scale)[None, :, None, None]
    return F.relu(y) if block.relu else y


class TileStages(nn.Module):
    def __init__(self, net: StyleNet):
        super().__init__()
        if next(net.parameters()).dtype != torch.float32:  # a copy: the caller's model stays as it is
            net = copy.deepcopy(net).float()
        self.net = net.eval()
        self.front_blocks = [net.head, net.down1, net.down2]
        self.back_blocks = [net.up1.block, net.up2.block, net.tail]
        self.up_layers = {"up1": net.up1, "up2": net.up2}
        self.residual_blocks = [conv for block in net.residuals for conv in (block.conv1, block.conv2)]

    def front(self, crop, weights, stats: dict[str, torch.Tensor], fetch: str | None = None) -> dict:
        """Pre-norm outputs of head, down1, down2 and the normalised "quarter", stopping
        after ``fetch`` (None: all of them)."""
        out, x = {}, crop
        for name, block in zip(FRONT, self.front_blocks):
            out[name] = block.conv(block.pad(x))
            if fetch == name:
                return out
            x = _apply_norm(block, out[name], weights, stats[name])
        out["quarter"] = x
        return out

    def back(
        self, quarter, weights, half_hw, full_hw, stats: dict[str, torch.Tensor], fetch: str | None = None
    ) -> dict:
        """Pre-norm outputs of up1, up2, tail and the "stylized" tile, stopping after ``fetch``."""
        out, x = {}, quarter
        for name, block, size in zip(BACK, self.back_blocks, (half_hw, full_hw, None)):
            if size is None:
                out[name] = block.conv(block.pad(x))
            else:
                out[name] = crop_to(self.up_layers[name].uncropped(x), size)
            if fetch == name:
                return out
            x = _apply_norm(block, out[name], weights, stats[name])
        out["stylized"] = torch.sigmoid(x)
        return out

    def residual_affine(self, weights) -> torch.Tensor:
        """[convs, 2, C]: each residual norm's blended γ and β."""
        return torch.stack(
            [
                torch.stack([(weights @ b.norm.gamma.float())[0], (weights @ b.norm.beta.float())[0]])
                for b in self.residual_blocks
            ]
        )

    def forward(self, style_weights, stats: list, front_in: list, residual_in: list, back_in: list, full_like: list):
        """Every piece at once, each from its own input: what `export --tiled` traces.
        A call feeds real data only to the piece it fetches and 16-px dummies to the
        rest (onnxruntime runs the whole graph), so each call pays for its own piece.
        ``stats``: head, down1, down2, up1, up2, tail; ``front_in``/``back_in``/``full_like``
        one per front/back output (``full_like`` carries only its shape, the tile's size)."""
        front_stats = dict(zip(FRONT, stats[:3]))
        back_stats = dict(zip(BACK, stats[3:]))
        outputs = []
        for crop, fetch in zip(front_in, (*FRONT, "quarter")):
            outputs.append(self.front(crop, style_weights, front_stats, None if fetch == "quarter" else fetch)[fetch])
        outputs += [block.conv(x) for block, x in zip(self.residual_blocks, residual_in)]
        outputs.append(self.residual_affine(style_weights))
        for quarter, like, fetch in zip(back_in, full_like, (*BACK, "stylized")):
            full = (like.shape[2], like.shape[3])
            half = ((full[0] + 1) // 2, (full[1] + 1) // 2)  # = what tiles.py computes (see there)
            outputs.append(
                self.back(quarter, style_weights, half, full, back_stats, None if fetch == "stylized" else fetch)[fetch]
            )
        return tuple(outputs)


class TorchTileBackend:
    """tiles.TileBackend over a PyTorch StyleNet for one blend."""

    def __init__(self, net: StyleNet, weights: np.ndarray):
        self.stages = TileStages(net)
        self.device = next(net.parameters()).device
        self.weights = torch.as_tensor(np.asarray(weights, np.float32).reshape(1, -1), device=self.device)
        self.residual_convs = len(self.stages.residual_blocks)
        with torch.no_grad():
            self._affine = self.stages.residual_affine(self.weights).cpu().numpy()

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def _stats(self, stats: Stats) -> dict[str, torch.Tensor]:
        return {k: self._tensor(np.stack(v)) for k, v in stats.items()}

    @torch.no_grad()
    def front(self, crop, stats, fetch):
        out = self.stages.front(
            self._tensor(crop), self.weights, self._stats(stats), None if fetch == "quarter" else fetch
        )
        return out[fetch].float().cpu().numpy()

    @torch.no_grad()
    def residual_conv(self, index, padded):
        return self.stages.residual_blocks[index].conv(self._tensor(padded)).float().cpu().numpy()

    def residual_affine(self, index):
        return self._affine[index, 0], self._affine[index, 1]

    @torch.no_grad()
    def back(self, quarter, half_hw, full_hw, stats, fetch):
        out = self.stages.back(
            self._tensor(quarter),
            self.weights,
            half_hw,
            full_hw,
            self._stats(stats),
            None if fetch == "stylized" else fetch,
        )
        return out[fetch].float().cpu().numpy()
