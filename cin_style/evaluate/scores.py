"""Quality report for a trained model: content, style, TV and SSIM numbers
measured with one fixed evaluation network, so they compare across models.

The evaluation loss network, its layers and the image sizes are constants
here — deliberately not taken from the model's training options.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cin_style.blend.specs import TEXT_PREFIX
from cin_style.blend.weights import format_blend, weights_from_specs
from cin_style.config import LossConfig
from cin_style.data.photos import to_array, to_tensor
from cin_style.data.styles import load_style_image
from cin_style.errors import DataError, UsageError
from cin_style.io.image import resize_long_side
from cin_style.losses.perceptual import blend_grams, content_loss, gram_matrix, style_loss, total_variation

log = logging.getLogger(__name__)

EVAL_LOSS = LossConfig(
    encoder="vgg16",
    content_layers={"relu2_2": 1.0},
    style_layers={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0},
)
EVAL_SIZE = 256  # long side of the photos and the style images (px)
BLEND_PATH = (0.0, 0.25, 0.5, 0.75, 1.0)


def model_style_images(model_path: str | Path, names: Sequence[str]) -> dict[str, Path]:
    """Each style's painting: the path a ``.pt`` checkpoint recorded when it is
    still there, else the bundled painting of that name (``.onnx`` graphs record none).
    Styles given in words have none and are left out."""
    from cin_style.assets.bundled import bundled_style_image
    from cin_style.nn.checkpoint import load_checkpoint

    recorded: list = []
    if Path(model_path).suffix.lower() != ".onnx":
        recorded = list(load_checkpoint(model_path).get("style_paths", []))
    if len(recorded) != len(names):
        recorded = [None] * len(names)
    found, missing = {}, []
    for name, stored in zip(names, recorded):
        if stored and str(stored).startswith(TEXT_PREFIX):
            continue  # a style in words has no painting: `evaluate --only` scores the others
        path = Path(stored) if stored and Path(stored).is_file() else bundled_style_image(name)
        if path is None:
            missing.append(name)
        else:
            found[name] = path
    if missing:
        raise DataError(f"no style image found for {', '.join(missing)}; pass --styles")
    return found


def luminance(image: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] RGB → [N, 1, H, W] BT.601 luma."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype, device=image.device)
    return (image * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004; 11x11 Gaussian, σ=1.5) of single-channel [N, 1, H, W],
    computed by pytorch-msssim (it matched our former own code to the last float32 digit)."""
    from pytorch_msssim import ssim as msssim_ssim

    if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 1:
        raise ValueError(f"ssim needs two [N, 1, H, W] tensors of one shape, got {list(a.shape)}, {list(b.shape)}")
    if min(a.shape[2:]) < 11:
        raise ValueError("ssim needs images of at least 11x11 pixels")
    return msssim_ssim(a, b, data_range=data_range, size_average=True, win_size=11, win_sigma=1.5, K=(0.01, 0.03))


@dataclass
class Metrics:
    content: float
    style: float
    tv: float
    ssim: float

    def to_dict(self) -> dict:
        return {k: _round(v) for k, v in self.__dict__.items()}


def _round(value: float) -> float:
    return float(f"{value:.6g}") if math.isfinite(value) else value


