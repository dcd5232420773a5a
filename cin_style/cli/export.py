"""`cin-style export`: a checkpoint to an ONNX graph (any variant) or a slim checkpoint."""

from __future__ import annotations

import click

from cin_style.cli.options import quiet_option
from cin_style.deploy.targets import DEFAULT_TFLITE_SIZE, FORMATS
from cin_style.infer.contract import GRAPH_PRECISIONS
from cin_style.infer.tiles import AUTO_TILE_PIXELS
from cin_style.io.image import MIN_PSNR_DB


@click.command("export")
@click.argument("model", type=click.Path(), required=False)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),  # a .mlpackage is a folder: export refuses any other folder
    help="The file to write: .onnx (a graph), .pt (a slim checkpoint, no training state), or a "
    "--format's file (.xml, .ort, .tflite, .mlpackage).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default=None,
    help="onnx; openvino (IR .xml + .bin, the openvino extra); ort (ONNX Runtime Mobile's "
    ".ort + the operator config a reduced build needs); tflite (LiteRT, one fixed --size, "
    "the tflite extra); coreml (.mlpackage, flexible size, fp16 by default, the coreml extra).  "
    "Default: from the output's suffix.  Each is checked against onnxruntime.",
)
@click.option(
    "--size",
    default=None,
    metavar="HxW",
    help="With --format tflite: the fixed image size it takes  "
    f"[default: {DEFAULT_TFLITE_SIZE[0]}x{DEFAULT_TFLITE_SIZE[1]}].",
)
@click.option(
    "--bake",
    "bake",
    default=None,
    metavar="NAME=W[,NAME=W...]",
    help="Fold this blend into the graph: a single-input graph (image → stylized).",
)
@click.option(
    "--precision",
    type=click.Choice(sorted(GRAPH_PRECISIONS)),
    default=None,
    help="Default fp32 (Core ML: fp16).  fp16: weights and compute in fp16 (for GPUs: onnxruntime's CPU kernels run it "
    "slower than fp32); fp16-weights: weights stored in fp16, compute in fp32 (half the "
    "file at fp32's speed; what the package ships); int8: the residual blocks' "
    f"convolutions quantized, calibrated on --calibrate photos (refused below {MIN_PSNR_DB['int8']:g} dB "
    "against fp32 on real photos).  Inputs and outputs stay float32.  A .pt output "
    "stores fp16 weights for fp16 and fp16-weights alike.",
)
@click.option(
    "--calibrate",
    type=click.Path(exists=True),
    default=None,
    metavar="PHOTOS",
    help="With --precision int8: a folder or .txt list of photos to calibrate on (up to 64 "
    "are used; the bundled sample photos check the result).",
)
@click.option(
    "--int8-floor",
    type=float,
    default=MIN_PSNR_DB["int8"],
    show_default=True,
    metavar="DB",
    help="With --precision int8: refuse the graph when its worst PSNR against fp32 on the sample photos is below this.",
)
@click.option("--opset", type=int, default=18, show_default=True)
@click.option("--no-verify", is_flag=True, help="Skip the PyTorch-vs-onnxruntime parity check.")
@click.option(
    "--masks",
    is_flag=True,
    help="Write the masks variant: style_weights is a per-pixel map [N, S, h, w], for "
    "`stylize --style-mask` (a [N, S, 1, 1] map is a global blend).",
)
@click.option(
    "--tiled",
    is_flag=True,
    help="Write the tiled variant: the network cut at its norm layers, which the runner "
    "drives tile by tile for images of any size in bounded memory, seamlessly.",
)
@click.option(
    "--tiled-sibling/--no-tiled-sibling",
    default=True,
    show_default=True,
    help="With a plain graph NAME.onnx, also write NAME.tiled.onnx: large images then run through it, "
    f"faster and in bounded memory (without it, images above {AUTO_TILE_PIXELS / 1e6:.1f} MP are refused).",
)
@click.option(
    "--replace-training-state",
    is_flag=True,
    help="Allow -o to name an existing checkpoint that holds a training run's state (optimizer, "
    "RNG, history): the slim export replaces it.  The source MODEL itself is never replaced.",
)
@quiet_option
def export_cmd(
    model,
    output,
    fmt,
    size,
    bake,
    precision,
    calibrate,
    int8_floor,
    opset,
    no_verify,
    masks,
    tiled,
    tiled_sibling,
    replace_training_state,
):
    """Export a checkpoint to ONNX (checked, parity-verified, with metadata),
    or to a slim .pt checkpoint (weights only, fp16 halves it again).
    Without MODEL: the bundled reference model; `lite` and `reference` name the bundled ones.
    Other runtimes: --format openvino, ort, tflite or coreml (each keeps the style-weight input).

    \b
    Graph: image [N,3,H,W] float32 in [0,1] + style_weights [N,S] float32
           → stylized [N,3,H,W] float32 in [0,1]; N, H, W dynamic (H, W >= 16).
    A plain graph comes with its tiled sibling NAME.tiled.onnx (--no-tiled-sibling: not).
    Example:
      cin-style export model.pt -o model.onnx
      cin-style export model.pt -o wave.onnx --bake great_wave=0.7,starry_night=0.3
      cin-style export run.pt -o model.pt --precision fp16   # what the package ships
      cin-style export model.pt -o model.onnx --precision fp16-weights   # and its graph
      cin-style export model.pt -o small.onnx --precision int8 --calibrate photos/
      cin-style export lite -o lite.xml                  # OpenVINO IR
      cin-style export lite -o lite.tflite --size 256x256
      cin-style export lite -o Lite.mlpackage            # Core ML, fp16
      cin-style export lite -o lite.ort                  # ONNX Runtime Mobile
    """
    from cin_style.deploy.export import export, format_export
    from cin_style.deploy.targets import parse_size

    summary = export(
        model,
        output,
        format=fmt,
        size=parse_size(size) if size else None,
        bake=bake,
        precision=precision,
        calibrate=calibrate,
        int8_floor=int8_floor,
        opset=opset,
        verify=not no_verify,
        masks=masks,
        tiled=tiled,
        tiled_sibling=tiled_sibling,
        replace_training_state=replace_training_state,
    )
    for line in format_export(summary):
        click.echo(line)
