"""`cin-style add-style`: grow a trained model by new styles."""

from __future__ import annotations

import click

from cin_style.cli.options import (
    clip_for_styles,
    clip_options,
    device_option,
    nproc_option,
    quiet_option,
    relaunch,
    secondary_rank,
    vgg_weights_option,
)
from cin_style.config import ADD_STYLE_LR, ADD_STYLE_STEPS


@click.command("add-style")
@click.argument("new_styles", nargs=-1, required=True, metavar="[MODEL] NEW_STYLE...")
@click.option(
    "--content", type=click.Path(), default=None, help="Training photos (default: the folder the model was trained on)."
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the grown model (default: MODEL itself, old file kept as .prev; "
    "required for the bundled model).",
)
@click.option("--steps", type=int, default=ADD_STYLE_STEPS, show_default=True)
@click.option("--lr", type=float, default=ADD_STYLE_LR, show_default=True, help="Learning rate for the new γ/β rows.")
@click.option(
    "--style-size",
    type=click.IntRange(min=16),
    default=None,
    help="Long side the new paintings are read at for their Gram targets [default: the model's own]; "
    "twice the model's gives strokes twice as large (a larger-scale row of a style).",
)
@nproc_option
@clip_options
@vgg_weights_option
@device_option
@quiet_option
def add_style(
    new_styles,
    content,
    out,
    steps,
    lr,
    style_size,
    nproc,
    clip_model,
    clip_weights,
    clip_pretrained,
    vgg_weights,
    device,
):
    """Add styles to a trained model, training only their new γ/β rows.

    The rest of the network is frozen, so the existing styles' outputs stay
    bit-identical.  MODEL is a .pt checkpoint (default: the bundled reference
    model, written to -o); NEW_STYLE is an image, a folder, NAME=IMAGE, or a
    style in words: 'text:PROMPT' or 'NAME=text:PROMPT' (needs CLIP weights).

    \b
    Examples:
      cin-style add-style harvesters.jpg --content photos/ -o mine.pt --steps 1000
      cin-style add-style 'ink=text:an ink wash painting' -o mine.pt --clip-weights clip.pt
      cin-style add-style starry_x2=styles/starry_night.jpg --style-size 512 --content photos/ -o mine.pt
    """
    from cin_style.assets.bundled import resolve_model, split_model_argument

    model, new_styles = split_model_argument(new_styles)
    if not new_styles:
        raise click.UsageError("no NEW_STYLE given")
    if model is None and out is None:
        raise click.UsageError("pass -o OUT.pt: the bundled model is not overwritten")
    relaunch(nproc)
    from cin_style.train.recipes import add_styles

    result = add_styles(
        resolve_model(model),
        list(new_styles),
        content,
        out,
        steps=steps,
        lr=lr,
        style_size=style_size,
        device=device,
        vgg_weights=vgg_weights,
        clip=clip_for_styles(new_styles, clip_model, clip_weights, clip_pretrained),
    )
    if secondary_rank():
        return
    click.echo(f"wrote {result.checkpoint}: styles now {', '.join(result.style_names)}")
