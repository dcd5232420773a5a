"""--style-scale (infer/scale.py): S = 1 is today's output bit for bit, sizes are kept,
bad scales are one line, the guided filter keeps the photo's edges, and the ONNX and
PyTorch paths agree."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_NAMES, make_tiny_model
from PIL import Image

from cin_style.cli.main import cli
from cin_style.deploy.export import export
from cin_style.errors import ConfigError
from cin_style.infer import scale as scale_mod
from cin_style.infer.loader import load_stylizer
from cin_style.infer.pipeline import stylize_images
from cin_style.infer.scale import check_style_scale, joint_bilateral_upsample, luminance, shrink, stylize_at_scale
from cin_style.io.synthetic import textured
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

BLEND = np.array([0.2, 0.5, 0.3], np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    atomic_torch_save(make_checkpoint(make_tiny_model(), TINY_NAMES), root / "m.pt")
    export(root / "m.pt", root / "m.onnx", verify=False, tiled_sibling=False)
    return root


def stylize(models, tmp_path, photo: np.ndarray, *extra, model="m.onnx", name="out.png"):
    Image.fromarray(photo).save(tmp_path / "in.png")
    result = CliRunner().invoke(cli, ["stylize", str(models / model), str(tmp_path / "in.png"), "-o",
                                      str(tmp_path / name), "--style", "beta=0.6,gamma=0.4", *extra])
    return result, (tmp_path / name)


def test_scale_1_is_todays_output_bit_for_bit(models, tmp_path):
    photo = textured(90, 120, seed=1, noise=20)
    for model in ("m.onnx", "m.pt"):
        _, plain = stylize(models, tmp_path, photo, "--strength", "0.7", model=model, name="plain.png")
        result, one = stylize(models, tmp_path, photo, "--strength", "0.7", "--style-scale", "1", model=model,
                              name="one.png")
        assert result.exit_code == 0, result.output
        assert plain.read_bytes() == one.read_bytes()
    stylizer = load_stylizer(models / "m.onnx", device="cpu")
    assert np.array_equal(stylize_images(stylizer, photo, BLEND, style_scale=1), stylize_images(stylizer, photo, BLEND))


@pytest.mark.parametrize("height,width,scale", [(97, 131, 2), (64, 200, 3), (121, 77, 1.5), (300, 260, 4)])
def test_the_output_has_the_inputs_size(models, tmp_path, height, width, scale):
    photo = textured(height, width, seed=2, noise=20)
    result, out = stylize(models, tmp_path, photo, "--style-scale", str(scale))
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (width, height)
    stylizer = load_stylizer(models / "m.pt", device="cpu")
    assert stylize_images(stylizer, photo, BLEND, style_scale=scale).shape == (height, width, 3)


def test_bad_scales_are_one_line(models, tmp_path):
    photo = textured(60, 80, seed=3, noise=20)
    in_range = "style scale must be in [1, 16]"
    for value, code, words in [("0.5", 2, in_range), ("nan", 2, in_range), ("17", 2, in_range),
                               ("abc", 2, "a number >= 1 or auto")]:
        result, _ = stylize(models, tmp_path, photo, "--style-scale", value)
        assert result.exit_code == code and words in result.output and "Traceback" not in result.output, result.output
    # A scale that shrinks this photo under the network's 16 px fails that file alone.
    result, out = stylize(models, tmp_path, photo, "--style-scale", "8")
    assert result.exit_code == 1 and "under the network's 16 px" in result.output and not out.exists()
    for bad in (0.99, float("nan"), float("inf"), 16.5, "x", None):
        with pytest.raises(ConfigError):
            check_style_scale(bad)
    mask = tmp_path / "mask.png"
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(mask)
    result, _ = stylize(models, tmp_path, photo, "--style-scale", "2", "--style-mask", f"alpha={mask}", model="m.pt")
    assert result.exit_code == 2 and "do not go together" in result.output


def test_onnx_and_pytorch_paths_agree(models):
    photo = textured(150, 190, seed=4, noise=20)
    graph = stylize_images(load_stylizer(models / "m.onnx", device="cpu"), photo, BLEND, style_scale=2.5)
    torch_out = stylize_images(load_stylizer(models / "m.pt", device="cpu"), photo, BLEND, style_scale=2.5)
    assert np.abs(graph.astype(int) - torch_out).max() <= 1


def test_the_upsampling_keeps_the_photos_edges_and_the_networks_values():
    """A photo with a vertical step edge and a low-resolution output of one colour per side:
    joint bilateral upsampling puts the colour change exactly at the photo's edge, where
    bilinear smears it over several pixels, and it only mixes the network's own values."""
    photo = np.zeros((64, 96, 3), np.uint8)
    photo[:, 41:] = 200
    small = shrink(photo, (24, 16))
    guide = luminance(small) / 255
    dark, light = np.array([0.1, 0.8, 0.3], np.float32), np.array([0.9, 0.2, 0.6], np.float32)
    stylized = np.where(guide[:, :, None] < 0.4, dark, light).astype(np.float32)
    out = joint_bilateral_upsample(stylized, photo, guide)
    assert np.abs(out[:, :41] - dark).max() < 0.02 and np.abs(out[:, 41:] - light).max() < 0.02
    bilinear = stylize_at_scale(lambda s: stylized, photo, 4, method="bilinear")
    assert np.abs(bilinear[:, 39:43] - np.where(np.arange(39, 43)[None, :, None] < 41, dark, light)).max() > 0.2
    assert (out >= stylized.min(axis=(0, 1)) - 1e-6).all() and (out <= stylized.max(axis=(0, 1)) + 1e-6).all()
    guided = stylize_at_scale(lambda s: stylized, photo, 4, method="guided")  # measured alternative
    assert guided.shape == out.shape
    with pytest.raises(ConfigError, match="method"):
        stylize_at_scale(lambda s: stylized, photo, 4, method="nearest")


