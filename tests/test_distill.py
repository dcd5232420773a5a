"""Distillation (cin-style train --teacher): a small student learns a trained teacher."""

import numpy as np
import pytest
import torch
from conftest import TINY_NAMES, make_tiny_model, random_encoder, tiny_train_config

from cin_style.cli.main import cli
from cin_style.config import NETWORK_PRESETS, ConfigError, DistillConfig, StyleNetConfig
from cin_style.data.photos import center_crops
from cin_style.nn.checkpoint import CheckpointError, load_checkpoint, make_checkpoint
from cin_style.nn.stylenet import StyleNet
from cin_style.train.distill import distill_loss, draw_weights
from cin_style.train.recipes import add_styles, train


@pytest.fixture
def teacher_file(tmp_path):
    """The tiny 3-style model (distinct γ/β per style) saved as a teacher checkpoint."""
    path = tmp_path / "teacher.pt"
    torch.save(make_checkpoint(make_tiny_model(), TINY_NAMES), path)
    return path


def distill_config(teacher, **overrides):
    base = dict(network=StyleNetConfig(base_width=3, num_residual_blocks=1, outer_kernel=3),
                distill=DistillConfig(teacher=str(teacher)))
    return tiny_train_config(**{**base, **overrides})


def run(style_dir, content_dir, out, config, **kw):
    return train([style_dir], content_dir, out, config, device="cpu", encoder=random_encoder(),
                 samples=False, **kw)


def test_drawn_weights_are_one_styles_or_two_style_blends():
    generator = torch.Generator().manual_seed(0)
    trained = torch.tensor([1, 3, 4])
    weights = draw_weights(trained, 6, 400, 0.5, generator)
    assert weights.shape == (400, 6)
    assert torch.allclose(weights.sum(dim=1), torch.ones(400))
    assert (weights[:, [0, 2, 5]] == 0).all()  # only the trained styles' columns
    nonzero = (weights > 0).sum(dim=1)
    assert set(nonzero.tolist()) == {1, 2}
    assert 0.35 < (nonzero == 2).float().mean() < 0.65
    assert (draw_weights(trained, 6, 50, 0.0, generator) > 0).sum(dim=1).eq(1).all()
    single = draw_weights(torch.tensor([2]), 3, 20, 1.0, generator)  # one style: nothing to blend
    assert torch.equal(single, torch.tensor([0.0, 0.0, 1.0]).expand(20, 3))


def test_distill_loss_is_zero_only_for_the_teachers_output():
    encoder = random_encoder()
    config = DistillConfig(teacher="t.pt", feature_weight=0.5)
    image = torch.rand(2, 3, 24, 24)
    total, parts = distill_loss(image, image.clone(), encoder, ["relu2_2"], config)
    assert float(total) == 0 and set(parts) == {"pixel", "feature"}
    total, parts = distill_loss(image, image.flip(-1), encoder, ["relu2_2"], config)
    assert float(parts["pixel"]) > 0 and float(parts["feature"]) > 0
    assert torch.isclose(total, parts["pixel"] + parts["feature"])
    with pytest.raises(ValueError, match="differ in shape"):
        distill_loss(image, image[:, :, :20], encoder, ["relu2_2"], config)
    with pytest.raises(ConfigError, match="blend share"):
        DistillConfig(teacher="t.pt", blend_share=1.5)


def test_student_learns_the_teacher(style_dir, content_dir, teacher_file, tmp_path):
    config = distill_config(teacher_file, steps=150, checkpoint_every=150, lr=2e-2)
    result = run(style_dir, content_dir, tmp_path / "s.pt", config)
    pixel = [r["pixel"] for r in result.history]
    assert np.mean(pixel[-10:]) < 0.6 * np.mean(pixel[:10])
    assert result.model.config.base_width == 3 and result.style_names == TINY_NAMES
    data = load_checkpoint(tmp_path / "s.pt")
    stored = data["train_config"]["distill"]
    assert stored["teacher"] == str(teacher_file) and len(stored["teacher_sha256"]) == 64
    # every style's output moved towards the teacher's for that style (from the same init)
    teacher = make_tiny_model()
    torch.manual_seed(config.seed)
    untrained = StyleNet(StyleNetConfig(**{**config.network.to_dict(), "num_styles": 3})).eval()
    photos = center_crops(content_dir, 24)
    with torch.no_grad():
        for k in range(3):
            w = torch.eye(3)[[k]].expand(len(photos), 3)
            target = teacher(photos, w)
            before = (untrained(photos, w) - target).abs().mean()
            after = (result.model(photos, w) - target).abs().mean()
            assert after < 0.8 * before


