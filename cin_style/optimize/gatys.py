"""Gatys et al. 2016: optimise the pixels of one image directly.

No training and any style image; the quality reference the feed-forward
model is judged against.  Uses the same encoder and losses as training.
L-BFGS from the photo reaches a clearly stylized 512-px image in about 60
iterations (a few CPU minutes); ``scales`` > 1 adds coarse-to-fine levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cin_style.config import OptimizeConfig
from cin_style.data.photos import to_array, to_tensor
from cin_style.errors import ConfigError, TrainingDiverged
from cin_style.losses.clip import ClipDirectionLoss
from cin_style.losses.perceptual import PerceptualLoss, blend_grams
from cin_style.progress import progress


@dataclass
class OptimizeResult:
    image: np.ndarray  # float [H, W, 3] in [0, 1]
    history: list[dict]
    frames: list[Path]


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def _level_sizes(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    sizes = []
    for level in reversed(range(scales)):
        factor = 2**level
        sizes.append((max(16, round(height / factor)), max(16, round(width / factor))))
    return sizes


def optimize_image(
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    style_weights: Sequence[float],
    config: OptimizeConfig,
    encoder,
    *,
    device: str | torch.device = "cpu",
    frames_every: int | None = None,
    frames_dir: Path | None = None,
    clip: ClipDirectionLoss | None = None,
) -> OptimizeResult:
    """Stylize ``content`` (float [H, W, 3]) towards the Gram blend of ``styles``
    and/or, with ``clip`` (built for ``config.text``), towards the text's direction.

    ``content`` should already be at the target size; styles are used at
    their given size.  Returns the image and the per-step loss parts.
    """
    from cin_style.infer.finish import preserve_color
    from cin_style.io.image import save_image

    device = torch.device(device)
    if len(styles) != len(style_weights) or not (styles or clip is not None):
        raise ConfigError(
            "give one weight per style image" if styles or style_weights else "give a style image or --text"
        )
    if styles:
        weights = np.asarray(style_weights, dtype=np.float64)
        if np.any(~np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ConfigError("style weights must be finite, >= 0 and not all 0")
        weights = weights / weights.sum()
    loss_fn = PerceptualLoss(encoder, config.loss).to(device)
    style_tensors = [to_tensor(s)[None].to(device) for s in styles]
    full = to_tensor(content)[None].to(device)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    frames: list[Path] = []
    image = None
    sizes = _level_sizes(full.shape[2], full.shape[3], config.scales)
    total_steps = sum(config.steps * (2 if i < len(sizes) - 1 else 1) for i in range(len(sizes)))
    shown = ExitStack()
    bar = shown.enter_context(progress(total_steps, "optimize"))
    try:
        for level, size in enumerate(sizes):
            steps = config.steps * (2 if level < len(sizes) - 1 else 1)
            target = _resize(full, size) if size != tuple(full.shape[2:]) else full
            content_feats = loss_fn.content_targets(target)
            # Styles scaled with the level, so brush strokes keep their size relative to the image.
            factor = size[0] / full.shape[2]
            scaled = [
                s
                if factor == 1
                else _resize(s, (max(16, round(s.shape[2] * factor)), max(16, round(s.shape[3] * factor))))
                for s in style_tensors
            ]
            style_targets = blend_grams(loss_fn.style_targets(scaled), weights.tolist()) if styles else None
            if image is None:
                if config.init == "content":
                    start = target.clone()
                else:
                    start = torch.rand(target.shape, generator=generator).to(device)
            else:
                start = _resize(image.detach(), size).clamp(0, 1)
            image = start.requires_grad_(True)
            objective = _objective(loss_fn, content_feats, style_targets, clip, target, generator)
            image, level_history = _run_level(
                image, objective, config, steps, bar, level, frames_every, frames_dir, frames, len(history)
            )
            history += level_history
    finally:
        shown.close()
    result = to_array(image.detach().clamp(0, 1)[0])
    if config.preserve_color:
        result = preserve_color(result, content)
    if frames_dir is not None and frames_every:
        frames.append(save_image(frames_dir / f"step_{len(history):05d}.png", result))
    return OptimizeResult(result, history, frames)


def _objective(
    loss_fn: PerceptualLoss,
    content_feats,
    style_targets,
    clip: ClipDirectionLoss | None,
    photo: torch.Tensor,
    generator: torch.Generator,
):
    """image → (total, parts): the perceptual loss (without a style term when only a
    text gives the style) plus, for a text, the weighted CLIP direction and patch terms."""
    rows = torch.zeros(photo.shape[0], dtype=torch.long)

    def score(image):
        total, parts = loss_fn.score(image, content_feats, style_targets)
        if style_targets is None:
            del parts["style"]
        if clip is not None:
            terms = clip(image, photo, rows, generator)
            parts["clip"] = clip.weighted(terms)
            total = total + parts["clip"]
        return total, parts

    return score


def _run_level(image, objective, config, steps, bar, level, frames_every, frames_dir, frames, step_offset):
    """Optimise ``image`` for ``steps`` iterations at one size.

    L-BFGS runs as one ``step`` call with ``max_iter=steps`` and a strong-Wolfe
    line search (repeated single-iteration calls stall it).  Its line search
    evaluates trial points, so the history keeps, per iteration, the best loss
    evaluated so far.
    """
    from cin_style.io.image import save_image

    history: list[dict] = []
    best: dict = {}
    lbfgs = config.optimizer == "lbfgs"
    if lbfgs:
        optimizer = torch.optim.LBFGS(
            [image],
            lr=config.lr or 1.0,
            max_iter=steps,
            max_eval=2 * steps + 5,
            history_size=50,
            line_search_fn="strong_wolfe",
        )
    else:
        optimizer = torch.optim.Adam([image], lr=config.lr or 0.02)

    def record(iteration: int) -> None:
        while len(history) < iteration:  # one entry per finished iteration
            entry = {"step": step_offset + len(history) + 1, "level": level, "size": list(image.shape[2:]), **best}
            history.append(entry)
            terms = " ".join(f"{k} {v:.3g}" for k, v in best.items() if k != "loss")
            bar.set_postfix_str(f"{image.shape[3]}x{image.shape[2]} loss {best['loss']:.4g} ({terms})", refresh=False)
            bar.update(1)
            if frames_every and frames_dir is not None and entry["step"] % frames_every == 0:
                frames.append(
                    save_image(frames_dir / f"step_{entry['step']:05d}.png", to_array(image.detach()[0].clamp(0, 1)))
                )

    def closure():
        if lbfgs:
            record(optimizer.state[image].get("n_iter", 0))
        optimizer.zero_grad(set_to_none=True)
        total, parts = objective(image)
        if not torch.isfinite(total):
            raise TrainingDiverged("loss became NaN/inf; lower --style-weight or --lr, or use --optimizer adam")
        total.backward()
        value = float(total.detach())
        if not best or value < best["loss"]:
            best.update(loss=value, **{k: float(v.detach()) for k, v in parts.items()})
        return total

    # No clamping between iterations: moving the pixels behind L-BFGS's back
    # breaks its curvature estimates.  The result is clamped at the end.
    if lbfgs:
        optimizer.step(closure)
        record(optimizer.state[image].get("n_iter", steps))
    else:
        for step in range(steps):
            best.clear()
            optimizer.step(closure)
            record(step + 1)
    return image, history


def optimize_file(
    content: str | Path,
    styles: Sequence[tuple[str | Path, float]],
    output: str | Path,
    config: OptimizeConfig,
    *,
    vgg_weights: str | Path | None = None,
    device: str = "auto",
    frames_every: int | None = None,
) -> OptimizeResult:
    """``cin-style optimize``: the photo at ``content`` (long side ``config.size``)
    towards the weighted ``(painting, weight)`` blend, written to ``output``;
    every ``frames_every`` steps a frame goes to OUTPUT_frames/."""
    from cin_style.io.image import load_image, output_format, resize_long_side, save_image
    from cin_style.nn.devices import pick_device
    from cin_style.nn.vgg import build_encoder

    output = Path(output)
    output_format(output)  # fail on .gif etc. before minutes of work
    image = resize_long_side(load_image(content), config.size)
    paintings = [load_image(path, max_size=config.size) for path, _ in styles]
    dev = pick_device(device)
    clip = None
    if config.text:
        from cin_style.losses.clip import load_clip

        model, tokenizer = load_clip(config.clip, dev)
        clip = ClipDirectionLoss(model, tokenizer, config.clip, [config.text]).to(dev)
    encoder = build_encoder(config.loss.encoder, config.loss.layers, vgg_weights).to(dev)
    frames_dir = output.with_name(output.stem + "_frames") if frames_every else None
    result = optimize_image(
        image,
        paintings,
        [weight for _, weight in styles],
        config,
        encoder,
        device=dev,
        frames_every=frames_every,
        frames_dir=frames_dir,
        clip=clip,
    )
    save_image(output, result.image)
    return result
