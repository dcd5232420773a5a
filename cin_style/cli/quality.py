"""`cin-style optimize` (per-image Gatys) and `cin-style evaluate` (scores of a model)."""

from __future__ import annotations

import time

import click

from cin_style.cli.options import (
    CLIP_DEFAULTS,
    clip_config,
    clip_options,
    device_option,
    json_option,
    loss_config,
    loss_options,
    quiet_option,
    vgg_weights_option,
)
from cin_style.config import OptimizeConfig

OPTIMIZE_DEFAULTS = OptimizeConfig()


@click.command()
@click.argument("content", type=click.Path())
@click.argument("styles", nargs=-1, metavar="[STYLE[=W]]...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Result image (.png/.jpg/.webp).")
@click.option(
    "--size", type=int, default=OPTIMIZE_DEFAULTS.size, show_default=True, help="Long side of the result (px)."
)
@click.option(
    "--steps",
    type=int,
    default=OPTIMIZE_DEFAULTS.steps,
    show_default=True,
    help="Iterations at full size (each coarser level runs twice as many).",
)
@click.option(
    "--scales",
    type=int,
    default=OPTIMIZE_DEFAULTS.scales,
    show_default=True,
    help="Coarse-to-fine levels: 2 starts at half size; 1 optimises at full size only.",
)
@click.option(
    "--optimizer",
    type=click.Choice(["lbfgs", "adam"]),
    default=None,
    help="Default: lbfgs, or adam with --text (its random patches defeat L-BFGS).",
)
@click.option(
    "--lr", type=float, default=OPTIMIZE_DEFAULTS.lr, help="Step size (default 1.0 for L-BFGS, 0.02 for Adam)."
)
@click.option("--init", type=click.Choice(["content", "noise"]), default=OPTIMIZE_DEFAULTS.init, show_default=True)
@loss_options(OPTIMIZE_DEFAULTS.loss)
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours (luminance-only transfer).")
@click.option(
    "--frames-every", type=int, default=None, metavar="K", help="Also save the image every K steps into OUTPUT_frames/."
)
@click.option("--seed", type=int, default=OPTIMIZE_DEFAULTS.seed, show_default=True)
@click.option(
    "--text",
    default=None,
    metavar="PROMPT",
    help="Describe the style in words (CLIPstyler's directional CLIP loss; needs "
    "'cin-style[clip]' and CLIP weights). With STYLE images too, both apply.",
)
@click.option(
    "--source-text",
    default=CLIP_DEFAULTS.source_text,
    show_default=True,
    help="What the photo is, in words: the text direction starts here.",
)
@clip_options
@vgg_weights_option
@device_option
@quiet_option
def optimize(
    content,
    styles,
    output,
    size,
    steps,
    scales,
    optimizer,
    lr,
    init,
    encoder,
    content_layers,
    style_layers,
    content_weight,
    style_weight,
    tv_weight,
    preserve_color,
    frames_every,
    seed,
    text,
    source_text,
    clip_model,
    clip_weights,
    clip_pretrained,
    vgg_weights,
    device,
):
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
    config = OptimizeConfig(
        size=size,
        steps=steps,
        scales=scales,
        optimizer=optimizer or ("adam" if text else "lbfgs"),
        lr=lr,
        init=init,
        seed=seed,
        preserve_color=preserve_color,
        loss=loss_config(encoder, content_layers, style_layers, content_weight, style_weight, tv_weight),
        text=text,
        clip=clip_config(clip_model, clip_weights, clip_pretrained, source_text=source_text),
    )
    started = time.perf_counter()
    result = optimize_file(
        content,
        [split_path_weight(s) for s in styles],
        output,
        config,
        vgg_weights=vgg_weights,
        device=device,
        frames_every=frames_every,
    )
    last = result.history[-1]
    click.echo(
        f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}, {len(result.history)} "
        f"steps, {time.perf_counter() - started:.0f}s, final loss {last['loss']:.4g})"
    )


@click.command()
@click.argument("model", type=click.Path(), required=False)
@click.option(
    "--content", type=click.Path(), required=True, help="Evaluation photos: a folder or a .txt list of image paths."
)
@click.option(
    "--styles",
    "styles",
    multiple=True,
    metavar="DIR|FILE|NAME=FILE",
    help="The model's style images (default: the paths stored in the checkpoint, else "
    "the bundled painting of each style name).",
)
@click.option("--limit", type=int, default=8, show_default=True, help="Use at most this many photos.")
@click.option("--only", default=None, metavar="NAME[,NAME...]", help="Score (and optimise) only these styles.")
@click.option("--blend", "blends", multiple=True, metavar="NAME=W,...", help="Also score this blend.")
@click.option(
    "--pair", default=None, metavar="A,B", help="Style pair for the blend path 0→1 (default: the first two styles)."
)
@click.option(
    "--with-optimize",
    is_flag=True,
    help="Also score Gatys results on the same photos (slow: photos x styles optimisations).",
)
@click.option("--optimize-steps", type=int, default=40, show_default=True)
@click.option(
    "--sheet",
    type=click.Path(dir_okay=False),
    default=None,
    help="Contact sheet PNG to write (default: MODEL_evaluation.png).",
)
@json_option
@click.option("--seed", type=int, default=0, show_default=True)
@vgg_weights_option
@device_option
@quiet_option
def evaluate(
    model,
    content,
    styles,
    limit,
    only,
    blends,
    pair,
    with_optimize,
    optimize_steps,
    sheet,
    as_json,
    seed,
    vgg_weights,
    device,
):
    """Score a model: content, style, TV and SSIM per style, blends, a blend path.

    Numbers come from a fixed evaluation network (VGG16; content relu2_2;
    style relu1_2..relu4_3; 256 px), independent of how the model was
    trained, so they compare across models.
    """
    from cin_style.evaluate.scores import evaluate_model, format_report, to_json

    pair_names = tuple(p.strip() for p in pair.split(",")) if pair else None
    if pair_names is not None and len(pair_names) != 2:
        raise click.BadParameter("--pair takes two style names: A,B")
    result = evaluate_model(
        model,
        content,
        styles=styles,
        limit=limit,
        only=[n.strip() for n in only.split(",") if n.strip()] if only else None,
        blends=blends,
        pair=pair_names,
        optimize_steps=optimize_steps if with_optimize else 0,
        sheet=sheet,
        seed=seed,
        vgg_weights=vgg_weights,
        device=device,
    )
    report, sheet_path = result.report, result.sheet
    if as_json:
        click.echo(to_json(report))
    else:
        click.echo(format_report(report))
    click.echo(f"wrote {sheet_path}", err=as_json)
