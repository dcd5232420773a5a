"""Multi-style training runs: ``train`` (a network for N styles at once) and
``add_styles`` (grow a trained model by new styles, training only their rows).

Every sample of a batch draws its own style, so a single run learns all styles at
once; the styles differ only in their CIN γ/β rows (Dumoulin et al. 2017).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from cin_style.config import ADD_STYLE_LR, ADD_STYLE_STEPS, ClipConfig, TrainConfig
from cin_style.data.photos import ContentImages, center_crops
from cin_style.data.styles import StyleSpec, load_style_image, parse_style_inputs
from cin_style.errors import DataError, UsageError
from cin_style.io.image import is_image_source
from cin_style.losses.perceptual import PerceptualLoss
from cin_style.nn import checkpoint as ckpt
from cin_style.nn.devices import pick_device
from cin_style.nn.stylenet import StyleNet
from cin_style.nn.vgg import build_encoder
from cin_style.train import distributed
from cin_style.train.distill import load_teacher
from cin_style.train.objectives import Distill, Objective, Perceptual, Stability
from cin_style.train.trainer import Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    """How to run a training, as opposed to what to train (``TrainConfig``, which the
    checkpoint keeps): none of these change the weights a run arrives at."""

    device: str = "auto"
    vgg_weights: str | Path | None = None  # the loss network's weights file (else resolved)
    encoder: nn.Module | None = None  # a ready loss network instead (tests pass a random one)
    samples: bool = True  # write a sample grid every sample_every steps into OUT_samples/
    time_budget: float | None = None  # seconds; stop with a checkpoint written (--max-seconds)
    validation: str | Path | None = None  # photos scored at every checkpoint
    overwrite: bool = False  # a new run may replace an existing file at ``out``


@dataclass
class StyleRows:
    """What a run trains: the style rows ``trained`` of ``model`` (``specs`` their sources,
    in order), moving ``params``, and what the checkpoint records about every style."""

    model: StyleNet
    names: list[str]
    specs: Sequence[StyleSpec]
    trained: list[int]
    params: list[nn.Parameter]
    style_paths: list[str]
    prompts: dict[str, str] = field(default_factory=dict)
    after_step: Callable[[], None] = lambda: None
    teacher: StyleNet | None = None

    @classmethod
    def all_styles(cls, model: StyleNet, specs: Sequence[StyleSpec], teacher: StyleNet | None = None) -> StyleRows:
        """Every row of a new model, one per spec, all its parameters moving."""
        return cls(
            model,
            [s.name for s in specs],
            specs,
            list(range(len(specs))),
            list(model.parameters()),
            [s.source for s in specs],
            {s.name: s.text for s in specs if s.text is not None},
            teacher=teacher,
        )


@dataclass
class TrainResult:
    model: StyleNet
    style_names: list[str]
    step: int
    checkpoint: Path
    history: list[dict]
    samples: list[Path]
    skipped: str | None
    seconds: float
    images_per_second: float


def style_grams(
    loss_fn: PerceptualLoss, rows: StyleRows, config: TrainConfig, device: torch.device, autocast
) -> dict[str, torch.Tensor]:
    """One Gram row per model style; styles not being trained (or given in words) stay zero."""
    painted = [(s, i) for s, i in zip(rows.specs, rows.trained) if s.text is None]
    if not painted:
        return {}
    images = [load_style_image(s.path, config.style_size).to(device) for s, _ in painted]
    with autocast():
        grams = loss_fn.style_targets(images)
    tables = {}
    for name, value in grams.items():
        table = torch.zeros(len(rows.names), *value.shape[1:], device=device)
        table[[i for _, i in painted]] = value.float()
        tables[name] = table
    return tables


def build_trainer(
    rows: StyleRows,
    content: ContentImages,
    config: TrainConfig,
    device: torch.device,
    encoder: nn.Module,
    **trainer_options,
) -> Trainer:
    """The objectives ``config`` asks for, around the rows being trained."""
    loss_fn = PerceptualLoss(encoder, config.loss).to(device)
    clip, text_rows = None, None
    if any(s.text is not None for s in rows.specs) and config.distill is None:
        from cin_style.losses.clip import ClipDirectionLoss, load_clip

        clip_config = config.clip or ClipConfig()
        clip_model, tokenizer = load_clip(clip_config, device)
        prompts: list[str | None] = [None] * len(rows.names)
        for spec, index in zip(rows.specs, rows.trained):
            prompts[index] = spec.text
        clip = ClipDirectionLoss(clip_model, tokenizer, clip_config, prompts).to(device)
        text_rows = torch.tensor([p is not None for p in prompts])
    teacher = rows.teacher.to(device) if rows.teacher is not None else None
    scorer = Perceptual(loss_fn, {}, clip, text_rows, torch.Generator().manual_seed(config.seed + 2))
    objective: Objective = scorer
    if config.distill is not None:
        if teacher is None:
            raise ValueError("a distillation config needs the teacher model")
        objective = Distill(teacher, loss_fn.encoder, list(config.loss.content_layers), config.distill)
    if config.stability_weight > 0:
        objective = Stability(objective, config.stability_weight)
    trainer = Trainer(
        rows.model,
        rows.names,
        rows.trained,
        content,
        objective,
        scorer,
        config,
        device,
        rows.params,
        teacher=teacher,
        **trainer_options,
    )
    # The Gram targets come last: the trainer puts the loss network in channels-last, and
    # its autocast sets the precision they are computed at.
    scorer.grams.update(style_grams(loss_fn, rows, config, device, trainer.autocast))
    return trainer


def run_rows(
    rows: StyleRows,
    content: str | Path,
    out: Path,
    config: TrainConfig,
    options: RunOptions,
    resumed: dict | None = None,
) -> TrainResult:
    """The run set-up ``train`` and ``add_styles`` share: device, loss network, data,
    checkpoints, samples, validation, the loop and its result."""
    dev = distributed.device_for(pick_device(options.device))
    distributed.join(dev)
    rows.model.to(dev)
    encoder = options.encoder or build_encoder(config.loss.encoder, config.loss.layers, options.vgg_weights)
    data = ContentImages(content, config.image_size, photo_size=config.photo_size)
    trainer = build_trainer(rows, data, config, dev, encoder)
    if resumed is not None:
        trainer.restore(resumed)
        log.info(f"resuming from step {trainer.step} of {config.steps}")
    sample_dir = out.with_name(out.stem + "_samples") if options.samples else None
    extra = {"content": str(content), "style_paths": rows.style_paths, "style_prompts": rows.prompts}
    val_photos = (
        center_crops(options.validation, config.image_size, config.photo_size)
        if options.validation is not None
        else None
    )
    try:
        fit = trainer.fit(
            out,
            time_budget=options.time_budget,
            sample_dir=sample_dir,
            extra_state=extra,
            after_step=rows.after_step,
            validation=val_photos,
        )
    finally:
        # Close the process group before the interpreter exits: gloo's threads would
        # otherwise abort the process (SIGABRT) at exit.
        distributed.leave()
    report = data.skipped_report()
    if report:
        log.info(report)
    rows.model.eval()
    return TrainResult(
        rows.model.cpu(),
        rows.names,
        trainer.step,
        out,
        trainer.history,
        fit.samples,
        report,
        fit.seconds,
        fit.steps * config.batch_size / max(fit.seconds, 1e-9),
    )


def _options(options: RunOptions | None, overrides: dict) -> RunOptions:
    return replace(options or RunOptions(), **overrides)


def train(
    styles: Sequence[str | Path],
    content: str | Path,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    options: RunOptions | None = None,
    **run_options,
) -> TrainResult:
    """Train a multi-style network; write checkpoints to ``out``.

    ``options`` (or the same names as keywords: device, vgg_weights, encoder, samples,
    time_budget, validation) say how to run it (``RunOptions``).  ``validation`` photos
    are scored at every checkpoint and kept in it.  With ``resume`` the run continues
    from ``out`` exactly where it stopped; the checkpoint's training config is used,
    except that ``config.steps`` may extend the run.

    With ``config.distill`` the network learns to reproduce a teacher model with the
    same styles instead of minimising the perceptual loss; validation still scores the
    perceptual loss, so student and teacher compare.
    """
    run = _options(options, run_options)
    out = Path(out)
    config = config or TrainConfig()
    specs = parse_style_inputs(styles)
    names = [s.name for s in specs]
    resumed = None
    if out.exists() and not resume and not run.overwrite:
        raise UsageError(f"{out} exists: --resume continues the run saved there, --overwrite replaces it")
    if resume:
        resumed = _resumable(out, names)
        config = TrainConfig.from_dict(
            {**resumed["train_config"], "steps": config.steps}, network=resumed["model_config"]
        )
    teacher = None
    if config.distill is not None:
        teacher, digest = load_teacher(config.distill, names)
        config = replace(config, distill=replace(config.distill, teacher_sha256=digest))
    torch.manual_seed(config.seed)
    model = StyleNet(replace(config.network, num_styles=len(specs)))
    if resumed is not None:
        model, _ = ckpt.model_from_checkpoint(resumed, str(out))
    elif config.init_from is not None:
        model, config = _start_from(config, names)
    return run_rows(StyleRows.all_styles(model, specs, teacher), content, out, config, run, resumed)


def _resumable(out: Path, names: list[str]) -> dict:
    if not out.is_file():
        raise ckpt.CheckpointError(f"--resume: no checkpoint at {out} to resume from")
    resumed = ckpt.load_checkpoint(out)
    if "optimizer" not in resumed:
        raise ckpt.CheckpointError(f"{out}: holds no training state to resume from")
    step, rng = resumed.get("step"), resumed.get("rng")
    if not isinstance(step, int) or step < 0 or not isinstance(rng, dict) or not isinstance(resumed["optimizer"], dict):
        raise ckpt.CheckpointError(f"{out}: its training state is damaged (step {step!r}); it cannot be resumed")
    if list(resumed["style_names"]) != names:
        raise ckpt.CheckpointError(f"{out} was trained on styles {resumed['style_names']}, not {names}")
    return resumed


def _start_from(config: TrainConfig, names: list[str]) -> tuple[StyleNet, TrainConfig]:
    """The model ``config.init_from`` names (a file or a bundled model's name) as the
    starting weights, and the config with its network shape and file hash."""
    model, digest = ckpt.load_model_to_build_on(config.init_from, names, "--init-from")
    log.info(f"starting from the weights of {config.init_from}")
    return model, replace(config, network=model.config, init_sha256=digest)


def add_styles(
    model_path: str | Path,
    new_styles: Sequence[str | Path],
    content: str | Path | None = None,
    out: str | Path | None = None,
    *,
    steps: int = ADD_STYLE_STEPS,
    lr: float = ADD_STYLE_LR,
    clip: ClipConfig | None = None,
    style_size: int | None = None,
    options: RunOptions | None = None,
    **run_options,
) -> TrainResult:
    """Grow a trained model by ``new_styles``, training only their new γ/β rows
    with the model's own training recipe (crop size, loss, precision); ``style_size``
    reads the new paintings at another size than the model's (larger: larger strokes).
    ``clip`` says where CLIP comes from for new styles given in words; ``content``
    defaults to the photos the model was trained on, where they still are.

    Everything else is frozen and the old rows are restored after every step,
    so the old styles' outputs stay bit-identical.
    """
    run = _options(options, run_options)
    model_path = Path(model_path)
    out = Path(out) if out else model_path
    data = ckpt.load_checkpoint(model_path)
    if content is None:
        content = data.get("content")
        if not content or not is_image_source(content):
            raise UsageError("pass --content DIR (the model's training photos are not available)")
    model, names = ckpt.model_from_checkpoint(data, str(model_path))
    specs = parse_style_inputs(new_styles)
    clash = [s.name for s in specs if s.name in names]
    if clash:
        raise DataError(f"the model already has style(s) {clash}; rename with NAME=PATH")
    # New rows learn from the paintings with the perceptual loss, also in a distilled model
    # (its teacher does not have the new styles).
    config = replace(
        TrainConfig.from_dict(data.get("train_config", {}), network=data["model_config"]),
        steps=steps,
        lr=lr,
        lr_schedule="constant",
        distill=None,
    )
    if clip is not None:
        config = replace(config, clip=clip)
    if style_size is not None:
        config = replace(config, style_size=style_size)
    old_count = model.num_styles
    model.add_styles(len(specs))
    model.requires_grad_(False)
    params = []
    for norm in model.cin_layers():
        norm.gamma.requires_grad_(True)
        norm.beta.requires_grad_(True)
        params += [norm.gamma, norm.beta]
    frozen = [(p, p.detach()[:old_count].clone()) for p in params]

    def restore_old_rows():
        with torch.no_grad():
            for param, old in frozen:
                param[:old_count] = old.to(param.device)

    all_names = names + [s.name for s in specs]
    rows = StyleRows(
        model,
        all_names,
        specs,
        list(range(old_count, len(all_names))),
        params,
        list(data.get("style_paths", [])) + [s.source for s in specs],
        {**data.get("style_prompts", {}), **{s.name: s.text for s in specs if s.text is not None}},
        after_step=restore_old_rows,
    )
    return run_rows(rows, content, out, config, run)
