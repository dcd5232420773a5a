"""The `cin-style` command line: a thin layer over the Python API.

Every command turns expected failures (missing files, bad images, unknown
styles, corrupt checkpoints ...) into one line on stderr and a non-zero exit.
Each command group lives in its own module; this one holds the group, the error
mapping and the entry point.
"""

from __future__ import annotations

import sys

import click

from cin_style import __version__
from cin_style.cli import add_style, api, batch, bench, demo, export, quality, stylize, train, video, web, weights
from cin_style.cli.options import secondary_rank
from cin_style.errors import CinStyleError, UsageError, extra_of_module, first_line, missing_extra
from cin_style.progress import configure_logging

# What a user can fix prints as one line; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (CinStyleError, OSError)
# A library parameter (UsageError.parameter) as the command line names it, and what to do.
OPTION_OF_PARAMETER = {
    "style": ("--style", "drop --style"),
    "tile": (
        "--tile",
        "drop --tile, or `cin-style export MODEL -o NAME.onnx`: it writes the tiled sibling too "
        "(`export --tiled` writes the tiled graph alone)",
    ),
    "masks": ("--style-mask", "use a .pt model or a graph from `cin-style export --masks`"),
    "style_scale": ("--style-scale", None),
    "runtime": ("--runtime", "`cin-style export MODEL -o NAME.onnx` first"),
    "replace_training_state": ("-o", "or pass --replace-training-state"),
}


def usage_message(exc: UsageError) -> str:
    """A library usage error in the command line's words."""
    option, advice = OPTION_OF_PARAMETER.get(exc.parameter or "", (None, None))
    message = first_line(exc)
    if option is None:
        return message
    return f"{option}: {message}" + (f"; {advice}" if advice else "")


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
            extra = extra_of_module(exc.name)
            if ctx.params.get("debug") or extra is None:
                raise
            message = missing_extra(f"`cin-style {ctx.invoked_subcommand}`", extra, exc.name)
            raise click.ClickException(str(message)) from None
        except EXPECTED_ERRORS as exc:
            if ctx.params.get("debug"):
                raise
            if secondary_rank():
                sys.exit(1)  # under torchrun rank 0 says it: every rank meets the same error
            if isinstance(exc, UsageError):
                raise click.UsageError(usage_message(exc)) from None
            raise click.ClickException(first_line(exc)) from None


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
    configure_logging(quiet=secondary_rank())


for command in (
    train.train,
    add_style.add_style,
    stylize.styles,
    stylize.stylize,
    video.video,
    export.export_cmd,
    weights.weights,
    quality.optimize,
    quality.evaluate,
    web.web,
    web.serve,
    api.api,
    batch.batch,
    bench.bench,
    demo.demo,
):
    cli.add_command(command)


def main():
    cli(prog_name="cin-style")


if __name__ == "__main__":
    main()
