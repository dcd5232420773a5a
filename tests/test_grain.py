"""The grain (infer/grain.py): flat regions get the painting's texture instead of horizontal
stripes; off is bit-identical; the same pattern in one piece, in tiles, in a batch."""

import numpy as np
import pytest
import torch
from conftest import TINY_NAMES

from cin_style.errors import UsageError
from cin_style.infer.grain import DEFAULT_GRAIN, MAX_GRAIN, check_grain, grain_rows, with_grain
from cin_style.infer.pipeline import Pipeline
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.io.synthetic import textured


def stripe_score(image: np.ndarray) -> float:
    """Horizontal over vertical gradient energy: near 0 for horizontal stripes, near 1 for
    texture that runs every way."""
    x = image.astype(np.float64)
    return float(np.mean(np.diff(x, axis=1) ** 2) / max(np.mean(np.diff(x, axis=0) ** 2), 1e-12))


def gradient(height: int, width: int) -> np.ndarray:
    """A perfectly smooth vertical gradient: a sky with nothing along its rows."""
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    colours = np.array([60, 120, 230], np.float32) + t * np.array([150, 100, -60], np.float32)
    return np.broadcast_to(colours, (height, width, 3)).round().astype(np.uint8).copy()


def test_the_pattern_is_small_centred_and_a_function_of_position():
    g = grain_rows(np.arange(64), 96, 3)
    assert g.dtype == np.int16 and g.min() == -3 and g.max() == 3 and abs(g.mean()) < 0.05
    # Rows 10..19 alone give rows 10..19 of the whole: the same pattern in any strip or tile.
    assert np.array_equal(grain_rows(np.arange(10, 20), 96, 3), g[10:20])
    assert np.array_equal(grain_rows(np.arange(64), 50, 3), g[:, :50])
    assert not np.array_equal(g[..., 0], g[..., 1])  # each channel its own
    assert (np.abs(g) <= 1).mean() > 0.5  # most values near 0 (two bytes summed)


def test_off_is_bit_identical_and_bad_amplitudes_are_refused():
    photo = textured(20, 30, seed=1)
    assert with_grain(photo, 0) is photo
    floats = photo.astype(np.float32) / 255
    assert np.abs(with_grain(floats, 2) * 255 - with_grain(photo, 2)).max() < 1e-3
    for bad in (-1, MAX_GRAIN + 1, 1.5, True, "3"):
        with pytest.raises(UsageError, match="grain"):
            check_grain(bad)
    assert check_grain(DEFAULT_GRAIN) == DEFAULT_GRAIN


@pytest.fixture(scope="module")
def stylizer(model):
    return TorchStylizer.from_model(model.eval())


def test_a_smooth_gradient_gets_texture_with_the_default_grain_and_stripes_without(stylizer):
    sky, row = gradient(96, 128), np.array([1, 0, 0], np.float32)
    striped = Pipeline(stylizer, grain=0).stylize([sky], row[None])[0]
    textured_sky = Pipeline(stylizer).stylize([sky], row[None])[0]
    assert stripe_score(striped) < 0.01  # every row one colour: nothing to texture along it
    assert stripe_score(textured_sky) > 0.5


def test_one_piece_tiles_and_batches_see_the_same_grain(stylizer):
    photos = [gradient(80, 112), textured(80, 112, seed=2)]
    rows = np.array([[1, 0, 0], [0, 0.5, 0.5]], np.float32)
    whole = Pipeline(stylizer).stylize(photos, rows)
    tiled = Pipeline(stylizer, tile=64).stylize(photos, rows)
    alone = [Pipeline(stylizer).stylize([p], r[None])[0] for p, r in zip(photos, rows)]
    for w, t, a in zip(whole, tiled, alone):
        assert np.abs(w.astype(int) - a).max() <= 1 and np.abs(w.astype(int) - t).max() <= 2  # batched sums round apart


def test_grain_off_gives_exactly_the_network_without_it(stylizer, model):
    photo, row = textured(48, 64, seed=5), np.array([0.2, 0.5, 0.3], np.float32)
    out = Pipeline(stylizer, grain=0).stylize([photo], row[None], as_float=True)[0]
    with torch.no_grad():
        direct = model(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255, torch.from_numpy(row)[None])
    assert np.array_equal(out, direct[0].permute(1, 2, 0).numpy())
    assert TINY_NAMES == stylizer.style_names


def failure_modes() -> dict[str, np.ndarray]:
    """Synthetic stand-ins for what real photos bring, each with a flat sky in its top quarter:
    an upscaled small photo, a heavily compressed JPEG, a noisy low-light shot."""
    import io

    from PIL import Image

    sky = gradient(72, 96)
    upscaled = np.asarray(Image.fromarray(sky[::6, ::6]).resize((96, 72), Image.Resampling.BICUBIC))
    buffer = io.BytesIO()
    Image.fromarray(sky).save(buffer, "JPEG", quality=12)
    compressed = np.asarray(Image.open(buffer).convert("RGB"))
    noise = np.random.default_rng(0).normal(0, 6, sky.shape)
    dark = (sky.astype(np.float32) * 0.25 + noise).clip(0, 255).astype(np.uint8)
    return {"upscaled": upscaled, "jpeg": compressed, "dark": dark}


@pytest.mark.parametrize("mode", ["upscaled", "jpeg", "dark"])
def test_the_failure_modes_get_texture_in_their_flat_regions(stylizer, mode):
    photo, row = failure_modes()[mode], np.array([0, 1, 0], np.float32)
    top = slice(0, photo.shape[0] // 4)
    without = stripe_score(Pipeline(stylizer, grain=0).stylize([photo], row[None])[0][top])
    with_grain_ = stripe_score(Pipeline(stylizer).stylize([photo], row[None])[0][top])
    if mode == "dark":  # its own noise is texture already: stripes neither way
        assert without > 0.3 and with_grain_ > 0.3
    else:  # nothing varies along the sky's rows: stripes without the grain
        assert without < 0.05 < 0.3 < with_grain_, (without, with_grain_)


@pytest.mark.slow
def test_the_default_command_paints_a_smooth_gradient(tmp_path):
    """The issue's case: the default command (bundled reference model, --style-scale auto,
    grain on) on a perfectly smooth 1536x1152 gradient: its horizontal gradient energy is at
    least half its vertical one (stripes: 0)."""
    from click.testing import CliRunner
    from PIL import Image

    from cin_style.cli.main import cli

    Image.fromarray(gradient(1152, 1536)).save(tmp_path / "sky.png")
    runner = CliRunner()
    for out, extra in (("default.png", ()), ("old.png", ("--grain", "0", "--style-scale", "1"))):
        result = runner.invoke(cli, ["stylize", str(tmp_path / "sky.png"), "-o", str(tmp_path / out),
                                     "--style", "starry_night", *extra])
        assert result.exit_code == 0, result.output
    assert stripe_score(np.asarray(Image.open(tmp_path / "default.png"))) >= 0.5
    assert stripe_score(np.asarray(Image.open(tmp_path / "old.png"))) < 0.01
