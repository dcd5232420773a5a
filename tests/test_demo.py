from conftest import random_encoder
from PIL import Image

from cin_style.assets.bundled import bundled_samples, bundled_styles
from cin_style.evaluate.demo import TRAIN_DEMO_STYLES, train_demo
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
    n_styles, n_photos = len(TRAIN_DEMO_STYLES), len(list_images(bundled_samples()))
    with Image.open(result.sheet) as sheet:
        # photo column + a column per style + 3 blends; a header row + a row per photo
        assert sheet.size == ((1 + n_styles + 3) * 160, 18 + n_photos * 160)
