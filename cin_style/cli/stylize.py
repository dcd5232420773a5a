"""`cin-style styles` and `cin-style stylize`."""

from __future__ import annotations

import json

import click

from cin_style.cli.options import (
    device_option,
    grain_option,
    json_option,
    max_pixels_option,
    preserve_color_option,
    quiet_option,
    runtime_option,
    strength_option,
    style_option,
    style_scale_option,
)
from cin_style.infer.tiles import ALIGN, AUTO_TILE_PIXELS, DEFAULT_TILE, TILE_ABOVE_PIXELS
from cin_style.io.image import DEFAULT_MAX_PIXELS


@click.command()
@click.argument("model", type=click.Path(), required=False)
@json_option
def styles(model, as_json):
    """List a model's styles (index and name); works for .pt and .onnx.

    Without MODEL: the bundled reference model.  MODEL may also name a
    bundled model: `lite` (the same styles in a smaller, faster net) or
    `reference`.
    """
    from cin_style.assets.bundled import resolve_model, shipped_models
    from cin_style.infer.loader import exact_runtime, load_stylizer

    path = resolve_model(model)
    names = load_stylizer(path, device="cpu", runtime=exact_runtime(path)).style_names
    if as_json:
        click.echo(json.dumps(names))
        return
    for i, name in enumerate(names):
        click.echo(f"{i:3d}  {name}")
    if model is None:
        click.echo(
            f"bundled models: {', '.join(shipped_models())} (the first is the default; pass a name as "
            f"MODEL to pick one)"
        )


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="[MODEL] INPUT...")
@click.option(
    "-o", "--output", required=True, type=click.Path(), help="Output file (one input, .png/.jpg/.webp) or folder."
)
@style_option
@click.option("--no-normalize", is_flag=True, help="Use weights as given instead of scaling them to sum 1.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "jpg", "webp"]),
    default="png",
    show_default=True,
    help="File type when writing into a folder.",
)
@strength_option
@preserve_color_option
@click.option("--max-size", type=int, default=None, help="Downscale inputs so the long side fits (px).")
@max_pixels_option(DEFAULT_MAX_PIXELS)
@click.option(
    "--tile",
    type=click.IntRange(min=64),
    default=None,
    metavar="SIZE",
    help=f"Stylize in tiles in bounded memory, seamless and as one piece gives: the network runs "
    f"layer by layer over full-width strips of about SIZE² pixels (a multiple of {ALIGN}) with "
    f"whole-image statistics.  Large images go in tiles of {DEFAULT_TILE} by themselves (from "
    f"{min(TILE_ABOVE_PIXELS.values()) / 1e6:.1f}-{AUTO_TILE_PIXELS / 1e6:.1f} MP by runtime, where "
    f"tiles are faster or lighter): a .pt model always can, an .onnx graph through its tiled sibling "
    f"NAME.tiled.onnx, which `export` writes beside it (the bundled models ship with theirs).",
)
@click.option(
    "--style-mask",
    "mask_specs",
    multiple=True,
    metavar="NAME=MASK.png",
    help="Give a style to a region: MASK is a greyscale weight image (white = this "
    "style), resized to the photo.  Repeat for more regions; what the masks leave "
    "uncovered gets the --style blend.  Needs a .pt model or `export --masks`.",
)
@style_scale_option
@grain_option
@device_option
@runtime_option
@json_option
@quiet_option
def stylize(
    inputs,
    output,
    style_specs,
    no_normalize,
    fmt,
    strength,
    preserve_color,
    max_size,
    max_pixels,
    tile,
    mask_specs,
    style_scale,
    grain,
    device,
    runtime,
    as_json,
):
    """Stylize photos with a blend of a model's styles.

    MODEL is a .pt checkpoint or an exported .onnx file (run by the fastest
    installed runtime: see --runtime); without it, the bundled reference model
    (16 styles: `cin-style styles`). INPUT is a file, folder or glob.

    \b
    Examples:
      cin-style stylize photo.jpg -o out.png --style starry_night
      cin-style stylize model.pt photo.jpg -o out.png --style starry_night
      cin-style stylize model.pt photos/ -o out/ --style starry_night=0.7 --style great_wave=0.3
      cin-style stylize model.onnx 'shots/*.jpg' -o out/ --style 0=1,2=1 --json
      cin-style stylize model.pt photo.jpg -o soft.jpg --strength 0.6 --preserve-color
      cin-style stylize photo.jpg -o out.png --style great_wave --style-mask starry_night=sky.png
      cin-style stylize model.pt huge.tif -o huge.png --tile 512
      cin-style stylize photo_4k.jpg -o big_strokes.png --style starry_night --style-scale 3
    """
    from cin_style.assets.bundled import resolve_model, split_model_argument
    from cin_style.infer.files import output_paths, stylize_files
    from cin_style.infer.loader import load_stylizer
    from cin_style.infer.stylizer import blend_for
    from cin_style.io.image import MIN_SIDE, expand_inputs

    if max_size is not None and max_size < MIN_SIDE:
        raise click.BadParameter(f"--max-size must be at least {MIN_SIDE}")
    if tile is not None and tile % ALIGN:
        raise click.BadParameter(f"--tile must be a multiple of {ALIGN}, got {tile}")
    from cin_style.blend.masks import parse_mask_specs

    masks = parse_mask_specs(mask_specs)
    model, inputs = split_model_argument(inputs)
    if not inputs:
        raise click.UsageError("no INPUT given: name the photos to stylize after the model")
    paths = expand_inputs(inputs)
    targets = output_paths(paths, output, fmt)
    stylizer = load_stylizer(resolve_model(model), device=device, runtime=runtime)
    weights, blend = blend_for(stylizer, style_specs, normalize=not no_normalize)
    failures = 0
    for done in stylize_files(
        stylizer,
        paths,
        targets,
        weights,
        strength=strength,
        preserve_color=preserve_color,
        max_size=max_size,
        max_pixels=max_pixels,
        tile=tile,
        masks=masks,
        style_scale=style_scale,
        grain=grain,
    ):
        if done.error:
            failures += 1
            click.echo(f"error: {done.error}", err=True)
        elif as_json:
            click.echo(
                json.dumps(
                    {
                        "input": str(done.input),
                        "output": str(done.output),
                        "size": list(done.size),
                        "blend": blend,
                        "strength": strength,
                        "preserve_color": preserve_color,
                        "device": stylizer.device,
                        "model": str(stylizer.path),
                        "runtime": stylizer.runtime,
                        "runtime_precision": stylizer.runtime_precision,
                        "route": done.route,
                        "grain": grain,
                        "style_scale": done.style_scale,
                        "seconds": done.seconds,
                    }
                )
            )
        else:
            click.echo(f"{done.input} -> {done.output}")
    if failures:
        raise click.ClickException(f"{failures} of {len(paths)} input(s) failed")
