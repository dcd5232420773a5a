"""Per-region style masks: per-pixel blends in the network (regional statistics),
the masks graph variant, mask files → weight maps, and the CLI."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_NAMES, write_image
from PIL import Image

from cin_style.blend.masks import parse_mask_specs, weight_map
from cin_style.cli.main import cli
from cin_style.deploy.onnx_export import export_onnx
from cin_style.errors import UsageError
from cin_style.infer.onnx_runner import RunnerError, StyleRunner
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

NAMES = TINY_NAMES


def image(h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)])
    return torch.from_numpy((0.7 * base + 0.3 * rng.random((3, h, w))).astype(np.float32))[None]


def run(model, x, weights):
    with torch.no_grad():
        return model(x, torch.as_tensor(weights, dtype=torch.float32))


def test_a_map_that_is_one_style_everywhere_is_the_one_hot_result(model):
    x = image()
    for size in [(1, 1), (5, 7), (48, 64)]:
        everywhere = np.zeros((1, 3, *size), np.float32)
        everywhere[:, 1] = 1
        assert (run(model, x, everywhere) - run(model, x, [[0, 1, 0]])).abs().max() < 1e-4
    mixed = np.zeros((1, 3, 4, 4), np.float32) + np.array([0.2, 0.5, 0.3], np.float32)[None, :, None, None]
    assert (run(model, x, mixed) - run(model, x, [[0.2, 0.5, 0.3]])).abs().max() < 1e-4


def test_half_and_half_follows_each_style_away_from_the_boundary(model):
    x = image(48, 192)
    split = np.zeros((1, 3, 48, 192), np.float32)
    split[:, 0, :, :96] = 1
    split[:, 2, :, 96:] = 1
    out = run(model, x, split)
    alpha, gamma = run(model, x, [[1, 0, 0]]), run(model, x, [[0, 0, 1]])
    left, right = (slice(None), slice(None), slice(None), slice(0, 64)), \
        (slice(None), slice(None), slice(None), slice(128, 192))
    for region, own, other in [(left, alpha, gamma), (right, gamma, alpha)]:
        near = (out[region] - own[region]).abs().mean()
        far = (out[region] - other[region]).abs().mean()
        # Not equal: each region's statistics see only its own part of the photo
        # (measured with the reference model: 30 dB to its own style, 15 dB to the other).
        assert near < 0.6 * far, (near, far)


def test_model_rejects_maps_of_the_wrong_shape(model):
    with pytest.raises(ValueError, match="per-pixel blends"):
        run(model, image(), np.ones((1, 2, 4, 4), np.float32))


def test_mask_files_become_normalised_weight_maps(tmp_path):
    sky = np.zeros((20, 30), np.uint8)
    sky[:10] = 255
    Image.fromarray(sky).save(tmp_path / "sky.png")
    Image.fromarray(np.full((20, 30), 128, np.uint8)).save(tmp_path / "grey.png")
    base = np.array([1, 0, 0], np.float32)
    maps = weight_map(parse_mask_specs(["gamma=" + str(tmp_path / "sky.png")]), NAMES, base, 40, 60)
    assert maps.shape == (3, 40, 60) and np.allclose(maps.sum(axis=0), 1)
    assert np.allclose(maps[:, 2, 30], [0, 0, 1]) and np.allclose(maps[:, 37, 30], [1, 0, 0])
    both = weight_map(parse_mask_specs([f"gamma={tmp_path / 'sky.png'}", f"beta={tmp_path / 'grey.png'}"]),
                      NAMES, base, 20, 30)
    assert np.allclose(both[:, 2, 5], [0, 0.5 / 1.5, 1 / 1.5], atol=0.01)   # sky + grey: normalised
    assert np.allclose(both[:, 18, 5], [0.5, 0.5, 0], atol=0.01)             # grey + the rest to base
    with pytest.raises(UsageError, match="unknown style"):
        weight_map(parse_mask_specs([f"delta={tmp_path / 'sky.png'}"]), NAMES, base, 20, 30)
    with pytest.raises(UsageError, match="NAME=MASK"):
        parse_mask_specs(["gamma"])
    big = weight_map([], NAMES, base, 3000, 1500)
    assert big.shape == (3, 1024, 512)  # the network resizes maps itself: no need for full size


@pytest.mark.slow
def test_masks_graph_matches_pytorch_and_takes_global_blends(model, tmp_path):
    result = export_onnx(model, NAMES, tmp_path / "masks.onnx", masks=True)
    assert result.parity["max_abs_diff"] < 1e-4
    export_onnx(model, NAMES, tmp_path / "plain.onnx")
    masks, plain = StyleRunner(tmp_path / "masks.onnx", device="cpu"), StyleRunner(tmp_path / "plain.onnx",
                                                                                   device="cpu")
    assert masks.capabilities.masks and not plain.capabilities.masks
    x = image().numpy()
    split = np.zeros((1, 3, 6, 8), np.float32)
    split[:, 0, :, :4], split[:, 1, :, 4:] = 1, 1
    assert np.abs(masks.run_nchw(x, split) - run(model, torch.from_numpy(x), split).numpy()).max() < 1e-4
    blend = np.array([[0.3, 0.3, 0.4]], np.float32)
    assert np.abs(masks.run_nchw(x, blend) - plain.run_nchw(x, blend)).max() < 1e-4
    with pytest.raises(RunnerError, match="export --masks"):
        plain.run_nchw(x, split)


@pytest.mark.slow
def test_stylize_cli_with_style_masks(model, tmp_path):
    checkpoint = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(model, NAMES), checkpoint)
    export_onnx(model, NAMES, tmp_path / "masks.onnx", masks=True)
    export_onnx(model, NAMES, tmp_path / "plain.onnx")
    photo = write_image(tmp_path / "photo.png", seed=2, size=(64, 48))
    left = np.zeros((48, 64), np.uint8)
    left[:, :32] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    runner = CliRunner()
    outs = {}
    for name, model_file in [("pt", checkpoint), ("onnx", tmp_path / "masks.onnx")]:
        result = runner.invoke(cli, ["stylize", str(model_file), str(photo), "-o", str(tmp_path / f"{name}.png"),
                                     "--style", "gamma", "--style-mask", f"alpha={tmp_path / 'left.png'}"])
        assert result.exit_code == 0, result.output
        outs[name] = np.asarray(Image.open(tmp_path / f"{name}.png")).astype(int)
    assert np.abs(outs["pt"] - outs["onnx"]).max() <= 1
    refused = runner.invoke(cli, ["stylize", str(tmp_path / "plain.onnx"), str(photo), "-o",
                                  str(tmp_path / "x.png"), "--style-mask", f"alpha={tmp_path / 'left.png'}"])
    assert refused.exit_code == 2 and "export --masks" in refused.output
    missing = runner.invoke(cli, ["stylize", str(checkpoint), str(photo), "-o", str(tmp_path / "y.png"),
                                  "--style-mask", f"alpha={tmp_path / 'nope.png'}"])
    assert missing.exit_code == 2 and "no such file" in missing.output and "Traceback" not in missing.output


@pytest.mark.slow
def test_export_cli_writes_the_masks_variant(model, tmp_path):
    checkpoint = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(model, NAMES), checkpoint)
    runner = CliRunner()
    done = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "m.onnx"), "--masks"])
    assert done.exit_code == 0 and "per-pixel blends" in done.output, done.output
    assert StyleRunner(tmp_path / "m.onnx", device="cpu").capabilities.masks
    both = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "x.onnx"), "--masks",
                               "--bake", "alpha"])
    assert both.exit_code == 2 and not (tmp_path / "x.onnx").exists()