def test_distillation_resumes_exactly_and_refuses_a_changed_teacher(style_dir, content_dir,
                                                                   teacher_file, tmp_path):
    straight = run(style_dir, content_dir, tmp_path / "a.pt", distill_config(teacher_file, steps=4))
    run(style_dir, content_dir, tmp_path / "b.pt", distill_config(teacher_file, steps=2))
    resumed = run(style_dir, content_dir, tmp_path / "b.pt", distill_config(teacher_file, steps=4),
                  resume=True)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = make_tiny_model()
    with torch.no_grad():
        other.cin_layers()[0].beta.add_(1)
    torch.save(make_checkpoint(other, TINY_NAMES), teacher_file)
    with pytest.raises(CheckpointError, match="changed since this run began"):
        run(style_dir, content_dir, tmp_path / "b.pt", distill_config(teacher_file, steps=6), resume=True)


def test_teacher_must_hold_the_same_styles(style_dir, content_dir, tmp_path):
    path = tmp_path / "teacher.pt"
    torch.save(make_checkpoint(make_tiny_model(), ["alpha", "gamma", "beta"]), path)
    with pytest.raises(CheckpointError, match="same names, same order"):
        run(style_dir, content_dir, tmp_path / "s.pt", distill_config(path))
    with pytest.raises(CheckpointError, match="not found"):
        run(style_dir, content_dir, tmp_path / "s.pt", distill_config(tmp_path / "none.pt"))


def test_add_style_to_a_distilled_model_uses_the_paintings(style_dir, content_dir, teacher_file,
                                                           tmp_path):
    run(style_dir, content_dir, tmp_path / "s.pt", distill_config(teacher_file))
    teacher_file.unlink()  # the teacher is not needed to add a style
    extra = tmp_path / "more" / "delta.png"
    extra.parent.mkdir()
    extra.write_bytes((style_dir / "alpha.png").read_bytes())
    result = add_styles(tmp_path / "s.pt", [extra], content_dir, tmp_path / "s4.pt", steps=2,
                        device="cpu", encoder=random_encoder(), samples=False)
    assert result.style_names == TINY_NAMES + ["delta"]
    assert set(result.history[-1]) >= {"content", "style", "tv"}
    assert load_checkpoint(tmp_path / "s4.pt")["train_config"]["distill"] is None


def test_lite_preset_is_the_small_network():
    lite = StyleNet(NETWORK_PRESETS["lite"])
    full = StyleNet(NETWORK_PRESETS["default"])
    assert lite.flops(100, 100) / 2 / 1e4 <= 20_000  # multiply-adds per pixel
    assert full.flops(100, 100) / 2 / 1e4 == pytest.approx(153_792, rel=0.01)


def test_cli_distills_with_a_preset_and_says_what_is_wrong(style_dir, content_dir, teacher_file,
                                                           vgg_weights_file, tmp_path):
    from click.testing import CliRunner

    common = ["train", "--styles", str(style_dir), "--content", str(content_dir), "--steps", "2",
              "--batch-size", "2", "--image-size", "24", "--style-size", "32",
              "--content-layers", "relu2_2", "--style-layers", "relu1_2,relu2_2",
              "--vgg-weights", str(vgg_weights_file), "--device", "cpu", "-q"]
    out = tmp_path / "lite.pt"
    result = CliRunner().invoke(cli, [*common, "--out", str(out), "--net", "lite", "--base-width", "4",
                                      "--teacher", str(teacher_file), "--blend-share", "1"])
    assert result.exit_code == 0, result.output
    data = load_checkpoint(out)
    assert data["model_config"]["base_width"] == 4 and data["model_config"]["outer_kernel"] == 3
    assert data["train_config"]["distill"]["blend_share"] == 1.0
    bad = CliRunner().invoke(cli, [*common, "--out", str(tmp_path / "x.pt"),
                                   "--teacher", str(tmp_path / "missing.pt")])
    assert bad.exit_code != 0 and "teacher model not found" in bad.output
    assert "Traceback" not in bad.output