class Evaluator:
    """Scores stylizations of a fixed set of photos against style Gram targets."""

    def __init__(self, encoder, photos: list[torch.Tensor], device: str | torch.device = "cpu"):
        missing = [n for n in EVAL_LOSS.layers if n not in encoder.layers]
        if missing:
            raise ValueError(f"the evaluation encoder lacks layers {missing}")
        self.device = torch.device(device)
        self.encoder = encoder.to(self.device)
        self.photos = [p[None].to(self.device) for p in photos]
        with torch.no_grad():  # every stylization is compared with these: encode them once
            self.photo_features = [encoder(p) for p in self.photos]

    @torch.no_grad()
    def grams(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.encoder((image[None] if image.dim() == 3 else image).to(self.device))
        return {n: gram_matrix(feats[n]) for n in EVAL_LOSS.style_layers}

    @torch.no_grad()
    def score(self, outputs: list[torch.Tensor], *targets: dict[str, torch.Tensor]) -> Metrics | list[Metrics]:
        """Mean metrics of ``outputs`` (one per photo, in order), one Metrics per
        style target (features are computed once however many targets)."""
        if len(outputs) != len(self.photos):
            raise ValueError(f"{len(outputs)} outputs for {len(self.photos)} photos")
        sums = np.zeros((len(targets), 4))
        for out, photo, fp in zip(outputs, self.photos, self.photo_features):
            out = out[None].to(self.device)
            fo = self.encoder(out)
            shared = [
                sum(w * content_loss(fo[n], fp[n]).item() for n, w in EVAL_LOSS.content_layers.items()),
                total_variation(out).item(),
                ssim(luminance(out), luminance(photo)).item(),
            ]
            for i, target in enumerate(targets):
                style = style_loss(
                    fo, {n: t[None] if t.dim() == 2 else t for n, t in target.items()}, EVAL_LOSS.style_layers
                ).item()
                sums[i] += [shared[0], style, shared[1], shared[2]]
        metrics = [Metrics(*(row / max(1, len(outputs)))) for row in sums]
        return metrics[0] if len(metrics) == 1 else metrics


def evaluate(
    stylizer,
    photos: Sequence[Path],
    style_images: dict[str, Path],
    encoder,
    *,
    blends: Sequence[str] = (),
    pair: tuple[str, str] | None = None,
    optimize_steps: int = 0,
    optimize_encoder=None,
    seed: int = 0,
    size: int = EVAL_SIZE,
    only: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> dict:
    """The report as a JSON-ready dict; also returns images for a contact sheet.

    ``stylizer`` is anything with ``style_names`` and ``run`` (see inference).
    With ``optimize_steps`` > 0, Gatys results on the same photos are scored too.
    ``size`` stays at ``EVAL_SIZE`` for numbers that compare across models (the
    CLI offers no other); tests shrink it.  ``only`` scores (and optimises)
    just these styles; the default pair is then the first two of them.
    """
    from cin_style.io.image import load_image

    torch.manual_seed(seed)
    names = list(stylizer.style_names)
    unknown = [n for n in style_images if n not in names]
    if unknown:
        raise DataError(f"style images given for unknown styles {unknown}; model styles: {', '.join(names)}")
    scored = list(only) if only else names
    strangers = [n for n in scored if n not in names]
    if strangers:
        raise DataError(f"unknown style(s) {strangers}; model styles: {', '.join(names)}")
    missing = [n for n in (names if blends else scored) if n not in style_images]
    if missing:
        raise DataError(
            f"no style image for {', '.join(missing)}; pass --styles with the model's paintings "
            f"(styles given in words have none: leave them out with --only)"
        )
    if not photos:
        raise DataError("no evaluation photos")
    arrays = [resize_long_side(load_image(p), size) for p in photos]
    tensors = [to_tensor(a) for a in arrays]
    evaluator = Evaluator(encoder, tensors, device)
    style_grams: dict[str, dict[str, torch.Tensor]] = {}

    def grams_of(name: str) -> dict[str, torch.Tensor]:  # only the paintings in use are encoded
        if name not in style_grams:
            style_grams[name] = evaluator.grams(load_style_image(Path(style_images[name]), size))
        return style_grams[name]

    stacked = (
        {layer: torch.cat([grams_of(n)[layer] for n in names]) for layer in EVAL_LOSS.style_layers} if blends else {}
    )

    def run(weights: np.ndarray) -> list[torch.Tensor]:
        return [to_tensor(stylizer.run(a[None], weights[None])[0]) for a in arrays]

    report: dict = {
        "eval_network": {
            "encoder": EVAL_LOSS.encoder,
            "content_layers": list(EVAL_LOSS.content_layers),
            "style_layers": list(EVAL_LOSS.style_layers),
            "size": size,
        },
        "photos": [p.name for p in photos],
        "styles": {},
        "blends": {},
    }
    sheet_columns: dict[str, list[np.ndarray]] = {}
    for name in scored:
        outputs = run(np.eye(len(names), dtype=np.float32)[names.index(name)])
        report["styles"][name] = evaluator.score(outputs, grams_of(name)).to_dict()
        sheet_columns[name] = [to_array(o) for o in outputs]
        log.info(f"evaluated {name}")
    for spec in blends:
        weights = weights_from_specs([spec], names)
        target = blend_grams(stacked, weights.tolist())
        key = format_blend(weights, names)
        report["blends"][key] = evaluator.score(run(weights), target).to_dict()
    if pair is None and len(scored) >= 2:
        pair = (scored[0], scored[1])
    if pair is not None:
        a, b = pair
        for n in (a, b):
            if n not in names:
                raise DataError(f"unknown style {n!r}; valid styles: {', '.join(names)}")
            if n not in style_images:
                raise DataError(f"no style image for {n}; pass --styles with the model's paintings")
        path = []
        for t in BLEND_PATH:
            weights = weights_from_specs([f"{a}={1 - t},{b}={t}"], names)
            vs_a, vs_b = evaluator.score(run(weights), grams_of(a), grams_of(b))
            path.append({"t": t, f"style_loss_{a}": _round(vs_a.style), f"style_loss_{b}": _round(vs_b.style)})
        report["blend_path"] = {"from": a, "to": b, "points": path}
    if optimize_steps:
        report["optimize_reference"] = _optimize_reference(
            arrays, style_images, scored, evaluator, style_grams, optimize_steps, optimize_encoder, seed, size, device
        )
    return {"report": report, "columns": sheet_columns, "photos": arrays}


def _optimize_reference(
    arrays, style_images, names, evaluator, style_grams, steps, encoder, seed, size, device
) -> dict:
    from cin_style.config import OptimizeConfig
    from cin_style.io.image import load_image
    from cin_style.optimize.gatys import optimize_image

    results = {}
    for name in names:
        style = resize_long_side(load_image(style_images[name]), size)
        outputs = []
        for array in arrays:
            config = OptimizeConfig(size=max(array.shape[:2]), steps=steps, scales=1, seed=seed)
            result = optimize_image(array, [style], [1.0], config, encoder, device=device)
            outputs.append(to_tensor(result.image))
        results[name] = evaluator.score(outputs, style_grams[name]).to_dict()
        log.info(f"optimize reference for {name} done")
    return results


@dataclass
class EvaluationResult:
    report: dict
    sheet: Path


def evaluate_model(
    model: str | Path | None,
    content: str | Path,
    *,
    styles: Sequence[str] = (),
    limit: int = 8,
    only: Sequence[str] | None = None,
    blends: Sequence[str] = (),
    pair: tuple[str, str] | None = None,
    optimize_steps: int = 0,
    sheet: str | Path | None = None,
    seed: int = 0,
    vgg_weights: str | Path | None = None,
    device: str = "auto",
) -> EvaluationResult:
    """``cin-style evaluate``: score a model file (``None``: the bundled one) on the
    first ``limit`` photos of ``content`` and write a contact sheet.

    ``styles`` names the paintings (folders, files, NAME=FILE); by default the
    checkpoint's own, else the bundled painting of each style name.  The
    evaluation network runs where the model does.  The sheet defaults to
    MODEL_evaluation.png beside a model file, in the current folder for a
    bundled one.
    """
    from cin_style.assets.bundled import names_bundled_model, resolve_model
    from cin_style.data.styles import parse_style_inputs
    from cin_style.evaluate.sheet import contact_sheet
    from cin_style.infer.loader import exact_runtime, load_stylizer
    from cin_style.io.image import is_image_source, list_images, save_image
    from cin_style.nn.devices import pick_device
    from cin_style.nn.vgg import build_encoder

    model_path = resolve_model(model)
    stylizer = load_stylizer(model_path, device=device, runtime=exact_runtime(model_path))
    if styles:
        style_images = {s.name: s.path for s in parse_style_inputs(list(styles))}
    else:
        style_images = model_style_images(model_path, stylizer.style_names)
    if not is_image_source(content):
        raise UsageError(f"content folder not found: {content} (a folder or a .txt image list)")
    photos = list_images(content)[: max(1, limit)]
    encoder = build_encoder(EVAL_LOSS.encoder, EVAL_LOSS.layers, vgg_weights)
    optimize_encoder = None
    if optimize_steps:
        from cin_style.config import gatys_loss_config

        gatys = gatys_loss_config()
        optimize_encoder = build_encoder(gatys.encoder, gatys.layers)
    result = evaluate(
        stylizer,
        photos,
        style_images,
        encoder,
        blends=blends,
        pair=pair,
        optimize_steps=optimize_steps,
        optimize_encoder=optimize_encoder,
        seed=seed,
        only=only,
        device=pick_device(device),
    )
    if sheet is None:
        name = f"{model_path.stem}_evaluation.png"
        bundled = model is None or names_bundled_model(str(model))  # never write into the package
        sheet = Path(name) if bundled else model_path.with_name(name)
    columns = list(result["columns"])
    rows = [[photo, *(result["columns"][c][i] for c in columns)] for i, photo in enumerate(result["photos"])]
    return EvaluationResult(result["report"], save_image(sheet, contact_sheet(rows, ["photo", *columns], cell=160)))


def format_report(report: dict) -> str:
    lines = [
        f"evaluation network: {report['eval_network']['encoder']} content "
        f"{','.join(report['eval_network']['content_layers'])}, style "
        f"{','.join(report['eval_network']['style_layers'])}, {report['eval_network']['size']} px; "
        f"{len(report['photos'])} photos",
        f"{'style / blend':32s} {'content':>10s} {'style':>10s} {'tv':>8s} {'ssim':>6s}",
    ]

    def row(label, m):
        lines.append(f"{label[:32]:32s} {m['content']:10.4g} {m['style']:10.4g} {m['tv']:8.4g} {m['ssim']:6.3f}")

    for name, m in report["styles"].items():
        row(name, m)
    for name, m in report["blends"].items():
        row(name, m)
    if "optimize_reference" in report:
        lines.append("Gatys reference (same photos):")
        for name, m in report["optimize_reference"].items():
            row(f"  {name}", m)
    if "blend_path" in report:
        bp = report["blend_path"]
        a, b = bp["from"], bp["to"]
        lines.append(f"blend path {a} → {b}:  t   style loss vs {a}   vs {b}")
        for p in bp["points"]:
            lines.append(f"{'':30s}{p['t']:5.2f} {p[f'style_loss_{a}']:14.4g} {p[f'style_loss_{b}']:10.4g}")
    return "\n".join(lines)


def to_json(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
