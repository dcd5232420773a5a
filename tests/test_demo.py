import numpy as np
from conftest import random_encoder
from PIL import Image

from cin_style.assets.bundled import bundled_samples, bundled_styles
from cin_style.evaluate.demo import TRAIN_DEMO_STYLES, train_demo
from cin_style.evaluate.sheet import GAP
from cin_style.io.image import list_images


def test_bundled_data_is_installed_with_credits():
    styles = list_images(bundled_styles())
    assert len(styles) == 17 and {p.stem for p in styles} >= set(TRAIN_DEMO_STYLES)
    credits = (bundled_styles() / "CREDITS.md").read_text()
    assert all(p.name in credits for p in styles)
    samples = list_images(bundled_samples())
    assert samples and all(p.name in (bundled_samples() / "CREDITS.md").read_text() for p in samples)


def test_training_demo_writes_checkpoint_and_contact_sheet(tmp_path):
    encoder = random_encoder(("relu1_2", "relu2_2", "relu3_3"))
    result = train_demo(tmp_path / "demo", steps=1, device="cpu", encoder=encoder)
    assert result.checkpoint.is_file() and result.steps == 1
    photos = list_images(bundled_samples())
    with Image.open(result.sheet) as sheet:
        # photo column + a column per style + 3 blends, each 160 px wide; a row per photo,
        # as tall as its aspect asks (no blank bands), under a header of labels
        assert sheet.width == (1 + len(TRAIN_DEMO_STYLES) + 3) * (160 + GAP)
        rows = sum(round(160 * h / w) + GAP for w, h in (Image.open(p).size for p in photos))
        header = sheet.height - rows
        assert 14 <= header <= 2 * 30 + GAP  # one or two lines of labels
        pixels = np.asarray(sheet.convert("L"), np.float32)
        cell = pixels[header + 2 : header + 50, 2:150]  # the first photo's cell: picture, not paper
        assert cell.std() > 10
