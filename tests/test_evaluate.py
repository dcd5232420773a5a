import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cin_style.checkpoint import atomic_torch_save, make_checkpoint
from cin_style.cli import cli
from cin_style.evaluate import EVAL_LOSS, evaluate, luminance, ssim
from cin_style.inference import TorchStylizer

from conftest import random_encoder, write_image


def test_ssim_is_one_for_identical_and_lower_for_noise():
    a = torch.rand(1, 1, 24, 24)
    assert ssim(a, a).item() == pytest.approx(1.0)
    assert ssim(a, torch.rand(1, 1, 24, 24)).item() < 0.5
    assert luminance(torch.ones(1, 3, 2, 2)).allclose(torch.ones(1, 1, 2, 2))


@pytest.fixture
def tiny_checkpoint(tiny_model, style_dir, tmp_path):
    names = ["alpha", "beta", "gamma"]
    return atomic_torch_save(make_checkpoint(tiny_model, names,
                                             style_paths=[str(style_dir / f"{n}.png") for n in names]),
                             tmp_path / "m.pt")


def _run(checkpoint, content_dir, style_dir):
    stylizer = TorchStylizer(checkpoint, device="cpu")
    styles = {n: style_dir / f"{n}.png" for n in stylizer.style_names}
    photos = sorted(content_dir.glob("*.png"))[:2]
    return evaluate(stylizer, photos, styles, random_encoder(EVAL_LOSS.layers),
                    blends=["alpha=1,beta=1"], progress=False)["report"]


def test_evaluate_gives_finite_numbers_for_every_style_and_the_blend_path(tiny_checkpoint, content_dir,
                                                                          style_dir):
    report = _run(tiny_checkpoint, content_dir, style_dir)
    assert set(report["styles"]) == {"alpha", "beta", "gamma"}
    for metrics in [*report["styles"].values(), *report["blends"].values()]:
        assert all(np.isfinite(v) for v in metrics.values())
        assert -1 <= metrics["ssim"] <= 1
    points = report["blend_path"]["points"]
    assert [p["t"] for p in points] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(np.isfinite(p["style_loss_alpha"]) and np.isfinite(p["style_loss_beta"]) for p in points)
    assert points[0]["style_loss_alpha"] == report["styles"]["alpha"]["style"]


def test_evaluate_json_is_stable_across_runs(tiny_checkpoint, content_dir, style_dir):
    first = json.dumps(_run(tiny_checkpoint, content_dir, style_dir), sort_keys=True)
    second = json.dumps(_run(tiny_checkpoint, content_dir, style_dir), sort_keys=True)
    assert first == second


def test_evaluate_cli_json_and_sheet(tiny_checkpoint, content_dir, vgg_weights_file, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(cli, ["evaluate", str(tiny_checkpoint), "--content", str(content_dir),
                                      "--limit", "2", "--json", "--sheet", str(sheet), "-q",
                                      "--vgg-weights", str(vgg_weights_file), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["styles"]) == {"alpha", "beta", "gamma"} and sheet.is_file()
    table = CliRunner().invoke(cli, ["evaluate", str(tiny_checkpoint), "--content", str(content_dir),
                                     "--limit", "1", "--pair", "beta,gamma", "-q", "--sheet",
                                     str(sheet), "--vgg-weights", str(vgg_weights_file)])
    assert table.exit_code == 0 and "blend path beta → gamma" in table.output
    missing = CliRunner().invoke(cli, ["evaluate", str(tiny_checkpoint), "--content",
                                       str(tmp_path / "none"), "--vgg-weights", str(vgg_weights_file)])
    assert missing.exit_code == 2 and "content folder not found" in missing.output
