"""The bundled lite model and picking bundled models by name."""

from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from cin_style.assets import bundled
from cin_style.cli.main import cli
from cin_style.config import NETWORK_PRESETS
from cin_style.nn.checkpoint import load_checkpoint, load_model


def test_bundled_models_are_picked_by_name(tmp_path, monkeypatch):
    assert bundled.resolve_model("lite") == bundled.bundled_model("lite")
    assert bundled.resolve_model("reference") == bundled.reference_model()
    assert bundled.resolve_model(None) == bundled.reference_model()
    assert bundled.looks_like_model("lite") and not bundled.looks_like_model("photo.jpg")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lite").mkdir()  # a folder of photos named like a model: it is an input
    assert not bundled.looks_like_model("lite") and bundled.resolve_model("lite") == Path("lite")


def test_the_shipped_lite_model_has_the_reference_styles_and_is_small():
    path = bundled.bundled_model("lite")
    model, names = load_model(path)
    _, reference_names = load_model()
    assert names == reference_names
    assert model.config.to_dict() == {**NETWORK_PRESETS["lite"].to_dict(), "num_styles": 16}
    assert model.flops(100, 100) / 2 / 1e4 <= 20_000  # multiply-adds per pixel
    data = load_checkpoint(path)
    assert data["weights_precision"] == "fp16" and "optimizer" not in data
    # trained on the reference model's own paintings (training/README.md says why not distilled)
    assert [Path(p).stem for p in data["style_paths"]] == reference_names
    from cin_style import StyleRunner
    from cin_style.io.image import psnr

    runner = StyleRunner(bundled.bundled_graph("lite"), device="cpu")
    assert runner.style_names == names
    # both bundled graphs store fp16 weights and compute in fp32: fp16 arithmetic is the
    # slow path on onnxruntime's x86 CPU provider
    assert runner.metadata["precision"] == "fp16-weights"
    assert StyleRunner(bundled.bundled_graph("reference"), device="cpu",
                       warmup=False).metadata["precision"] == "fp16-weights"
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(image, torch.eye(16)[[3]]).numpy()
    assert expected.std() > 0.01
    assert psnr(runner.run_nchw(image.numpy(), np.eye(16, dtype=np.float32)[[3]]), expected) >= 40


def test_stylize_and_styles_take_the_lite_model_by_name(tmp_path):
    from conftest import write_image

    photo = write_image(tmp_path / "p.png", seed=1, size=(48, 40))
    result = CliRunner().invoke(cli, ["stylize", "lite", str(photo), "-o", str(tmp_path / "o.png"),
                                      "--style", "great_wave"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o.png").is_file()
    listed = CliRunner().invoke(cli, ["styles"])
    assert "bundled models: reference, lite" in listed.output
