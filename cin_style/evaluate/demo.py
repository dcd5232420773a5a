"""`cin-style demo`: the bundled reference model on the sample photos, as a
contact sheet of every style and a few blends (seconds on a CPU); with
``--train``, a short training run on eight bundled paintings instead — the
whole pipeline on built-in defaults."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cin_style.assets.bundled import bundled_samples, bundled_styles
from cin_style.blend.weights import blend_weights
from cin_style.config import LossConfig, StyleNetConfig, TrainConfig

log = logging.getLogger(__name__)

DEMO_BLENDS = (("starry_night", "great_wave"), ("composition_viii", "poppies"), ("night_cafe", "inokashira_snow"))
# The paintings `demo --train` learns: eight that differ in palette and texture.
TRAIN_DEMO_STYLES = (
    "arcimboldo_spring",
    "cafe_terrace",
    "composition_viii",
    "great_wave",
    "inokashira_snow",
    "night_cafe",
    "poppies",
    "starry_night",
)


def demo_config(on_gpu: bool) -> TrainConfig:
    """Small and quick on a CPU; the full network and more steps on a GPU."""
    if on_gpu:
        return TrainConfig(
            steps=3000, batch_size=8, image_size=256, style_size=384, lr=1e-3, checkpoint_every=500, sample_every=500
        )
    # A few minutes on two cores: a narrower net on small crops, a higher learning
    # rate, style layers up to relu3_3 (relu4_3 costs a third of the VGG time), and
    # more content weight and TV so the photo stays recognisable this early.
    return TrainConfig(
        steps=100_000,
        batch_size=4,
        image_size=112,
        style_size=192,
        lr=2e-3,
        network=StyleNetConfig(base_width=16, num_residual_blocks=3),
        checkpoint_every=100,
        sample_every=100_000,
        loss=LossConfig(
            style_layers={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0},
            content_weight=2.0,
            style_weight=1e5,
            tv_weight=1e-1,
        ),
    )


@dataclass
class DemoResult:
    folder: Path
    checkpoint: Path
    sheet: Path
    steps: int
    seconds: float


def demo_sheet(stylizer, out: Path, cell: int = 160) -> tuple[Path, int, int]:
    """Contact sheet of ``stylizer`` on the sample photos: a column per style,
    then the 50/50 blends of ``DEMO_BLENDS`` the model has.  Returns (path, photos, columns)."""
    from cin_style.evaluate.sheet import contact_sheet
    from cin_style.io.image import list_images, load_image, save_image

    names = stylizer.style_names
    blends = [(a, b) for a, b in DEMO_BLENDS if a in names and b in names]
    columns = [*names, *(f"{a}+{b}" for a, b in blends)]
    vectors = [blend_weights([(n, 1.0)], names) for n in names]
    vectors += [blend_weights([(a, 0.5), (b, 0.5)], names) for a, b in blends]
    rows = []
    for photo in list_images(bundled_samples()):
        image = load_image(photo, max_size=256)
        batch = np.repeat(image[None], len(vectors), axis=0)
        rows.append([image, *stylizer.run(batch, np.stack(vectors))])
    sheet = contact_sheet(rows, ["photo", *columns], cell=cell)
    return save_image(out, sheet, quality=92), len(rows), len(columns)


def run_demo(
    out: str | Path = "cin-style-demo", model: str | Path | None = None, device: str = "auto", cell: int = 160
) -> DemoResult:
    """The bundled reference model (or ``model``) on the sample photos: no training."""
    from cin_style.assets.bundled import resolve_model
    from cin_style.infer.loader import load_stylizer

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = resolve_model(model)
    stylizer = load_stylizer(model_path, device=device)
    sheet, photos, columns = demo_sheet(stylizer, out / "contact_sheet.jpg", cell)
    elapsed = time.perf_counter() - started
    log.info(
        f"wrote {sheet} ({photos} photos x {columns} styles/blends of {model_path.name}, "
        f"{stylizer.device}) in {elapsed:.1f}s"
    )
    return DemoResult(out, model_path, sheet, 0, elapsed)


def train_demo(
    out: str | Path = "cin-style-demo",
    seconds: float = 180.0,
    device: str = "auto",
    steps: int | None = None,
    vgg_weights: str | Path | None = None,
    encoder=None,
    cell: int = 160,
) -> DemoResult:
    """Train a small model on eight bundled paintings and the sample photos, then
    write its contact sheet — the training pipeline end to end in minutes."""
    from cin_style.infer.torch_stylizer import TorchStylizer
    from cin_style.nn.devices import pick_device
    from cin_style.nn.vgg import build_encoder
    from cin_style.train.recipes import train

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    on_gpu = pick_device(device).type == "cuda"
    config = demo_config(on_gpu)
    if steps is not None:
        config = replace(config, steps=steps)
    if encoder is None:
        encoder = build_encoder(config.loss.encoder, config.loss.layers, vgg_weights)
    styles = [bundled_styles() / f"{name}.jpg" for name in TRAIN_DEMO_STYLES]
    log.info(
        f"training {len(styles)} styles from {bundled_styles()} on the sample photos "
        f"({'GPU' if on_gpu else f'CPU, {seconds:.0f}s budget'})"
    )
    result = train(
        styles,
        bundled_samples(),
        out / "model.pt",
        config,
        device=device,
        encoder=encoder,
        samples=False,
        time_budget=None if on_gpu and steps is None else seconds,
        overwrite=True,  # the demo's own folder: a second demo --train starts afresh
    )
    stylizer = TorchStylizer(result.checkpoint, device=device)
    sheet, photos, columns = demo_sheet(stylizer, out / "contact_sheet.jpg", cell)
    elapsed = time.perf_counter() - started
    log.info(f"wrote {result.checkpoint} ({result.step} steps, {result.images_per_second:.1f} img/s)")
    log.info(f"wrote {sheet} ({photos} photos x {columns} styles/blends)")
    log.info(f"demo finished in {elapsed:.0f}s")
    return DemoResult(out, result.checkpoint, sheet, result.step, elapsed)
