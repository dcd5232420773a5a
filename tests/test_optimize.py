
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import write_image

from cin_style.cli.main import cli
from cin_style.config import LossConfig, OptimizeConfig
from cin_style.losses.perceptual import blend_grams, gram_matrix
from cin_style.nn.vgg import VGGEncoder
from cin_style.optimize.gatys import optimize_image

TINY_GATYS = LossConfig(encoder="vgg19", content_layers={"conv2_2": 1.0},
                        style_layers={"conv1_1": 1.0, "conv2_1": 1.0}, style_weight=1e3, tv_weight=1e-2)


def _encoder():
    torch.manual_seed(0)
    return VGGEncoder("vgg19", TINY_GATYS.layers, preprocessing="caffe")


def test_gatys_lowers_its_loss_on_a_tiny_image():
    rng = np.random.default_rng(0)
    content = rng.random((24, 28, 3)).astype(np.float32)
    style = rng.random((32, 32, 3)).astype(np.float32) ** 3
    for optimizer in ("lbfgs", "adam"):
        config = OptimizeConfig(size=32, steps=8, scales=1, optimizer=optimizer, loss=TINY_GATYS)
        result = optimize_image(content, [style], [1.0], config, _encoder())
        losses = [r["loss"] for r in result.history]
        assert len(losses) == 8 and losses[-1] < 0.7 * losses[0], (optimizer, losses)
        assert result.image.shape == content.shape
        assert result.image.min() >= 0 and result.image.max() <= 1
        assert np.abs(result.image - content).mean() > 1e-3  # it moved away from the photo


def test_coarse_to_fine_runs_each_level():
    content = np.random.default_rng(1).random((40, 36, 3)).astype(np.float32)
    config = OptimizeConfig(size=40, steps=2, scales=2, init="noise", loss=TINY_GATYS)
    result = optimize_image(content, [content], [1.0], config, _encoder())
    assert [r["size"] for r in result.history] == [[20, 18]] * 4 + [[40, 36]] * 2


def test_multi_style_gram_blend_equals_weighted_gram_target():
    a, b = torch.rand(1, 4, 5, 6), torch.rand(1, 4, 5, 6)
    grams = {"x": torch.cat([gram_matrix(a), gram_matrix(b)])}
    blended = blend_grams(grams, [0.25, 0.75])
    torch.testing.assert_close(blended["x"], 0.25 * gram_matrix(a)[0] + 0.75 * gram_matrix(b)[0])
    with pytest.raises(ValueError, match="3 blend weights for 2 style targets"):
        blend_grams(grams, [0.2, 0.3, 0.5])


def test_optimize_rejects_bad_weights():
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(ValueError, match="one weight per style"):
        optimize_image(image, [image], [1.0, 2.0], OptimizeConfig(size=32, loss=TINY_GATYS), _encoder())
    with pytest.raises(ValueError, match="finite"):
        optimize_image(image, [image], [float("nan")], OptimizeConfig(size=32, loss=TINY_GATYS), _encoder())


def test_optimize_cli_end_to_end(tmp_path):
    torch.manual_seed(2)
    enc = VGGEncoder("vgg19", ["relu5_4"], preprocessing="caffe")
    weights = tmp_path / "vgg19-random.pt"
    torch.save({**{k.replace("stack.", ""): v for k, v in enc.state_dict().items()},
                "preprocessing": "caffe"}, weights)
    photo = write_image(tmp_path / "photo.png", seed=1, size=(40, 30))
    style_a = write_image(tmp_path / "a.png", seed=2, size=(32, 32))
    style_b = write_image(tmp_path / "b.png", seed=3, size=(32, 32))
    out = tmp_path / "out.png"
    result = CliRunner().invoke(cli, [
        "optimize", str(photo), str(style_a), f"{style_b}=0.5", "-o", str(out), "--size", "48",
        "--steps", "2", "--content-layers", "conv2_2", "--style-layers", "conv1_1,conv2_1",
        "--vgg-weights", str(weights), "--frames-every", "2", "--preserve-color", "-q",
        "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "48x36" in result.output and out.is_file()
    assert len(list((tmp_path / "out_frames").iterdir())) >= 1
    bad = CliRunner().invoke(cli, ["optimize", str(photo), str(tmp_path / "missing.jpg"), "-o",
                                   str(out), "--vgg-weights", str(weights)])
    assert bad.exit_code == 1 and "no such file" in bad.output
