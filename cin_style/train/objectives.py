"""What a training step minimises, pluggable into ``Trainer``.

An objective draws what it needs for a batch (``prepare``, from the run's generator,
in a fixed order so a resumed run draws the same), runs the network (``forward``) and
scores its output (``loss`` → ``(total, parts)``).  ``Perceptual`` covers paintings
(Gram targets) and, for styles given in words, the CLIP direction loss; ``Distill``
reproduces a teacher model; ``Stability`` wraps any of them with the video term.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from cin_style.config import DistillConfig
from cin_style.losses.clip import ClipDirectionLoss
from cin_style.losses.perceptual import PerceptualLoss
from cin_style.nn.stylenet import StyleNet, one_hot_weights
from cin_style.train.distill import distill_loss, draw_weights

Parts = dict[str, torch.Tensor]


@dataclass
class Batch:
    """One step's (or one process's share of a step's) inputs."""

    content: torch.Tensor  # [N, 3, H, W] photo crops
    weights: torch.Tensor  # [N, S] style blend of each sample
    indices: torch.Tensor | None = None  # [N] style rows, when each sample has one style
    extra: dict[str, Any] = field(default_factory=dict)  # what an objective's prepare() adds


class Objective(Protocol):
    def draw_weights(
        self, style_indices: torch.Tensor, num_styles: int, batch_size: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[batch_size, S] weights for a global batch, and the style row of each sample."""
        ...

    def prepare(self, batch: Batch, generator: torch.Generator) -> None:
        """Draw anything else this batch needs (after the weights, before the next batch)."""
        ...

    def forward(self, net: nn.Module, batch: Batch) -> torch.Tensor: ...

    def loss(self, output: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, Parts]: ...


class _PlainForward:
    """Nothing more to draw; the network sees the batch as it is."""

    def prepare(self, batch: Batch, generator: torch.Generator) -> None:
        pass

    def forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        return net(batch.content, batch.weights)


class _OneStylePerSample(_PlainForward):
    """Each sample draws one of the trained styles (one-hot weights)."""

    def draw_weights(self, style_indices, num_styles, batch_size, generator):
        pick = torch.randint(len(style_indices), (batch_size,), generator=generator)
        indices = style_indices[pick]
        return one_hot_weights(indices, num_styles), indices


class Perceptual(_OneStylePerSample):
    """Content, Gram style and TV (``PerceptualLoss``) against one Gram row per model
    style; styles given in words (``text_rows``) take the CLIP direction loss instead,
    weighted by their share of the batch."""

    def __init__(
        self,
        loss_fn: PerceptualLoss,
        grams: dict[str, torch.Tensor],
        clip: ClipDirectionLoss | None = None,
        text_rows: torch.Tensor | None = None,
        clip_generator: torch.Generator | None = None,
    ):
        self.loss_fn, self.grams, self.clip = loss_fn, grams, clip
        self.text_rows = text_rows
        self.clip_generator = clip_generator

    def loss(self, output: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, Parts]:
        if batch.indices is None:
            raise ValueError("the perceptual objective needs one style row per sample (indices)")
        indices = batch.indices
        targets = {name: table[indices] for name, table in self.grams.items()}
        if self.clip is None or self.text_rows is None:
            return self.loss_fn(output, batch.content, targets)
        is_text = self.text_rows.to(indices.device)[indices]
        total, parts = self.loss_fn(output, batch.content, targets, style_samples=~is_text)
        clip = output.new_zeros((), dtype=torch.float32)
        if is_text.any():
            terms = self.clip(output[is_text], batch.content[is_text], indices[is_text], self.clip_generator)
            clip = self.clip.weighted(terms) * is_text.float().mean()
        parts["clip"] = clip
        return total + clip, parts


class Distill(_PlainForward):
    """Reproduce a frozen teacher for single styles and random two-style blends."""

    def __init__(self, teacher: StyleNet, encoder: nn.Module, content_layers: list[str], config: DistillConfig):
        self.teacher, self.encoder = teacher, encoder
        self.content_layers, self.config = content_layers, config

    def draw_weights(self, style_indices, num_styles, batch_size, generator):
        return draw_weights(style_indices, num_styles, batch_size, self.config.blend_share, generator), None

    def loss(self, output: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, Parts]:
        with torch.no_grad():
            target = self.teacher(batch.content, batch.weights)
        return distill_loss(output, target, self.encoder, self.content_layers, self.config)


STABILITY_MARGIN = 4  # px left out at the borders, where the shifted copy had no pixels


def perturb(images: torch.Tensor, generator: torch.Generator):
    """A copy of ``images`` each shifted by up to 2 px, zoomed by up to 2 % and given
    sensor noise (σ up to 0.02), and the function that moves any [N, C, H, W] the same
    way (without the noise): synthetic camera motion from still photos."""
    n, _, h, w = images.shape
    shift = (torch.rand(n, 2, generator=generator) * 4 - 2) * torch.tensor([2 / w, 2 / h])
    scale = 1 + (torch.rand(n, generator=generator) * 0.04 - 0.02)
    sigma = torch.rand(n, 1, 1, 1, generator=generator) * 0.02
    noise = torch.randn(images.shape, generator=generator) * sigma
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False).to(images.device)

    def move(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.grid_sample(
            x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
        )

    return (move(images) + noise.to(images.device)).clamp(0, 1).to(images.dtype), move


def stability_loss(output_moved: torch.Tensor, moved_output: torch.Tensor) -> torch.Tensor:
    m = STABILITY_MARGIN
    return torch.nn.functional.mse_loss(output_moved[..., m:-m, m:-m].float(), moved_output[..., m:-m, m:-m])


class Stability:
    """Any objective plus ``weight`` × the change of the output under small synthetic
    camera motion (``perturb``): the network learns to flicker less on video."""

    def __init__(self, inner: Objective, weight: float):
        self.inner, self.weight = inner, weight

    def draw_weights(self, style_indices, num_styles, batch_size, generator):
        return self.inner.draw_weights(style_indices, num_styles, batch_size, generator)

    def prepare(self, batch: Batch, generator: torch.Generator) -> None:
        self.inner.prepare(batch, generator)
        batch.extra["moved"], batch.extra["move"] = perturb(batch.content, generator)

    def forward(self, net: nn.Module, batch: Batch) -> torch.Tensor:
        # One forward for the crops and their perturbed copies (DDP wants one per step).
        both = net(torch.cat([batch.content, batch.extra["moved"]]), torch.cat([batch.weights, batch.weights]))
        batch.extra["output_moved"] = both[len(batch.content) :]
        return both[: len(batch.content)]

    def loss(self, output: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, Parts]:
        total, parts = self.inner.loss(output, batch)
        parts["stability"] = stability_loss(batch.extra["output_moved"], batch.extra["move"](output))
        return total + self.weight * parts["stability"], parts