def test_larger_scales_make_larger_texture(models):
    """The network's texture on a flat photo with fine noise: its autocorrelation length
    grows with S."""
    rng = np.random.default_rng(5)
    photo = np.clip(128 + rng.normal(0, 40, (192, 192, 3)), 0, 255).astype(np.uint8)
    stylizer = load_stylizer(models / "m.onnx", device="cpu")

    def correlation_length(image):
        y = luminance(image.astype(np.float32))
        y = y - y.mean()
        spectrum = np.abs(np.fft.fft2(y)) ** 2
        corr = np.real(np.fft.ifft2(spectrum))[0]
        corr /= corr[0]
        return int(np.argmax(corr[: len(corr) // 2] < 0.5))

    lengths = [correlation_length(stylize_images(stylizer, photo, BLEND, style_scale=s)) for s in (1, 2, 4)]
    assert lengths[0] < lengths[1] < lengths[2], lengths


def test_video_and_the_service_take_it(models, tmp_path, monkeypatch):
    from cin_style.video.stylize import stylize_frames

    stylizer = load_stylizer(models / "m.onnx", device="cpu")
    frames = [textured(64, 80, seed=i, noise=20) for i in range(3)]
    out = list(stylize_frames(stylizer, frames, BLEND, consistency="none", style_scale=2))
    assert all(np.array_equal(o, stylize_images(stylizer, f, BLEND, style_scale=2)) for o, f in zip(out, frames))
    monkeypatch.setattr(scale_mod, "MAX_STYLE_SCALE", 16.0)
    with pytest.raises(ConfigError):
        list(stylize_frames(stylizer, frames, BLEND, style_scale=0.5))


def test_auto_follows_the_photo_size_and_says_what_ran(models, tmp_path):
    """--style-scale auto (the default): the network sees about AUTO_NETWORK_PIXELS, in
    quarter steps; photos up to about 1.3 MP run as at S = 1, bit for bit."""
    from cin_style.infer.scale import AUTO_STYLE_SCALE, DEFAULT_STYLE_SCALE, scale_for

    assert DEFAULT_STYLE_SCALE == AUTO_STYLE_SCALE == check_style_scale("Auto")
    sizes = {(640, 480): 1.0, (1280, 1024): 1.0, (2048, 2048): 2.0, (4000, 3000): 3.25, (8000, 6000): 6.75,
             (16, 16): 1.0, (100_000, 100_000): 16.0}
    assert {size: scale_for("auto", *size) for size in sizes} == sizes
    assert scale_for(2.5, 16, 16) == 2.5
    small = textured(60, 80, seed=3, noise=20)
    auto = stylize_images(load_stylizer(models / "m.pt", device="cpu"), small, BLEND)
    one = stylize_images(load_stylizer(models / "m.pt", device="cpu"), small, BLEND, style_scale=1)
    assert np.array_equal(auto, one)
    photo = textured(1200, 1600, seed=5, noise=20)  # 1.9 MP: auto runs it at 1.25
    Image.fromarray(photo).save(tmp_path / "big.png")
    for extra, scale, route in [((), 1.25, "scaled"), (("--style-scale", "1"), 1.0, "tiled")]:
        result = CliRunner().invoke(cli, ["stylize", str(models / "m.pt"), str(tmp_path / "big.png"), "-o",
                                          str(tmp_path / "big-out.png"), "--json", *extra])
        assert result.exit_code == 0, result.output
        facts = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
        assert (facts["style_scale"], facts["route"]) == (scale, route)
