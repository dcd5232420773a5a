"""Every configuration: plain, frozen dataclasses that own their defaults and
their validation (a ConfigError names each bad value), live inside
checkpoints as dicts, and import nothing heavy — the CLI takes its option
defaults from them.  Change one with ``dataclasses.replace``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Self

from cin_style.errors import ConfigError
from cin_style.io.image import MIN_SIDE


def _known_fields(cls, data: dict) -> dict:
    """The entries of ``data`` that ``cls`` has fields for: checkpoints written by
    other versions may carry keys this one no longer (or does not yet) know."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


class _Stored:
    """What every config shares: a plain dict for checkpoints and back.  ``from_dict``
    takes only the keys the config knows (see ``_known_fields``)."""

    def to_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        return cls(**_known_fields(cls, data))


def _not_finite_nonnegative(config, *names: str) -> list[str]:
    """A problem line for each of the fields ``names`` that is not a finite number >= 0."""
    problems = []
    for name in names:
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and value >= 0 and math.isfinite(value)):
            problems.append(f"{name.replace('_', ' ')} must be a finite number >= 0 (got {value})")
    return problems


MAX_STYLES = 1024  # styles one network (and its graph's style_names) may hold
STYLENET_BOUNDS = (
    ("num_styles", 1, MAX_STYLES),
    ("base_width", 1, 1024),
    ("num_residual_blocks", 0, 64),
    ("outer_kernel", 1, 31),
)


@dataclass(frozen=True)
class StyleNetConfig(_Stored):
    """Shape of a style network.  Stored inside every checkpoint (``model_config``).
    A training config's ``network`` leaves ``num_styles`` to the trainer, which
    sets it from the styles it is given."""

    num_styles: int = 1
    base_width: int = 32  # channels after the first conv; 2x and 4x after the downsamples
    num_residual_blocks: int = 5
    outer_kernel: int = 9  # first and last conv (9x9 in Johnson et al.)

    def __post_init__(self) -> None:
        # Bounds far past any real network, checked before anything is built: a crafted
        # checkpoint's config could otherwise ask for millions of layers.
        for name, low, high in STYLENET_BOUNDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"{name} must be a whole number in [{low}, {high}], got {value!r}")
        if self.outer_kernel % 2 != 1:
            raise ConfigError(f"outer_kernel must be odd, got {self.outer_kernel}")


# Named network shapes (num_styles comes from the styles).  "lite": 14.9 k multiply-adds per
# pixel against the default's 153.8 k; 3x3 outer kernels and 12 full-resolution channels,
# because at this size the full-resolution layers' memory traffic, not their arithmetic,
# sets the speed (issue 15: the sizes were chosen by measured onnxruntime latency).
NETWORK_PRESETS = {
    "default": StyleNetConfig(),
    "lite": StyleNetConfig(base_width=12, num_residual_blocks=3, outer_kernel=3),
}


def network_preset(name: str = "default", **changes: int | None) -> StyleNetConfig:
    """A named network shape (``NETWORK_PRESETS``) with any of its fields replaced
    (``base_width=16``; a None value keeps the preset's)."""
    if name not in NETWORK_PRESETS:
        raise ConfigError(f"unknown network preset {name!r}; choose one of {', '.join(NETWORK_PRESETS)}")
    return replace(NETWORK_PRESETS[name], **{k: v for k, v in changes.items() if v is not None})


@dataclass(frozen=True)
class DistillConfig(_Stored):
    """Training a (smaller) network to reproduce a trained one: the student learns the
    teacher's output for each style and for random two-style blends, so a step needs the
    teacher's forward pass instead of the loss network's forward and backward.

    loss = pixel_weight · MSE(student, teacher)
         + feature_weight · MSE of their loss-network features at the content layers
    """

    teacher: str  # the teacher checkpoint, as given (its weights are not copied)
    teacher_sha256: str = ""  # filled in at the start; a resume refuses a changed teacher
    blend_share: float = 0.5  # samples drawn as a random two-style blend instead of one style
    pixel_weight: float = 1.0
    feature_weight: float = 0.01

    def __post_init__(self) -> None:
        problems = []
        if not self.teacher:
            problems.append("distillation needs a teacher model")
        if not 0 <= self.blend_share <= 1:
            problems.append(f"blend share must be in [0, 1] (got {self.blend_share})")
        problems += _not_finite_nonnegative(self, "pixel_weight", "feature_weight")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class ClipConfig(_Stored):
    """CLIP for styles described in words: CLIPstyler's directional loss (Kwon & Ye 2022).

    The text direction is CLIP(prompt) − CLIP(source_text); the image direction is
    CLIP(stylized) − CLIP(photo), on the whole image and on random augmented patches.
    The weights keep CLIPstyler's ratios to its content weight (direction 500 : patch
    9000 : content 150), scaled to this project's content weight of 1.  Patches whose
    loss is already under ``threshold`` are left out (CLIPstyler's rejection), so a few
    easy patches cannot satisfy the loss.
    """

    model: str = "ViT-B-32"  # an open_clip architecture name
    weights: str | None = None  # a local checkpoint file (state dict or .safetensors)
    pretrained: str | None = None  # or an open_clip pretrained tag (downloads from the hub)
    source_text: str = "a photo"
    direction_weight: float = 3.3
    patch_weight: float = 60.0
    patches: int = 16  # random patches per image and step
    patch_fraction: float = 0.25  # patch side as a fraction of the image's short side
    threshold: float = 0.7

    def __post_init__(self) -> None:
        problems = []
        if self.weights and self.pretrained:
            problems.append("give --clip-weights or --clip-pretrained, not both")
        problems += _not_finite_nonnegative(self, "direction_weight", "patch_weight")
        if self.patches < 0:
            problems.append(f"patches must be >= 0 (got {self.patches})")
        if not 0 < self.patch_fraction <= 1:
            problems.append(f"patch fraction must be in (0, 1] (got {self.patch_fraction})")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass(frozen=True)
