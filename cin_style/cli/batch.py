"""`cin-style batch`: stylize a catalogue on Ray Data (the `batch` extra)."""

from __future__ import annotations

import click

from cin_style.batch.job import BatchJob
from cin_style.cli.options import max_pixels_option, preserve_color_option, quiet_option, strength_option, style_option
from cin_style.io.image import DEFAULT_MAX_PIXELS

DEFAULTS = BatchJob("", "")


def _actors(ctx, param, value: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"MIN,MAX or N, got {value!r}") from None
    if len(parts) not in (1, 2):
        raise click.BadParameter(f"MIN,MAX or N, got {value!r}")
    return (parts[0], parts[-1])


@click.command()
@click.argument("source", metavar="INPUT")
@click.argument("model", required=False)
@click.option("-o", "--out", "output", required=True, help="Folder (or URI) for the images and manifest/.")
@style_option
@strength_option
@preserve_color_option
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "webp"]), default="png", show_default=True)
@max_pixels_option(DEFAULT_MAX_PIXELS)
@click.option(
    "--address",
    default=None,
    help="An existing Ray cluster: auto, or ray://HEAD:10001  [default: a local cluster for this run].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.batch_size,
    show_default=True,
    help="Images per actor call (and per manifest part).",
)
@click.option(
    "--actors",
    default="1,2",
    show_default=True,
    callback=_actors,
    metavar="MIN,MAX",
    help="Size of the autoscaling actor pool.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=DEFAULTS.threads,
    show_default=True,
    help="onnxruntime threads (and Ray CPUs) per actor.",
)
@click.option(
    "--gpus-per-actor",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="GPUs per actor; > 0 runs the CUDA provider.",
)
@quiet_option
def batch(
    source,
    model,
    output,
    style_specs,
    strength,
    preserve_color,
    fmt,
    max_pixels,
    address,
    batch_size,
    actors,
    threads,
    gpus_per_actor,
):
    """Stylize many images on Ray Data, resumably: a manifest records every image, and a
    rerun skips what is done.

    \b
    INPUT: a folder, a glob, or a .txt/.csv/.parquet list of paths or URIs (a
    "path" column).  MODEL: an .onnx graph or a bundled model's name (default:
    the bundled reference model).  OUTPUT gets the images and manifest/, a
    Parquet dataset: input, output, status, error, size, weights, model sha256.
    Example:
      cin-style batch photos/ -o out/ --style starry_night
      cin-style batch list.parquet lite -o out/ --actors 2,8 --address auto
    """
    from cin_style.batch.job import run_batch

    job = BatchJob(
        source=source,
        output=output,
        model=model,
        styles=tuple(style_specs),
        strength=strength,
        preserve_color=preserve_color,
        format=fmt,
        max_pixels=max_pixels,
        address=address,
        batch_size=batch_size,
        actors=actors,
        threads=threads,
        gpus_per_actor=gpus_per_actor,
    )
    import ray  # noqa: F401  (the batch extra: said in one line before any work when missing)

    summary = run_batch(job)
    click.echo(
        f"{summary.done} stylized, {summary.errors} failed (see the manifest), {summary.skipped} already done, "
        f"of {summary.total}; {summary.images_per_s:.1f} images/s; manifest: {summary.manifest}"
    )
    if summary.errors:
        raise SystemExit(1)
