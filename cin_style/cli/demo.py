"""`cin-style demo`: the bundled model (or one trained on the spot) on the sample photos."""

from __future__ import annotations

import math

import click

from cin_style.cli.options import device_option, quiet_option, vgg_weights_option


@click.command()
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False),
    default="cin-style-demo",
    show_default=True,
    help="Folder for the contact sheet (and, with --train, the checkpoint).",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False),
    default=None,
    help="Show this model instead of the bundled one (.pt or .onnx).",
)
@click.option(
    "--train",
    "train_first",
    is_flag=True,
    help="Train a small 8-style model first (minutes on a CPU) and show that instead.",
)
@click.option(
    "--seconds",
    type=float,
    default=180,
    show_default=True,
    help="With --train: the training time budget on the CPU (a GPU trains a fixed 3000 steps).",
)
@click.option("--steps", type=int, default=None, help="With --train: exactly this many steps instead.")
@click.option(
    "--cell",
    type=click.IntRange(min=32),
    default=160,
    show_default=True,
    help="Size of each picture in the contact sheet (px).",
)
@vgg_weights_option
@device_option
@quiet_option
def demo(out, model, train_first, seconds, steps, cell, vgg_weights, device):
    """Show the bundled reference model: a contact sheet of every style and a
    few 50/50 blends on the sample photos (seconds on a CPU; offline).

    With --train: train on eight bundled paintings and the sample photos
    first (fetching the VGG weights if needed), then show that model.
    """
    from cin_style.evaluate.demo import run_demo, train_demo

    if train_first:
        if model is not None:
            raise click.UsageError("--model and --train exclude each other")
        if not (seconds > 0 and math.isfinite(seconds)):
            raise click.BadParameter("--seconds must be > 0")
        result = train_demo(out, seconds=seconds, device=device, steps=steps, vgg_weights=vgg_weights, cell=cell)
    else:
        result = run_demo(out, model=model, device=device, cell=cell)
    click.echo(f"open {result.sheet}")
