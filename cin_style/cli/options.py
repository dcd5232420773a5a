"""Options and small helpers shared by several commands.  Defaults come from the config
dataclasses; they are not restated here."""

from __future__ import annotations

import os
import sys

import click

from cin_style.config import ClipConfig, LossConfig
from cin_style.errors import ConfigError
from cin_style.infer.grain import DEFAULT_GRAIN, MAX_GRAIN
from cin_style.infer.runtimes import AUTO_RUNTIME, STYLIZE_RUNTIMES
from cin_style.infer.scale import AUTO_NETWORK_PIXELS, DEFAULT_STYLE_SCALE, MAX_STYLE_SCALE, check_style_scale
from cin_style.progress import configure_logging

CLIP_DEFAULTS = ClipConfig()


def secondary_rank() -> bool:
    """Whether torchrun started this process as a rank other than 0 (which speaks for the
    run).  From the environment: cin_style.train.distributed would import torch."""
    return int(os.environ.get("RANK", "0")) > 0


def relaunch(nproc: int) -> None:
    """Under --nproc N > 1: this same command on N processes through torchrun, then exit."""
    from cin_style.train.distributed import relaunch as relaunch_command

    status = relaunch_command(nproc, sys.argv[1:])
    if status is not None:
        sys.exit(status)


def _quiet(ctx, param, value):
    if value:
        configure_logging(quiet=True)


device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run; auto picks CUDA when available.",
)
runtime_option = click.option(
    "--runtime",
    type=click.Choice(list(STYLIZE_RUNTIMES)),
    default=AUTO_RUNTIME,
    show_default=True,
    help="What runs the model.  auto: the fastest installed: a bundled model runs as its ONNX "
    "graph; a graph runs on OpenVINO on the CPU where the openvino extra is installed (bf16 on "
    "CPUs that have it, several times faster), else onnxruntime (CUDA where available); a .pt "
    "checkpoint on PyTorch.  Name one to choose it (pytorch: a bundled model's checkpoint as "
    "before).  `cin-style bench sizes` compares them on this machine.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    expose_value=False,
    callback=_quiet,
    help="No progress bar or log lines (warnings and errors still show).",
)
vgg_weights_option = click.option(
    "--vgg-weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="Loss-network weights file (else $CIN_STYLE_VGG16_WEIGHTS, the cache, or a fetch).",
)
nproc_option = click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Train on N local processes with DistributedDataParallel (one per GPU; gloo on the CPU), "
    "launched through torchrun; --batch-size stays the global batch.  For several machines run "
    "torchrun yourself (README).",
)


def _apply(options, command):
    for option in reversed(options):
        command = option(command)
    return command


def clip_options(command):
    """Where CLIP comes from, for styles given in words; read back with ``clip_config``."""
    return _apply(
        [
            click.option(
                "--clip-model",
                default=CLIP_DEFAULTS.model,
                show_default=True,
                metavar="NAME",
                help="open_clip architecture of the CLIP weights (text styles).",
            ),
            click.option(
                "--clip-weights",
                type=click.Path(dir_okay=False),
                default=None,
                metavar="FILE",
                help="Local CLIP checkpoint for --clip-model (a state dict or .safetensors; loaded as tensors only).",
            ),
            click.option(
                "--clip-pretrained",
                default=None,
                metavar="TAG",
                help="Or an open_clip pretrained tag (e.g. openai, laion2b_s34b_b79k): downloads "
                "from the model hub on a machine that reaches it.",
            ),
        ],
        command,
    )


def clip_config(clip_model, clip_weights, clip_pretrained, **changes) -> ClipConfig:
    return ClipConfig(model=clip_model, weights=clip_weights, pretrained=clip_pretrained, **changes)


def _layers_text(layers: dict[str, float]) -> str:
    return ",".join(name if weight == 1 else f"{name}:{weight:g}" for name, weight in layers.items())


