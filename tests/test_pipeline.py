"""One path for every image (infer/pipeline.py): the route each image takes, the shared
input convention of `run` and `run_tiled`, the Python API's one door, and errors worded
by each front end (the CLI names options, the library and the service do not)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import TINY_NAMES, make_tiny_model
from PIL import Image

import cin_style
from cin_style.assets import bundled
from cin_style.cli.main import cli
from cin_style.deploy.onnx_export import export_onnx
from cin_style.errors import UsageError
from cin_style.infer import tiles as tiles_mod
from cin_style.infer.finish import Finish
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.infer.pipeline import SCALED, TILED, WHOLE, Pipeline
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.io.synthetic import textured
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BLEND = np.array([0.2, 0.5, 0.3], np.float32)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    model = make_tiny_model()
    atomic_torch_save(make_checkpoint(model, TINY_NAMES), root / "m.pt")
    export_onnx(model, TINY_NAMES, root / "m.onnx", verify=False)
    export_onnx(model, TINY_NAMES, root / "baked.onnx", verify=False, bake=np.array([0, 1, 0], np.float32))
    return root


def test_the_four_adapters_and_the_api_call_the_pipeline_and_only_it_tiles():
    found = subprocess.run(["grep", "-rn", "use_tiles(", "cin_style"], cwd=ROOT, capture_output=True, text=True)
    callers = [line for line in found.stdout.splitlines() if "def use_tiles" not in line]
    assert len(callers) == 1 and callers[0].startswith("cin_style/infer/pipeline.py")
    for adapter in ("infer/files.py", "api/batcher.py", "video/stylize.py", "api/app.py"):
        source = (ROOT / "cin_style" / adapter).read_text()
        assert "Pipeline(" in source and "run_tiled(" not in source, adapter


def test_routes_by_size_scale_and_capabilities(graphs, monkeypatch):
    runner = StyleRunner(graphs / "m.onnx", device="cpu")
    assert Pipeline(runner).route(64, 64) == WHOLE
    assert Pipeline(runner, style_scale=2).route(64, 64) == SCALED
    with pytest.raises(Exception, match="shrinks"):
        Pipeline(runner, style_scale=8).route(64, 64)  # 8 px: refused before any decoding
    monkeypatch.setattr(tiles_mod, "AUTO_TILE_PIXELS", 50 * 50)
    with pytest.raises(Exception, match="no tiled sibling"):
        Pipeline(runner).route(64, 64)  # a plain graph without its sibling cannot go above
    torch_model = TorchStylizer(graphs / "m.pt", device="cpu")
    assert Pipeline(torch_model).route(64, 64) == TILED
    with pytest.raises(UsageError) as refused:
        Pipeline(runner).route(40, 40, masks=True)
    assert refused.value.parameter == "masks" and "--" not in str(refused.value)


def test_run_and_run_tiled_take_the_same_input(graphs):
    stylizer = TorchStylizer(graphs / "m.pt", device="cpu")
    photo = textured(48, 64, seed=2, noise=20)
    floats = photo.astype(np.float32) / 255
    one = stylizer.run(photo, BLEND)  # one uint8 image and one blend
    assert one.shape == (48, 64, 3) and one.dtype == np.float32
    assert np.array_equal(one, stylizer.run(floats[None], BLEND[None])[0])  # a float batch
    tiled_one = stylizer.run_tiled(photo, BLEND, tile=64)
    tiled_batch = stylizer.run_tiled(np.stack([photo, photo]), np.stack([BLEND, BLEND]), tile=64)
    assert tiled_one.dtype == np.uint8 and tiled_batch.shape == (2, 48, 64, 3)
    assert np.array_equal(tiled_batch[1], tiled_one)
    assert np.abs(tiled_one.astype(int) - np.round(one * 255)).max() <= 2


def test_the_pipeline_gives_the_files_path_output_and_per_photo_finishes(graphs, tmp_path):
    runner = StyleRunner(graphs / "m.onnx", device="cpu")
    photos = [textured(40, 52, seed=i, noise=20) for i in range(3)]
    finishes = [Finish(), Finish(0.5), Finish(1.0, preserve_color=True)]
    batched = Pipeline(runner).stylize(photos, np.stack([BLEND] * 3), finishes=finishes)
    for photo, finish, got in zip(photos, finishes, batched):
        alone = Pipeline(runner, finish).stylize([photo], BLEND[None])[0]
        assert got.dtype == np.uint8 and np.array_equal(got, alone)
    Image.fromarray(photos[1]).save(tmp_path / "in.png")
    result = CliRunner().invoke(cli, ["stylize", str(graphs / "m.onnx"), str(tmp_path / "in.png"), "-o",
                                      str(tmp_path / "out.png"), "--style", "alpha=0.2,beta=0.5,gamma=0.3",
                                      "--strength", "0.5"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), batched[1])


def test_the_python_api_has_one_door_for_every_runtime(graphs):
    photo = textured(40, 48, seed=4, noise=20)
    runner = StyleRunner(graphs / "m.onnx", device="cpu")
    by_runner = cin_style.stylize(runner, photo, "beta")
    assert np.array_equal(by_runner, cin_style.stylize(str(graphs / "m.onnx"), photo, "beta"))
    assert np.array_equal(by_runner, runner.stylize(photo, "beta"))
    by_torch = cin_style.stylize(graphs / "m.pt", photo, "beta")
    assert by_torch.dtype == np.uint8 and np.abs(by_torch.astype(int) - by_runner).max() <= 1
    with pytest.raises(TypeError, match="tensors go to PyTorch models"):
        import torch

        cin_style.stylize(runner, torch.rand(3, 20, 20), "beta")


def test_a_baked_blend_is_refused_in_each_front_ends_words(graphs, tmp_path):
    runner = StyleRunner(graphs / "baked.onnx", device="cpu")
    from cin_style.infer.stylizer import blend_for

    with pytest.raises(UsageError) as refused:
        blend_for(runner, ["alpha"])
    assert refused.value.parameter == "style" and "--style" not in str(refused.value)
    assert str(graphs) not in str(refused.value)  # the file's name, not where it lives
    Image.fromarray(textured(32, 32, seed=1, noise=20)).save(tmp_path / "in.png")
    result = CliRunner().invoke(cli, ["stylize", str(graphs / "baked.onnx"), str(tmp_path / "in.png"), "-o",
                                      str(tmp_path / "o.png"), "--style", "alpha"])
    assert result.exit_code == 2 and "--style: baked.onnx has a baked blend" in result.output
    from cin_style.api.params import StylizeParams, resolve_options

    with pytest.raises(Exception) as answered:
        resolve_options(StylizeParams(style=["alpha"]), runner)
    assert answered.value.status == 422 and "--style" not in answered.value.message
    assert str(graphs) not in answered.value.message


def test_a_bundled_models_file_name_finds_the_bundled_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bundled.resolve_model("lite.onnx") == bundled.models_folder() / "lite.onnx"
    assert bundled.resolve_model("reference.pt") == bundled.models_folder() / "reference.pt"
    assert bundled.resolve_model("reference", graph=True) == bundled.bundled_graph("reference")
    assert bundled.resolve_model(None, graph=True) == bundled.bundled_graph("reference")
    (tmp_path / "lite.onnx").write_bytes(b"mine")  # a file here always wins
    assert bundled.resolve_model("lite.onnx") == Path("lite.onnx")
    photo = tmp_path / "p.png"
    Image.fromarray(textured(32, 40, seed=3, noise=20)).save(photo)
    result = CliRunner().invoke(cli, ["stylize", "reference.onnx", str(photo), "-o", str(tmp_path / "o.png"),
                                      "--json", "-q"])
    assert result.exit_code == 0, result.output
    said = json.loads(result.output)
    assert said["model"].endswith("reference.onnx") and said["runtime"] == "onnxruntime"