class LossConfig(_Stored):
    """Which VGG layers and weights make up the perceptual loss.

    Defaults start from Johnson et al. 2016 (VGG16; content relu2_2; style
    relu1_2, relu2_2, relu3_3, relu4_3), with the style/content balance and
    per-layer weights retuned for Gram matrices normalised by C·H·W and
    images in [0, 1] (see README).
    """

    encoder: str = "vgg16"
    content_layers: dict[str, float] = field(default_factory=lambda: {"relu2_2": 1.0})
    style_layers: dict[str, float] = field(
        default_factory=lambda: {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}
    )
    content_weight: float = 1.0
    style_weight: float = 1e5
    tv_weight: float = 1e-2

    def __post_init__(self) -> None:
        problems = []
        if self.encoder not in ("vgg16", "vgg19"):
            problems.append(f"encoder must be vgg16 or vgg19 (got {self.encoder!r})")
        problems += _not_finite_nonnegative(self, "content_weight", "style_weight", "tv_weight")
        for kind in ("content", "style"):
            layers = getattr(self, f"{kind}_layers")
            if not layers:
                problems.append(f"the {kind} loss needs at least one layer")
            bad = {n: w for n, w in layers.items() if not (w >= 0 and math.isfinite(w))}
            if bad:
                problems.append(f"{kind} layer weights must be finite numbers >= 0 (got {bad})")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([*self.content_layers, *self.style_layers]))


