"""The bundled-model plumbing: image lists, slim fp16 checkpoints, commands
that default to the bundled model, validation during training, the demo."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_tiny_model, random_encoder, tiny_train_config, write_image
from PIL import Image

from cin_style.assets import bundled
from cin_style.cli.main import cli
from cin_style.data.photos import ContentImages, center_crops
from cin_style.data.styles import parse_style_inputs
from cin_style.io.image import list_images
from cin_style.nn.checkpoint import (
    TRAINING_STATE_KEYS,
    CheckpointError,
    export_checkpoint,
    load_checkpoint,
    load_model,
    make_checkpoint,
    slim_checkpoint,
)
from cin_style.train.recipes import train


@pytest.fixture
def image_list(tmp_path, content_dir):
    """A .txt list naming two of the content photos, relative to the list."""
    listing = tmp_path / "lists" / "val.txt"
    listing.parent.mkdir()
    listing.write_text("# validation photos\n../content/photo1.png\n\n../content/nested/deep.jpg  # nested\n")
    return listing


def test_image_list_resolves_relative_to_itself_and_skips_comments(image_list, content_dir):
    assert list_images(image_list) == [content_dir / "photo1.png", content_dir / "nested" / "deep.jpg"]
    assert len(ContentImages(image_list, 16)) == 2
    crops = center_crops(image_list, 16)
    assert crops.shape == (2, 3, 16, 16)


def test_style_inputs_accept_an_image_list(tmp_path, style_dir):
    listing = tmp_path / "styles.txt"
    listing.write_text(f"{style_dir / 'gamma.png'}\n{style_dir / 'alpha.png'}\n")
    assert [s.name for s in parse_style_inputs([listing])] == ["gamma", "alpha"]


@pytest.fixture
def trained_checkpoint(tmp_path, style_dir, content_dir):
    out = tmp_path / "run.pt"
    train([style_dir], content_dir, out, tiny_train_config(), device="cpu",
          encoder=random_encoder(), samples=False)
    return out


def test_slim_fp16_checkpoint_drops_training_state_and_keeps_outputs(trained_checkpoint, tmp_path):
    out = tmp_path / "slim.pt"
    parity = export_checkpoint(trained_checkpoint, out, "fp16")
    data = load_checkpoint(out)
    assert not set(TRAINING_STATE_KEYS) & set(data)
    assert data["weights_precision"] == "fp16" and data["train_config"]
    assert all(v.dtype == torch.float16 for v in data["model"].values() if v.is_floating_point())
    assert out.stat().st_size < trained_checkpoint.stat().st_size / 2
    reference, _ = load_model(trained_checkpoint)
    shipped, names = load_model(out)
    assert next(shipped.parameters()).dtype == torch.float32
    image, weights = torch.rand(1, 3, 33, 40), torch.tensor([[0.2, 0.3, 0.5]])
    with torch.no_grad():
        diff = (reference(image, weights) - shipped(image, weights)).abs().max().item()
    assert 0 < diff < 1e-2 and parity["min_psnr_db"] >= 40 and parity["max_abs_diff"] > 0


def test_slim_fp32_is_exact_and_fp16_refuses_a_model_it_would_break(trained_checkpoint, tmp_path):
    data = load_checkpoint(trained_checkpoint)
    for key, value in slim_checkpoint(data, "fp32")["model"].items():
        assert torch.equal(value, data["model"][key])
    # weights beyond fp16's range become inf: the parity check must refuse them
    model, names = load_model(trained_checkpoint)
    with torch.no_grad():
        next(model.parameters()).mul_(1e8)
    broken = tmp_path / "broken.pt"
    torch.save(make_checkpoint(model, names), broken)
    with pytest.raises(CheckpointError, match="non-finite"):
        export_checkpoint(broken, tmp_path / "out.pt", "fp16")
    assert not (tmp_path / "out.pt").exists()


def test_slim_export_refuses_below_the_psnr_bar(trained_checkpoint, tmp_path, monkeypatch):
    from cin_style.io import image

    monkeypatch.setitem(image.MIN_PSNR_DB, "fp16", 500.0)  # fp16 rounding cannot reach it
    with pytest.raises(CheckpointError, match="PSNR"):
        export_checkpoint(trained_checkpoint, tmp_path / "out.pt", "fp16")
    assert not (tmp_path / "out.pt").exists()


def test_validation_is_scored_at_checkpoints_and_survives_resume(tmp_path, style_dir, content_dir,
                                                                 image_list):
    out = tmp_path / "val.pt"
    kwargs = dict(device="cpu", encoder=random_encoder(), samples=False, validation=image_list)
    train([style_dir], content_dir, out, tiny_train_config(steps=2), **kwargs)
    first = load_checkpoint(out)["validation"]
    assert [v["step"] for v in first] == [2]
    assert set(first[0]["style_by_name"]) == {"alpha", "beta", "gamma"}
    parts = first[0]["content"] + first[0]["style"] + first[0]["tv"]
    assert first[0]["loss"] == pytest.approx(parts) and first[0]["style"] > 0
    train([style_dir], content_dir, out, tiny_train_config(steps=4), resume=True, **kwargs)
    second = load_checkpoint(out)["validation"]
    assert [v["step"] for v in second] == [2, 4] and second[0] == first[0]
    assert second[1]["loss"] != first[0]["loss"]  # the model changed between them


@pytest.fixture
def bundled_model(tmp_path, monkeypatch, style_dir):
    """A tiny model standing in for the bundled one (its styles have bundled paintings)."""
    model = make_tiny_model()
    names = ["starry_night", "great_wave", "poppies"]
    path = tmp_path / "bundled" / "reference.pt"
    path.parent.mkdir()
    torch.save(slim_checkpoint(make_checkpoint(model, names), "fp16"), path)
    monkeypatch.setattr(bundled, "reference_model", lambda: path)
    return path


@pytest.mark.slow
def test_commands_default_to_the_bundled_model(bundled_model, tmp_path):
    runner = CliRunner()
    listed = runner.invoke(cli, ["styles", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == ["starry_night", "great_wave", "poppies"]
    photo = write_image(tmp_path / "photo.png", seed=5, size=(40, 30))
    implicit, explicit = tmp_path / "implicit.png", tmp_path / "explicit.png"
    result = runner.invoke(cli, ["stylize", str(photo), "-o", str(implicit), "--style", "great_wave"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["stylize", str(bundled_model), str(photo), "-o", str(explicit),
                                 "--style", "great_wave"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(implicit)), np.asarray(Image.open(explicit)))
    onnx_out = tmp_path / "bundled.onnx"
    result = runner.invoke(cli, ["export", "-o", str(onnx_out), "-q"])
    assert result.exit_code == 0, result.output
    via_onnx = tmp_path / "onnx.png"
    result = runner.invoke(cli, ["stylize", str(onnx_out), str(photo), "-o", str(via_onnx),
                                 "--style", "great_wave"])
    assert result.exit_code == 0, result.output
    a = np.asarray(Image.open(via_onnx), np.int16)
    assert np.abs(a - np.asarray(Image.open(explicit), np.int16)).max() <= 1


def test_an_explicit_model_wins_over_the_bundled_one(bundled_model, tmp_path):
    other = tmp_path / "other.pt"
    torch.save(make_checkpoint(make_tiny_model(), ["a", "b", "c"]), other)
    result = CliRunner().invoke(cli, ["styles", str(other), "--json"])
    assert json.loads(result.output) == ["a", "b", "c"]


def test_no_input_and_missing_bundled_model_are_one_line_errors(tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(cli, ["stylize", str(tmp_path / "m.pt"), "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and "no INPUT" in result.output

    def missing():
        raise bundled.BundledModelMissing("this installation has no bundled model (x); pass a MODEL file")
    monkeypatch.setattr(bundled, "reference_model", missing)
    photo = write_image(tmp_path / "p.png", seed=1)
    result = runner.invoke(cli, ["stylize", str(photo), "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 1 and "no bundled model" in result.output
    assert "Traceback" not in result.output


def test_add_style_to_the_bundled_model_needs_an_output(bundled_model, tmp_path, content_dir):
    result = CliRunner().invoke(cli, ["add-style", str(bundled.bundled_styles() / "harvesters.jpg"),
                                      "--content", str(content_dir)])
    assert result.exit_code == 2 and "-o" in result.output


def test_evaluate_finds_bundled_paintings_by_style_name(bundled_model):
    from cin_style.evaluate.scores import model_style_images

    found = model_style_images(bundled_model, ["starry_night", "poppies"])
    assert found == {"starry_night": bundled.bundled_styles() / "starry_night.jpg",
                     "poppies": bundled.bundled_styles() / "poppies.jpg"}
    with pytest.raises(ValueError, match="nonexistent_style"):
        model_style_images(bundled_model, ["starry_night", "nonexistent_style"])


def test_demo_shows_the_bundled_model_without_training(bundled_model, tmp_path):
    result = CliRunner().invoke(cli, ["demo", "-o", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    from cin_style.evaluate.sheet import GAP

    photos = list_images(bundled.bundled_samples())
    rows = sum(round(160 * h / w) + GAP for w, h in (Image.open(p).size for p in photos))
    with Image.open(tmp_path / "demo" / "contact_sheet.jpg") as sheet:
        # photo column + 3 styles + the one DEMO_BLENDS pair it has (starry_night+great_wave),
        # 160 px wide each; a row per photo at its aspect, under one or two lines of labels
        assert sheet.width == (1 + 3 + 1) * (160 + GAP)
        assert 14 <= sheet.height - rows <= 2 * 30 + GAP
    assert not (tmp_path / "demo" / "model.pt").exists()


def test_the_shipped_reference_model_loads_with_its_16_named_styles():
    path = bundled.reference_model()  # the real one, installed with the package
    listed = [line.strip().split("/")[-1][:-4] for line in
              (Path(__file__).resolve().parents[1] / "training" / "styles.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    model, names = load_model()
    assert names == listed and len(names) == 16 and "harvesters" not in names
    data = load_checkpoint(path)
    assert data["weights_precision"] == "fp16" and "optimizer" not in data
    assert path.stat().st_size < 5 * 2 ** 20
    out = model(torch.rand(1, 3, 40, 48), torch.eye(16)[[13]])
    assert out.shape == (1, 3, 40, 48) and out.std() > 0.01
    assert all(bundled.bundled_style_image(n) is not None for n in names)  # evaluate finds them
    # the ONNX copy a light install runs is the same model
    from cin_style import StyleRunner
    from cin_style.io.image import psnr

    runner = StyleRunner(bundled.bundled_graph("reference"), device="cpu")
    assert runner.style_names == names
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(image, torch.eye(16)[[5]]).numpy()
    got = runner.run_nchw(image.numpy(), np.eye(16, dtype=np.float32)[[5]])
    assert psnr(got, expected) >= 40
