"""Styles from words: CLIPstyler's directional CLIP loss (Kwon & Ye 2022).

A prompt such as "a watercolor painting with soft blue washes" sets a direction in
CLIP's joint embedding space: CLIP_text(prompt) − CLIP_text(source), the source
being "a photo".  The stylized image should move away from its photo along it:
CLIP_image(stylized) − CLIP_image(photo) should point the same way — on the whole
image (``direction``) and on random, perspective-warped patches (``patch``), which
spreads the texture over the image instead of painting one object the prompt names.

CLIP comes from open_clip, an optional extra (``pip install -e '.[clip]'``); its
weights are a local file (``--clip-weights``) or an open_clip pretrained tag that
downloads from the model hub (``--clip-pretrained``).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cin_style.config import ClipConfig
from cin_style.errors import CinStyleError, first_line, install_hint

# CLIPstyler averages the prompt over templates like these (ImageNet zero-shot style):
# one phrasing alone makes the direction depend on its wording.
TEMPLATES = ("{}.", "a rendering of {}.", "an image of {}.", "a picture of {}.", "a rendition of {}.", "art of {}.")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipUnavailable(CinStyleError, RuntimeError):
    """CLIP cannot be loaded as asked; the message says what to pass or install."""


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise ClipUnavailable(
            f"text styles need the CLIP install (open_clip is missing): {install_hint('clip')}"
        ) from None
    return open_clip


def load_clip(config: ClipConfig, device: torch.device | str = "cpu") -> tuple[nn.Module, object]:
    """(frozen CLIP model in eval mode, tokenizer).  Weights from ``config.weights`` (loaded
    as tensors only: safetensors or ``torch.load(weights_only=True)``) or from open_clip's
    ``config.pretrained`` tag; with neither, one line says what to pass."""
    open_clip = _open_clip()
    if config.model not in open_clip.list_models():
        raise ClipUnavailable(
            f"unknown CLIP model {config.model!r}; open_clip knows e.g. ViT-B-32, "
            f"ViT-B-16, ViT-L-14 (open_clip.list_models())"
        )
    if not config.weights and not config.pretrained:
        raise ClipUnavailable(
            f"text styles need CLIP weights: pass --clip-weights FILE (an open_clip "
            f"or OpenAI {config.model} checkpoint) or --clip-pretrained TAG (e.g. "
            f"openai, which downloads from the model hub)"
        )
    if config.weights and not Path(config.weights).is_file():
        raise ClipUnavailable(f"CLIP weights not found: {config.weights}")
    try:
        model = open_clip.create_model(
            config.model, pretrained=config.weights or config.pretrained, device=device, weights_only=True
        )
    except pickle.UnpicklingError:  # objects beyond tensors: refused, never run
        raise ClipUnavailable(
            f"could not load CLIP {config.model} from {config.weights}: it holds "
            f"more than tensors (only state dicts and .safetensors load)"
        ) from None
    except (RuntimeError, ValueError, KeyError, OSError, *_safetensors_errors()) as exc:  # another model's, a bad file
        raise ClipUnavailable(
            f"could not load CLIP {config.model} from {config.weights or config.pretrained}: {first_line(exc)}"
        ) from None
    model.eval().requires_grad_(False)
    return model, open_clip.get_tokenizer(config.model)


def _safetensors_errors() -> tuple[type[Exception], ...]:
    """safetensors' own error (a .safetensors file that is not one), where it is installed."""
    try:
        from safetensors import SafetensorError
    except ImportError:
        return ()
    return (SafetensorError,)


def _image_size(model: nn.Module) -> tuple[int, int]:
    size = getattr(model.visual, "image_size", 224)
    return (size, size) if isinstance(size, int) else tuple(size)