@dataclass(frozen=True)
class TrainConfig(_Stored):
    """Everything that decides a training run.  Stored in every checkpoint."""

    steps: int = 4000
    batch_size: int = 4
    image_size: int = 256
    photo_size: int | None = None  # photos' short side before cropping; None: image_size
    style_size: int | None = 384
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" or "cosine" (decays to 1% of lr at `steps`)
    grad_clip: float | None = None  # max global gradient norm; None disables clipping
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 500
    # The network's shape (its num_styles comes from the styles).  Checkpoints keep
    # it once, as their model_config, not again inside train_config.
    network: StyleNetConfig = field(default_factory=StyleNetConfig)
    # "bf16": autocast the network and the loss network to bfloat16 (statistics,
    # Grams and losses stay float32); "auto": bf16 on CUDA, fp32 on the CPU.
    # CPUs with AVX512-BF16/AMX run a bf16 step faster: `cin-style bench train` measures it.
    precision: str = "auto"
    loss: LossConfig = field(default_factory=LossConfig)
    # Video stability (Gupta et al. 2017, ReCoNet): penalise the difference between the
    # output for a slightly shifted, zoomed and noisy copy of a crop and the same shift and
    # zoom of the crop's output.  0 disables it (and draws no random numbers for it).
    stability_weight: float = 0.0
    # Distillation from a teacher model in place of the perceptual loss (validation still
    # scores the perceptual loss, so student and teacher compare); None: plain training.
    distill: DistillConfig | None = None
    # The CLIP model for styles given as text ("text:a watercolor painting"); None
    # when every style is a painting.
    clip: ClipConfig | None = None
    # Start from this trained model's weights (same styles; its network shape) with a
    # fresh optimizer and schedule: fine-tuning, or a decaying tail for a constant-rate
    # run.  ``init_sha256`` records which file it was (set when the run starts).
    init_from: str | None = None
    init_sha256: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.loss, dict):  # from a checkpoint
            object.__setattr__(self, "loss", LossConfig.from_dict(self.loss))
        if isinstance(self.distill, dict):
            object.__setattr__(self, "distill", DistillConfig.from_dict(self.distill))
        if isinstance(self.clip, dict):
            object.__setattr__(self, "clip", ClipConfig.from_dict(self.clip))
        if isinstance(self.network, dict):
            object.__setattr__(self, "network", StyleNetConfig.from_dict(self.network))
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be >= 1 (got {self.steps})")
        if self.batch_size < 1:
            problems.append(f"batch size must be >= 1 (got {self.batch_size})")
        if self.image_size < MIN_SIDE:
            problems.append(f"image size must be >= {MIN_SIDE} (got {self.image_size})")
        if self.photo_size is not None and self.photo_size < self.image_size:
            problems.append(f"photo size must be >= image size (got {self.photo_size} < {self.image_size})")
        if self.style_size is not None and self.style_size < MIN_SIDE:
            problems.append(f"style size must be >= {MIN_SIDE} (got {self.style_size})")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append(f"learning rate must be > 0 (got {self.lr})")
        if self.precision not in ("auto", "fp32", "bf16"):
            problems.append(f"precision must be auto, fp32 or bf16 (got {self.precision!r})")
        if self.lr_schedule not in ("constant", "cosine"):
            problems.append(f"lr schedule must be constant or cosine (got {self.lr_schedule!r})")
        problems += _not_finite_nonnegative(self, "stability_weight")
        if self.grad_clip is not None and not self.grad_clip > 0:
            problems.append(f"grad clip must be > 0 (got {self.grad_clip})")
        if self.checkpoint_every < 1 or self.sample_every < 1:
            problems.append("checkpoint and sample intervals must be >= 1")
        if problems:
            raise ConfigError("; ".join(problems))

    def checkpoint_dict(self) -> dict:
        """What a checkpoint's ``train_config`` holds: all but the network shape,
        which is its ``model_config``."""
        data = self.to_dict()
        del data["network"]
        return data

    @classmethod
    def from_dict(cls, data: dict, network: dict | None = None) -> TrainConfig:
        """From ``to_dict`` output, or from a checkpoint's ``train_config`` with its
        ``model_config`` as ``network`` (checkpoints before 0.2 kept base_width and
        residual_blocks in train_config; they are read too)."""
        if network is None and "network" not in data and "base_width" in data:
            network = {"base_width": data["base_width"], "num_residual_blocks": data.get("residual_blocks", 5)}
        if network is not None:
            data = {**data, "network": network}
        return super().from_dict(data)


# add-style trains only the new styles' γ/β rows (nothing else moves), so a
# higher rate than a full run's is safe and converges in fewer steps.
ADD_STYLE_STEPS = 1000
ADD_STYLE_LR = 1e-2


def gatys_loss_config() -> LossConfig:
    """Gatys et al.: VGG19, content conv4_2, style conv1_1 … conv5_1 (equal weights)."""
    return LossConfig(
        encoder="vgg19",
        content_layers={"conv4_2": 1.0},
        style_layers={f"conv{i}_1": 1.0 for i in range(1, 6)},
        content_weight=1.0,
        style_weight=3e5,
        tv_weight=30.0,
    )


@dataclass(frozen=True)
class OptimizeConfig(_Stored):
    size: int = 512  # long side of the result (px)
    steps: int = 60  # iterations at the final size; coarser levels get twice as many
    scales: int = 1  # coarse-to-fine levels (1 = full size only)
    optimizer: str = "lbfgs"  # or "adam"
    lr: float | None = None  # default: 1.0 for L-BFGS, 0.02 for Adam
    init: str = "content"  # or "noise"
    seed: int = 0
    preserve_color: bool = False
    loss: LossConfig = field(default_factory=gatys_loss_config)
    # A style in words (CLIPstyler's directional loss, beside or instead of the paintings' Grams).
    text: str | None = None
    clip: ClipConfig = field(default_factory=ClipConfig)

    def __post_init__(self) -> None:
        if isinstance(self.loss, dict):
            object.__setattr__(self, "loss", LossConfig.from_dict(self.loss))
        if isinstance(self.clip, dict):
            object.__setattr__(self, "clip", ClipConfig.from_dict(self.clip))
        if self.text is not None and not self.text.strip():
            raise ConfigError("--text needs a description of the style")
        if self.text and self.optimizer == "lbfgs":
            raise ConfigError(
                "--text needs --optimizer adam: the CLIP patch loss draws new patches at "
                "every step, which L-BFGS's line search cannot follow"
            )
        if self.size < 32:
            raise ConfigError(f"size must be at least 32 px, got {self.size}")
        if self.steps < 1 or self.scales < 1:
            raise ConfigError("steps and scales must be >= 1")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ConfigError(f"optimizer must be lbfgs or adam, got {self.optimizer!r}")
        if self.init not in ("content", "noise"):
            raise ConfigError(f"init must be content or noise, got {self.init!r}")