def loss_options(defaults: LossConfig):
    """--encoder, --content/--style-layers and the three loss weights, declared
    once for train and optimize; read back with ``loss_config(**kwargs)``."""
    options = [
        click.option(
            "--encoder",
            type=click.Choice(["vgg16", "vgg19"]),
            default=defaults.encoder,
            show_default=True,
            help="Loss network.",
        ),
        click.option(
            "--content-layers",
            default=_layers_text(defaults.content_layers),
            show_default=True,
            help="Comma list of VGG layers for the content loss, optionally NAME:WEIGHT.",
        ),
        click.option(
            "--style-layers",
            default=_layers_text(defaults.style_layers),
            show_default=True,
            help="Comma list of VGG layers for the style loss, optionally NAME:WEIGHT.",
        ),
        click.option(
            "--content-weight",
            type=float,
            default=defaults.content_weight,
            show_default=True,
            help="Raise to keep more of the photo.",
        ),
        click.option(
            "--style-weight",
            type=float,
            default=defaults.style_weight,
            show_default=True,
            help="Raise for stronger stylization, lower to keep more of the photo.",
        ),
        click.option(
            "--tv-weight",
            type=float,
            default=defaults.tv_weight,
            show_default=True,
            help="Total-variation smoothing; raise if outputs are noisy.",
        ),
    ]
    return lambda command: _apply(options, command)


def loss_config(encoder, content_layers, style_layers, content_weight, style_weight, tv_weight) -> LossConfig:
    from cin_style.blend.specs import parse_weighted_names

    return LossConfig(
        encoder=encoder,
        content_layers=dict(parse_weighted_names(content_layers, ":", "layer")),
        style_layers=dict(parse_weighted_names(style_layers, ":", "layer")),
        content_weight=content_weight,
        style_weight=style_weight,
        tv_weight=tv_weight,
    )


def clip_for_styles(styles, clip_model, clip_weights, clip_pretrained) -> ClipConfig | None:
    """The CLIP settings when any style is given in words, else None."""
    from cin_style.blend.specs import any_text_style

    return clip_config(clip_model, clip_weights, clip_pretrained) if any_text_style(styles) else None


class StyleScale(click.ParamType):
    """A number in [1, MAX_STYLE_SCALE], or auto."""

    name = "S|auto"

    def convert(self, value, param, ctx):
        try:
            return check_style_scale(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


style_scale_option = click.option(
    "--style-scale",
    type=StyleScale(),
    default=DEFAULT_STYLE_SCALE,
    show_default=True,
    help="Brush strokes S times larger: the network runs on the photo shrunk by S, and joint "
    "bilateral upsampling brings the result back to full size along the photo's edges.  auto: S "
    f"follows the photo's size, so the network sees about {AUTO_NETWORK_PIXELS / 1e6:.1f} MP (photos "
    f"up to about 1.3 MP run as they are; 12 MP at 3.25).  1: the network at full size (the old "
    f"default), up to {MAX_STYLE_SCALE:g}.",
)

# The options every command that stylizes takes, declared here once.
style_option = click.option(
    "-s",
    "--style",
    "style_specs",
    multiple=True,
    metavar="NAME=W",
    help="Style name or index with weight; repeat or comma-separate to blend (default: the first style).",
)
strength_option = click.option(
    "--strength",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Mix with the photo: 1 = fully stylized, 0 = the photo.",
)
preserve_color_option = click.option(
    "--preserve-color", is_flag=True, help="Keep the photo's colours; transfer only the style's luminance."
)


def max_pixels_option(default: int, what: str = "images", *, show_default: bool = False):
    """--max-pixels: the bomb guard, read from each image's header before decoding.
    ``default`` is the library's own (None is passed on unless shown)."""
    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=default if show_default else None,
        show_default=show_default,
        metavar="N",
        help=f"Refuse {what} larger than this many pixels, from the header before decoding"
        + ("." if show_default else f" [default: {default:,}]."),
    )


grain_option = click.option(
    "--grain",
    type=click.IntRange(0, MAX_GRAIN),
    default=DEFAULT_GRAIN,
    show_default=True,
    metavar="LEVELS",
    help="A fixed, faint grain of ±LEVELS/255 on the network's input, so smooth skies, walls and "
    "upscaled photos get the painting's texture instead of horizontal stripes; 0 turns it off "
    "(the output is then exactly as without it).",
)
