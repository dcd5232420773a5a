"""`cin-style demo`: train on the bundled paintings and sample photos, then
write a contact sheet — the whole pipeline on built-in defaults."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np

from .blend import blend_weights
from .losses import LossConfig
from .train import TrainConfig, pick_device

DEMO_BLENDS = (("starry_night", "great_wave"), ("composition_viii", "poppies"),
               ("night_cafe", "inokashira_snow"))


def bundled_styles() -> Path:
    return Path(str(resources.files("cin_style.styles")))


def bundled_samples() -> Path:
    return Path(str(resources.files("cin_style.samples")))


def demo_config(on_gpu: bool) -> TrainConfig:
    """Small and quick on a CPU; the full network and more steps on a GPU."""
    if on_gpu:
        return TrainConfig(steps=3000, batch_size=8, image_size=256, style_size=384,
                           lr=1e-3, checkpoint_every=500, sample_every=500)
    # A few minutes on two cores: a narrower net on small crops, a higher learning
    # rate, style layers up to relu3_3 (relu4_3 costs a third of the VGG time), and
    # more content weight and TV so the photo stays recognisable this early.
    return TrainConfig(steps=100_000, batch_size=4, image_size=112, style_size=192, lr=2e-3,
                       base_width=16, residual_blocks=3, checkpoint_every=100, sample_every=100_000,
                       loss=LossConfig(style_layers={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0},
                                       content_weight=2.0, style_weight=1e5, tv_weight=1e-1))


@dataclass
class DemoResult:
    folder: Path
    checkpoint: Path
    sheet: Path
    steps: int
    seconds: float


def run_demo(out: str | Path = "cin-style-demo", seconds: float = 180.0, device: str = "auto",
             steps: int | None = None, vgg_weights: str | Path | None = None, encoder=None,
             progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    from .encoder import build_encoder
    from .imageio import list_images, load_image, save_image
    from .inference import TorchStylizer
    from .sheet import contact_sheet
    from .train import train

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    on_gpu = pick_device(device).type == "cuda"
    config = demo_config(on_gpu)
    if steps is not None:
        config.steps = steps
    if encoder is None:
        encoder = build_encoder(config.loss.encoder, config.loss.layers, vgg_weights, log=log)
    style_dir, sample_dir = bundled_styles(), bundled_samples()
    log(f"training {len(list_images(style_dir))} styles from {style_dir} on the sample photos "
        f"({'GPU' if on_gpu else f'CPU, {seconds:.0f}s budget'})")
    result = train([style_dir], sample_dir, out / "model.pt", config, device=device,
                   encoder=encoder, samples=False, progress=progress,
                   time_budget=None if on_gpu and steps is None else seconds, log=log)
    stylizer = TorchStylizer(result.checkpoint, device=device)
    names = stylizer.style_names
    columns = ["photo", *names]
    blends = [(a, b) for a, b in DEMO_BLENDS if a in names and b in names]
    columns += [f"{a}+{b}" for a, b in blends]
    vectors = [blend_weights([(n, 1.0)], names) for n in names]
    vectors += [blend_weights([(a, 0.5), (b, 0.5)], names) for a, b in blends]
    rows = []
    for photo in list_images(sample_dir):
        image = load_image(photo, max_size=256)
        batch = np.repeat(image[None], len(vectors), axis=0)
        outputs = stylizer.run(batch, np.stack(vectors))
        rows.append([image, *outputs])
    sheet = contact_sheet(rows, columns, cell=160)
    sheet_path = save_image(out / "contact_sheet.jpg", sheet, quality=92)
    elapsed = time.perf_counter() - started
    log(f"wrote {result.checkpoint} ({result.step} steps, {result.images_per_second:.1f} img/s)")
    log(f"wrote {sheet_path} ({len(rows)} photos x {len(columns) - 1} styles/blends)")
    log(f"demo finished in {elapsed:.0f}s")
    return DemoResult(out, result.checkpoint, sheet_path, result.step, elapsed)
