import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import random_encoder

from cin_style.cli.main import cli
from cin_style.evaluate.scores import EVAL_LOSS, evaluate, format_report, luminance, ssim
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint


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
                    blends=["alpha=1,beta=1"], size=48)["report"]


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


def test_report_table_lists_every_row(tiny_checkpoint, content_dir, style_dir):
    table = format_report(_run(tiny_checkpoint, content_dir, style_dir))
    for text in ("alpha", "beta", "gamma", "alpha=0.5,beta=0.5", "blend path alpha → beta"):
        assert text in table


def test_with_optimize_scores_a_gatys_reference(tiny_checkpoint, content_dir, style_dir):
    from cin_style.nn.vgg import VGGEncoder

    stylizer = TorchStylizer(tiny_checkpoint, device="cpu")
    torch.manual_seed(0)
    gatys_encoder = VGGEncoder("vgg19", ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2",
                                         "conv5_1"], preprocessing="caffe")
    report = evaluate(stylizer, sorted(content_dir.glob("*.png"))[:1],
                      {n: style_dir / f"{n}.png" for n in stylizer.style_names},
                      random_encoder(EVAL_LOSS.layers), size=32, optimize_steps=1,
                      optimize_encoder=gatys_encoder)["report"]
    assert set(report["optimize_reference"]) == {"alpha", "beta", "gamma"}
    assert all(np.isfinite(v) for m in report["optimize_reference"].values() for v in m.values())


def test_evaluate_cli_json_and_sheet(tiny_checkpoint, content_dir, vgg_weights_file, tmp_path):
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(cli, ["evaluate", str(tiny_checkpoint), "--content", str(content_dir),
                                      "--limit", "1", "--json", "--sheet", str(sheet), "-q",
                                      "--pair", "beta,gamma", "--vgg-weights", str(vgg_weights_file),
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["styles"]) == {"alpha", "beta", "gamma"} and sheet.is_file()
    assert report["blend_path"]["from"] == "beta" and report["eval_network"]["size"] == 256
    missing = CliRunner().invoke(cli, ["evaluate", str(tiny_checkpoint), "--content",
                                       str(tmp_path / "none"), "--vgg-weights", str(vgg_weights_file)])
    assert missing.exit_code == 2 and "content folder not found" in missing.output


def test_only_scores_the_named_styles_with_the_same_numbers(tiny_checkpoint, content_dir, style_dir):
    stylizer = TorchStylizer(tiny_checkpoint, device="cpu")
    photos = sorted(content_dir.glob("*.png"))[:2]
    full = _run(tiny_checkpoint, content_dir, style_dir)
    # only needs the paintings of the styles it scores
    part = evaluate(stylizer, photos, {"gamma": style_dir / "gamma.png", "beta": style_dir / "beta.png"},
                    random_encoder(EVAL_LOSS.layers), only=["gamma", "beta"], size=48)["report"]
    assert list(part["styles"]) == ["gamma", "beta"]
    assert part["styles"]["gamma"] == full["styles"]["gamma"]
    assert part["blend_path"]["from"] == "gamma" and part["blend_path"]["to"] == "beta"
    with pytest.raises(ValueError, match="delta"):
        evaluate(stylizer, photos, {}, random_encoder(EVAL_LOSS.layers), only=["delta"], size=48)


class IdentityStylizer:
    """Returns the photo: content loss must be 0 and SSIM 1, whatever the style."""

    style_names = ["alpha", "beta"]
    device = "cpu"

    def run(self, images, weights):
        return images


def test_identity_stylizer_scores_content_zero_and_ssim_one(content_dir, style_dir):
    photos = sorted(content_dir.glob("*.png"))[:2]
    styles = {n: style_dir / f"{n}.png" for n in IdentityStylizer.style_names}
    report = evaluate(IdentityStylizer(), photos, styles, random_encoder(EVAL_LOSS.layers), size=48)["report"]
    for metrics in report["styles"].values():
        assert metrics["content"] == 0 and metrics["ssim"] == pytest.approx(1.0, abs=1e-6)
        assert metrics["style"] > 0 and metrics["tv"] > 0
    # the same photos for every style: only the style column may differ
    alpha, beta = report["styles"]["alpha"], report["styles"]["beta"]
    assert alpha["tv"] == beta["tv"] and alpha["style"] != beta["style"]


@pytest.mark.parametrize("model", [None, "reference"])
def test_bundled_model_sheet_lands_in_the_current_folder(tiny_checkpoint, content_dir, vgg_weights_file,
                                                         tmp_path, monkeypatch, model):
    """Named or by default, a bundled model's sheet never lands in the installed package."""
    from cin_style.assets import bundled
    from cin_style.evaluate.scores import evaluate_model

    monkeypatch.setattr(bundled, "reference_model", lambda: tiny_checkpoint)
    monkeypatch.setattr(bundled, "bundled_model", lambda name: tiny_checkpoint)
    monkeypatch.chdir(tmp_path / "content")
    result = evaluate_model(model, content_dir, limit=1, vgg_weights=vgg_weights_file, device="cpu")
    assert result.sheet == (tmp_path / "content" / "m_evaluation.png").relative_to(tmp_path / "content")
    assert (tmp_path / "content" / "m_evaluation.png").is_file()
    assert not (tiny_checkpoint.parent / "m_evaluation.png").exists()