class ClipDirectionLoss(nn.Module):
    """``forward(output, content, rows)`` → ``{"direction", "patch"}`` (unweighted means).

    ``prompts`` holds one entry per model style row: its prompt, or None for a
    painting; ``rows`` [N] says which row each sample trains (text rows only).
    Both images are [N, 3, H, W] in [0, 1].
    """

    def __init__(self, model: nn.Module, tokenizer, config: ClipConfig, prompts: Sequence[str | None]):
        super().__init__()
        if not any(prompts):
            raise ValueError("ClipDirectionLoss needs at least one text prompt")
        self.model, self.config = model, config
        self.size = _image_size(model)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1))
        with torch.no_grad():
            source = self._text(tokenizer, config.source_text)
            rows = [self._text(tokenizer, p) - source if p else torch.zeros_like(source) for p in prompts]
        # Unit text directions, one row per style (zeros for paintings).
        self.register_buffer("directions", F.normalize(torch.stack(rows), dim=-1, eps=1e-12))

    def _text(self, tokenizer, prompt: str) -> torch.Tensor:
        tokens = tokenizer([t.format(prompt) for t in TEMPLATES])
        device = next(self.model.parameters()).device
        features = F.normalize(self.model.encode_text(tokens.to(device)).float(), dim=-1)
        return F.normalize(features.mean(dim=0), dim=-1)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        images = F.interpolate(images.float(), size=self.size, mode="bicubic", align_corners=False)
        images = (images - self.mean) / self.std
        return F.normalize(self.model.encode_image(images).float(), dim=-1)

    def _patches(self, output: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``patches`` random crops per image, each with a random perspective warp
        (CLIPstyler's augmentation); returns the crops and the image each came from."""
        n, _, h, w = output.shape
        side = max(8, int(min(h, w) * self.config.patch_fraction))
        count = self.config.patches
        tops = torch.randint(h - side + 1, (n, count), generator=generator)
        lefts = torch.randint(w - side + 1, (n, count), generator=generator)
        crops = torch.stack(
            [
                output[i, :, t : t + side, x : x + side]
                for i in range(n)
                for t, x in zip(tops[i].tolist(), lefts[i].tolist())
            ]
        )
        # A random perspective: the unit square's corners each moved by up to 25 %.
        corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
        moved = corners + (torch.rand(len(crops), 4, 2, generator=generator) - 0.5) * 0.5
        grid = _perspective_grid(corners.expand(len(crops), 4, 2), moved, side).to(output.device)
        warped = F.grid_sample(crops.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return warped, torch.arange(n).repeat_interleave(count)

    def forward(
        self, output: torch.Tensor, content: torch.Tensor, rows: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        if output.shape != content.shape or output.dim() != 4:
            raise ValueError(
                f"output {list(output.shape)} and content {list(content.shape)} must be the same [N, 3, H, W]"
            )
        text = self.directions[rows.to(self.directions.device)]  # [N, D]
        with torch.no_grad():
            photo = self._encode(content)  # [N, D]
        image = self._encode(output)
        direction = (1 - F.cosine_similarity(image - photo, text, dim=-1)).mean()
        patch = output.new_zeros((), dtype=torch.float32)
        if self.config.patches > 0:
            crops, owner = self._patches(output, generator)
            owner = owner.to(output.device)
            shift = self._encode(crops) - photo[owner]
            losses = 1 - F.cosine_similarity(shift, text[owner], dim=-1)
            # Rejection: patches already close to the direction add nothing.
            kept = losses * (losses.detach() >= self.config.threshold)
            patch = kept.mean()
        return {"direction": direction, "patch": patch}

    def weighted(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.config.direction_weight * parts["direction"] + self.config.patch_weight * parts["patch"]


def _perspective_grid(src: torch.Tensor, dst: torch.Tensor, side: int) -> torch.Tensor:
    """Sampling grid [B, side, side, 2] of the homography taking ``dst`` corners to ``src``
    (normalised coordinates): the output shows the crop seen through a tilted frame."""
    b = src.shape[0]
    rows = []
    for k in range(4):
        x, y = dst[:, k, 0], dst[:, k, 1]
        u, v = src[:, k, 0], src[:, k, 1]
        zero, one = torch.zeros_like(x), torch.ones_like(x)
        rows.append(torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y], -1))
        rows.append(torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y], -1))
    a = torch.stack(rows, 1)  # [B, 8, 8]
    rhs = src.reshape(b, 8)
    h = torch.linalg.solve(a, rhs)
    h = torch.cat([h, torch.ones(b, 1)], 1).view(b, 3, 3)
    lin = (torch.arange(side, dtype=torch.float32) + 0.5) / side * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    points = torch.stack([xx, yy, torch.ones_like(xx)], -1).view(1, -1, 3)  # [1, P, 3]
    mapped = points @ h.transpose(1, 2)  # [B, P, 3]
    grid = mapped[..., :2] / mapped[..., 2:].clamp_min(1e-6)
    return grid.view(b, side, side, 2)
