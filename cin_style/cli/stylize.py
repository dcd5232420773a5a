"""`cin-style styles`, `cin-style stylize` and `cin-style video`."""

from __future__ import annotations

import json

import click

from cin_style.cli.options import device_option, json_option, quiet_option


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
    from cin_style.infer.loader import load_stylizer

    names = load_stylizer(resolve_model(model), device="cpu").style_names
    if as_json:
        click.echo(json.dumps(names))
        return
    for i, name in enumerate(names):
        click.echo(f"{i:3d}  {name}")
    if model is None:
        click.echo(f"bundled models: {', '.join(shipped_models())} (the first is the default; pass a name as "
                   f"MODEL to pick one)")


@click.command()
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
    from cin_style.assets.bundled import resolve_model, split_model_argument
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
    model, inputs = split_model_argument(inputs)
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


@click.command()
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
    from cin_style.assets.bundled import resolve_model, split_model_argument
    from cin_style.infer.loader import load_stylizer
    from cin_style.infer.stylizer import blend_for
    from cin_style.progress import progress
    from cin_style.video.stylize import stylize_video

    model, rest = split_model_argument(inputs)
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
