"""`cin-style video`."""

from __future__ import annotations

import click

from cin_style.cli.options import (
    device_option,
    grain_option,
    max_pixels_option,
    preserve_color_option,
    quiet_option,
    runtime_option,
    strength_option,
    style_option,
    style_scale_option,
)
from cin_style.video.stylize import DEFAULT_MAX_VIDEO_PIXELS


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="[MODEL] VIDEO")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Video to write: .mp4/.mov/.mkv (H.264) or .webm (VP9).",
)
@click.option(
    "--frames",
    "frames_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write PNG frames into this folder instead of a video.",
)
@style_option
@strength_option
@preserve_color_option
@click.option(
    "--consistency",
    type=click.Choice(["flow", "none"]),
    default="flow",
    show_default=True,
    help="flow: blend each frame with the previous output carried along the optical flow "
    "(OpenCV DIS) where the flow is reliable, against flicker; none: frame by frame.",
)
@click.option(
    "--consistency-strength",
    type=click.FloatRange(0, 1),
    default=0.95,
    show_default=True,
    help="How much of the carried previous output to keep where the flow is reliable "
    "(lower values average textures and wash them out; see README).",
)
@click.option("--start", type=click.FloatRange(min=0), default=0.0, show_default=True, help="Start at S seconds.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, help="Stylize D seconds.")
@click.option(
    "--crf",
    type=click.IntRange(0, 63),
    default=None,
    help="Quality (lower is better): default 18 for H.264, 31 for VP9.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Frames per network call.")
@click.option(
    "--max-size",
    type=click.IntRange(min=16),
    default=None,
    help="Scale frames down so the long side fits (px); the video is written at that size.",
)
@max_pixels_option(DEFAULT_MAX_VIDEO_PIXELS, "frames")
@device_option
@runtime_option
@style_scale_option
@grain_option
@quiet_option
def video(
    inputs,
    output,
    frames_dir,
    style_specs,
    strength,
    preserve_color,
    consistency,
    consistency_strength,
    start,
    duration,
    crf,
    batch_size,
    max_size,
    max_pixels,
    style_scale,
    grain,
    device,
    runtime,
):
    """Stylize a video with a blend of a model's styles, without flicker.

    MODEL is a .pt checkpoint or an .onnx graph (default: the bundled model).
    Size, frame rate and timestamps, rotation and pixel aspect are kept; the
    audio is copied unchanged.  Needs PyAV and OpenCV: pip install -e '.[video]' in your clone.

    \b
    Examples:
      cin-style video clip.mp4 -o painted.mp4 --style starry_night
      cin-style video model.onnx clip.mov -o out.webm --style great_wave=0.6,poppies=0.4 --start 5 --duration 10
      cin-style video clip.mp4 --frames frames/ --consistency none
    """
    from cin_style.assets.bundled import resolve_model, split_model_argument
    from cin_style.infer.loader import load_stylizer
    from cin_style.infer.stylizer import blend_for
    from cin_style.video.stylize import stylize_video

    model, rest = split_model_argument(inputs)
    if len(rest) != 1:
        raise click.UsageError("give one VIDEO (after an optional MODEL)")
    if (output is None) == (frames_dir is None):
        raise click.UsageError("give either -o OUTPUT or --frames DIR")
    stylizer = load_stylizer(resolve_model(model), device=device, runtime=runtime)
    weights, blend = blend_for(stylizer, style_specs)
    count = stylize_video(
        stylizer,
        rest[0],
        output,
        weights,
        frames_dir=frames_dir,
        batch_size=batch_size,
        start=start,
        duration=duration,
        crf=crf,
        max_pixels=max_pixels,
        max_size=max_size,
        show_progress=True,
        consistency=consistency,
        consistency_strength=consistency_strength,
        strength=strength,
        preserve_color=preserve_color,
        style_scale=style_scale,
        grain=grain,
    )
    click.echo(f"wrote {output or frames_dir} ({count} frames, {blend}, consistency {consistency}, {stylizer.device})")
