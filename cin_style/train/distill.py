"""Distillation: a student network learns to reproduce a trained teacher network.

The student sees the same photo crops as in plain training; its target is the
teacher's output for the same style weights — one style, or a random blend of two
(blends are most of real use, and a student that only saw one-hot rows would have
to interpolate its γ/β rows unguided).  The loss is the pixel error plus a light
perceptual term: the loss network's features at the content layers (relu2_2 in the
reference recipe, so the loss network stops early), for edges and texture that a
pixel error alone averages away.
"""

from __future__ import annotations

import torch
from torch import nn

from cin_style.config import DistillConfig
from cin_style.losses.perceptual import content_loss
from cin_style.nn import checkpoint as ckpt
from cin_style.nn.stylenet import StyleNet


def teacher_source(teacher: str) -> str:
    """``--teacher``'s value as a path: ``bundled`` names the bundled reference model."""
    from cin_style.assets.bundled import reference_model

    return str(reference_model()) if teacher == "bundled" else teacher


def load_teacher(config: DistillConfig, style_names: list[str]) -> tuple[StyleNet, str]:
    """The frozen float32 teacher and its file's sha256.  It must hold exactly the styles
    being trained, in the same order (its rows are the student's targets); a teacher
    whose file changed since the run began is refused (``teacher_sha256``)."""
    model, digest = ckpt.load_model_to_build_on(config.teacher, style_names, "the teacher", config.teacher_sha256)
    return model.eval().requires_grad_(False), digest


def draw_weights(
    style_indices: torch.Tensor, num_styles: int, batch_size: int, blend_share: float, generator: torch.Generator
) -> torch.Tensor:
    """[batch_size, num_styles] rows: each a one-hot style from ``style_indices`` or, with
    probability ``blend_share``, a blend ``t·a + (1-t)·b`` of two distinct ones (t uniform)."""
    count = len(style_indices)
    first = torch.randint(count, (batch_size,), generator=generator)
    # A second, different style: an offset of 1 … count-1 from the first.
    second = (first + 1 + torch.randint(max(count - 1, 1), (batch_size,), generator=generator)) % count
    t = torch.rand(batch_size, generator=generator)
    blended = torch.rand(batch_size, generator=generator) < blend_share
    if count < 2:
        blended[:] = False
    weights = torch.zeros(batch_size, num_styles)
    rows = torch.arange(batch_size)
    a, b = style_indices[first], style_indices[second]
    weights[rows, a] = torch.where(blended, t, torch.ones(batch_size))
    weights[rows[blended], b[blended]] += 1 - t[blended]
    return weights


def distill_loss(
    student: torch.Tensor, teacher: torch.Tensor, encoder: nn.Module, layers: list[str], config: DistillConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(total, {"pixel", "feature"})``: the weighted terms of DistillConfig's loss (both
    mean squared errors, with the shape checks of ``content_loss``)."""
    pixel = content_loss(student, teacher)
    feature = student.new_zeros((), dtype=torch.float32)
    if config.feature_weight > 0:
        ours = encoder(student, layers=layers)
        with torch.no_grad():
            theirs = encoder(teacher.to(student.dtype), layers=layers)
        feature = sum(content_loss(ours[n], theirs[n]) for n in layers) / len(layers)
    parts = {"pixel": config.pixel_weight * pixel, "feature": config.feature_weight * feature}
    return parts["pixel"] + parts["feature"], parts
