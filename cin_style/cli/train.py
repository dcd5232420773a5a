"""`cin-style train`."""

from __future__ import annotations

import click

from cin_style.cli.options import (
    clip_for_styles,
    clip_options,
    device_option,
    loss_config,
    loss_options,
    nproc_option,
    quiet_option,
    relaunch,
    secondary_rank,
    vgg_weights_option,
)
from cin_style.config import NETWORK_PRESETS, DistillConfig, TrainConfig

TRAIN_DEFAULTS = TrainConfig()


@click.command()
@click.option(
    "--styles",
    "styles",
    multiple=True,
    required=True,
    metavar="DIR|FILE|NAME=FILE|text:PROMPT",
    help="Style paintings: a folder, files, or NAME=FILE. Repeat for more. "
    "Names default to file stems. 'text:PROMPT' (or NAME=text:PROMPT) is a style in "
    "words, learned with CLIP (needs cin-style[clip] and --clip-weights).",
)
@click.option(
    "--content",
    type=click.Path(),
    required=True,
    help="Training photos: a folder (searched recursively; jpg/png/webp) or a .txt "
    "list of image paths, one per line, relative to the list.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    required=True,
    help="Checkpoint to write (also the model file for stylize/export).",
)
@click.option("--steps", type=int, default=TRAIN_DEFAULTS.steps, show_default=True, help="Optimizer steps in total.")
@click.option("--batch-size", type=int, default=TRAIN_DEFAULTS.batch_size, show_default=True)
@click.option(
    "--image-size", type=int, default=TRAIN_DEFAULTS.image_size, show_default=True, help="Training crop size (px)."
)
@click.option(
    "--photo-size",
    type=int,
    default=TRAIN_DEFAULTS.photo_size,
    help="Scale photos to this short side before cropping (default: --image-size). "
    "Crops smaller than the photo train at a real-use scale for less compute.",
)
@click.option(
    "--style-size",
    type=int,
    default=TRAIN_DEFAULTS.style_size,
    show_default=True,
    help="Long side the style images are scaled to before taking Gram matrices.",
)
@click.option("--lr", type=float, default=TRAIN_DEFAULTS.lr, show_default=True, help="Adam learning rate.")
@click.option(
    "--lr-schedule",
    type=click.Choice(["constant", "cosine"]),
    default=TRAIN_DEFAULTS.lr_schedule,
    show_default=True,
    help="cosine decays to 1% of --lr by the last step.",
)
@click.option(
    "--grad-clip",
    type=float,
    default=TRAIN_DEFAULTS.grad_clip,
    help="Clip the global gradient norm to this value (steadies unstable runs).",
)
@loss_options(TRAIN_DEFAULTS.loss)
@click.option(
    "--net",
    "net_preset",
    type=click.Choice(list(NETWORK_PRESETS)),
    default="default",
    show_default=True,
    help="Network shape: default (Johnson et al., 153.8 k multiply-adds per pixel) or lite "
    "(14.9 k: a tenth of the arithmetic). The three options below "
    "change one part of it.",
)
@click.option(
    "--base-width",
    type=click.IntRange(min=1),
    default=None,
    help="Channels of the first conv (x2, x4 deeper).  [default: 32; lite 12]",
)
@click.option(
    "--residual-blocks",
    type=click.IntRange(min=0),
    default=None,
    help="Residual blocks at quarter resolution.  [default: 5; lite 3]",
)
@click.option(
    "--outer-kernel", type=int, default=None, help="Kernel of the first and last conv (odd).  [default: 9; lite 3]"
)
@click.option(
    "--teacher",
    default=None,
    metavar="MODEL.pt|bundled",
    help="Distill: learn to reproduce this trained model (same --styles, same order) "
    "for each style and random two-style blends, instead of the perceptual loss. "
    "'bundled' is the bundled reference model. Validation still scores the "
    "perceptual loss.",
)
@click.option(
    "--blend-share",
    type=click.FloatRange(0, 1),
    default=DistillConfig.blend_share,
    show_default=True,
    help="With --teacher: share of samples drawn as a random two-style blend.",
)
@click.option(
    "--feature-weight",
    type=click.FloatRange(min=0),
    default=DistillConfig.feature_weight,
    show_default=True,
    help="With --teacher: weight of the feature (content-layer) error beside the pixel error.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default=TRAIN_DEFAULTS.precision,
    show_default=True,
    help="bf16 autocast (Grams, norms and losses stay fp32); auto = bf16 on CUDA, fp32 on "
    "the CPU. CPUs with AVX512-BF16/AMX train faster in bf16 (measure it: bench train).",
)
@click.option(
    "--stability-weight",
    type=click.FloatRange(min=0),
    default=TRAIN_DEFAULTS.stability_weight,
    show_default=True,
    help="Train for video: penalise output changes under small shifts, zooms and noise of "
    "the same photo (synthetic camera motion), so frames flicker less. Try 1e3-1e4.",
)
@click.option("--seed", type=int, default=TRAIN_DEFAULTS.seed, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out exactly where it stopped.")
@click.option("--overwrite", is_flag=True, help="Start a new run although --out exists (its file is replaced).")
@click.option(
    "--init-from",
    default=None,
    metavar="MODEL.pt|lite|reference",
    help="Start a new run from this trained model's weights (same --styles in the same "
    "order; its network shape) with a fresh optimizer and schedule: fine-tune it, or "
    "give a constant-rate run a decaying tail with --lr-schedule cosine.",
)
@click.option(
    "--validation",
    type=click.Path(),
    default=None,
    metavar="DIR|LIST.txt",
    help="Photos training never sees, scored at every checkpoint (loss parts and each "
    "style's loss, logged and kept in the checkpoint): watch them plateau.",
)
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=1),
    default=None,
    metavar="S",
    help="Stop after S seconds of training with a checkpoint written (run long trainings "
    "in parts; --resume continues bit for bit). Ctrl-C also stops at a checkpoint.",
)
@click.option(
    "--checkpoint-every",
    type=int,
    default=TRAIN_DEFAULTS.checkpoint_every,
    show_default=True,
    metavar="K",
    help="Write the checkpoint every K steps (atomically; the previous one is kept as .prev).",
)
@click.option(
    "--sample-every",
    type=int,
    default=TRAIN_DEFAULTS.sample_every,
    show_default=True,
    help="Write a sample grid (a row per style) every this many steps.",
)
@nproc_option
@clip_options
@vgg_weights_option
@device_option
@quiet_option
def train(
    styles,
    content,
    out,
    steps,
    batch_size,
    image_size,
    photo_size,
    style_size,
    lr,
    lr_schedule,
    grad_clip,
    content_weight,
    style_weight,
    tv_weight,
    content_layers,
    style_layers,
    encoder,
    net_preset,
    base_width,
    residual_blocks,
    outer_kernel,
    teacher,
    blend_share,
    feature_weight,
    precision,
    stability_weight,
    seed,
    resume,
    overwrite,
    init_from,
    validation,
    max_seconds,
    checkpoint_every,
    sample_every,
    nproc,
    clip_model,
    clip_weights,
    clip_pretrained,
    vgg_weights,
    device,
):
    """Train one network on several styles at once.

    Each sample in a batch draws a style, so N styles train together. Losses
    and images/s show in the progress bar; samples go to OUT_samples/.

    \b
    Example:
      cin-style train --styles styles/ --content photos/ --out model.pt --steps 4000
      cin-style train ... --out model.pt --steps 8000 --resume   # continue to 8000
      cin-style train --styles S --content P --out lite.pt --net lite --teacher bundled
      cin-style train ... --out tail.pt --init-from run.pt --lr-schedule cosine --steps 3000
    """
    shaped = net_preset != "default" or any(v is not None for v in (base_width, residual_blocks, outer_kernel))
    if init_from is not None and (resume or shaped):
        raise click.UsageError(
            "--init-from starts a run and --resume continues one: resume a run begun with --init-from without it"
            if resume
            else "--init-from takes the network shape from its model: drop --net, --base-width, "
            "--residual-blocks and --outer-kernel"
        )
    if batch_size % nproc:
        raise click.BadParameter(
            f"--batch-size {batch_size} does not split over {nproc} processes; use a multiple of {nproc}"
        )
    relaunch(nproc)
    from cin_style.config import network_preset
    from cin_style.train import recipes
    from cin_style.train.distill import teacher_source

    config = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        image_size=image_size,
        photo_size=photo_size,
        style_size=style_size,
        lr=lr,
        lr_schedule=lr_schedule,
        grad_clip=grad_clip,
        seed=seed,
        checkpoint_every=checkpoint_every,
        sample_every=sample_every,
        precision=precision,
        stability_weight=stability_weight,
        network=network_preset(
            net_preset, base_width=base_width, num_residual_blocks=residual_blocks, outer_kernel=outer_kernel
        ),
        distill=(
            DistillConfig(teacher=teacher_source(teacher), blend_share=blend_share, feature_weight=feature_weight)
            if teacher
            else None
        ),
        clip=clip_for_styles(styles, clip_model, clip_weights, clip_pretrained),
        init_from=init_from,
        loss=loss_config(encoder, content_layers, style_layers, content_weight, style_weight, tv_weight),
    )
    options = recipes.RunOptions(
        device=device, vgg_weights=vgg_weights, time_budget=max_seconds, validation=validation, overwrite=overwrite
    )
    result = recipes.train(list(styles), content, out, config, resume=resume, options=options)
    if secondary_rank():
        return
    last = result.history[-1] if result.history else {}
    click.echo(
        f"wrote {result.checkpoint}: {len(result.style_names)} styles, step {result.step}, "
        f"loss {last.get('loss', float('nan')):.4g}, {result.images_per_second:.2f} img/s"
    )
