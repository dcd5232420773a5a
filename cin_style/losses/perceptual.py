"""Perceptual losses (Gatys et al. 2016; Johnson et al. 2016).

Functional forms first, each with shape checks that say what was expected;
``PerceptualLoss`` is a thin module that ties them to an encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cin_style.config import LossConfig
from cin_style.errors import ConfigError


def _check_4d(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a [N, C, H, W] tensor, got {shape}")


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] → [N, C, C], normalised by C·H·W (Johnson et al.), so the
    value does not grow with image size.  Computed in float32 even under
    autocast: bf16 sums over H·W lose too much precision."""
    _check_4d("features", features)
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between feature maps of the same shape."""
    _check_4d("features", features)
    if features.shape != target.shape:
        raise ValueError(f"content features {list(features.shape)} and target {list(target.shape)} differ in shape")
    return F.mse_loss(features.float(), target.float())


def style_loss(
    features: dict[str, torch.Tensor],
    target_grams: dict[str, torch.Tensor],
    layer_weights: dict[str, float] | None = None,
) -> torch.Tensor:
    """Σ_l w_l · MSE(G(features_l), target_l).

    ``target_grams[l]`` is [C, C] (one style for the batch) or [N, C, C]
    (a style per sample).  ``layer_weights`` defaults to 1 for every layer of
    ``target_grams``.
    """
    layer_weights = layer_weights or dict.fromkeys(target_grams, 1.0)
    total = None
    for name, weight in layer_weights.items():
        if name not in features or name not in target_grams:
            raise KeyError(f"style layer {name!r} missing from features or targets")
        gram = gram_matrix(features[name])
        target = target_grams[name].float()
        if target.dim() == 2:
            target = target.unsqueeze(0).expand_as(gram)
        if target.shape != gram.shape:
            raise ValueError(f"style target for {name} is {list(target.shape)}, features give {list(gram.shape)}")
        term = weight * F.mse_loss(gram, target)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("style_loss needs at least one layer")
    return total


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation: mean |vertical step| + mean |horizontal step|."""
    _check_4d("image", image)
    image = image.float()
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean() if image.shape[2] > 1 else image.new_zeros(())
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean() if image.shape[3] > 1 else image.new_zeros(())
    return dx + dy


def blend_grams(grams: dict[str, torch.Tensor], weights) -> dict[str, torch.Tensor]:
    """Style targets of several images [S, C, C] mixed in Gram space: Σ_s w_s G_s."""
    out = {}
    for name, table in grams.items():
        w = torch.as_tensor(weights, dtype=table.dtype, device=table.device)
        if w.dim() != 1 or w.shape[0] != table.shape[0]:
            raise ValueError(
                f"{w.shape[0] if w.dim() == 1 else list(w.shape)} blend weights for {table.shape[0]} style targets"
            )
        out[name] = torch.einsum("s,sij->ij", w, table)
    return out


class PerceptualLoss(nn.Module):
    """Weighted content + style + TV loss over a frozen encoder.

    ``forward(output, content, target_grams)`` returns ``(total, parts)`` where
    parts holds the weighted ``content``, ``style`` and ``tv`` terms.
    """

    def __init__(self, encoder: nn.Module, config: LossConfig):
        super().__init__()
        missing = [n for n in config.layers if n not in encoder.layers]
        if missing:
            raise ConfigError(f"the loss network does not provide layer(s) {missing}")
        self.encoder = encoder
        self.config = config

    @torch.no_grad()
    def style_targets(self, style_images: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Gram targets of S style images (each [3, H, W] or [1, 3, H, W], sizes
        may differ) → {layer: [S, C, C]}."""
        grams = {name: [] for name in self.config.style_layers}
        for image in style_images:
            feats = self.encoder(image if image.dim() == 4 else image.unsqueeze(0))
            for name in grams:
                grams[name].append(gram_matrix(feats[name]))
        return {name: torch.cat(values) for name, values in grams.items()}

    @torch.no_grad()
    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.encoder(content, layers=self.config.content_layers)

    def forward(
        self,
        output: torch.Tensor,
        content: torch.Tensor,
        target_grams: dict[str, torch.Tensor] | None,
        style_samples: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.score(output, self.content_targets(content), target_grams, style_samples)

    def score(
        self,
        output: torch.Tensor,
        content_feats: dict[str, torch.Tensor],
        target_grams: dict[str, torch.Tensor] | None,
        style_samples: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Like ``forward`` with the content features already computed (they do
        not change while optimising an image).

        ``target_grams`` None: no style term (a style given in words instead; the
        encoder stops at the content layers).  ``style_samples`` [N] bool: only those
        samples have Gram targets; the style term averages over them and counts in
        proportion to their share of the batch.
        """
        cfg = self.config
        out_feats = self.encoder(output, layers=None if target_grams is not None else cfg.content_layers)
        c_loss = sum(w * content_loss(out_feats[n], content_feats[n]) for n, w in cfg.content_layers.items())
        if target_grams is None or (style_samples is not None and not style_samples.any()):
            s_loss = output.new_zeros((), dtype=torch.float32)
        elif style_samples is not None:
            picked = {n: out_feats[n][style_samples] for n in cfg.style_layers}
            targets = {n: t[style_samples] if t.dim() == 3 else t for n, t in target_grams.items()}
            s_loss = style_loss(picked, targets, cfg.style_layers) * style_samples.float().mean()
        else:
            s_loss = style_loss(out_feats, target_grams, cfg.style_layers)
        tv = total_variation(output)
        parts = {"content": cfg.content_weight * c_loss, "style": cfg.style_weight * s_loss, "tv": cfg.tv_weight * tv}
        return parts["content"] + parts["style"] + parts["tv"], parts
