"""Tiled stylization (tiles.py): exact whole-image statistics, so tiles give the
untiled result, through PyTorch and through the exported tiled graph."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_NAMES
from PIL import Image

from cin_style.cli.main import cli
from cin_style.deploy.export import export, format_export
from cin_style.deploy.onnx_export import export_onnx
from cin_style.deploy.onnx_tiled import export_tiled_onnx
from cin_style.infer import tiles as tiles_mod
from cin_style.infer.onnx_runner import RunnerError, StyleRunner
from cin_style.infer.pipeline import use_tiles
from cin_style.infer.tiles import stylize_tiled
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.infer.torch_tiles import TorchTileBackend
from cin_style.io.image import ImageError
from cin_style.io.synthetic import textured
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

NAMES = TINY_NAMES
BLEND = np.array([0.2, 0.5, 0.3], np.float32)


def photo(height, width, seed=0) -> np.ndarray:
    return textured(height, width, seed, noise=25)


def untiled(model, image, weights) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255,
                    torch.from_numpy(weights)[None])[0].permute(1, 2, 0).numpy()
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("height,width", [(200, 300), (131, 97), (67, 250)])
def test_pytorch_tiles_give_the_untiled_image(model, height, width):
    image = photo(height, width)
    expected = untiled(model, image, BLEND)
    tiled = stylize_tiled(TorchTileBackend(model, BLEND, kept=torch.float32), image, tile=64)
    diff = np.abs(tiled.astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float summation order flips a rounding
    half = stylize_tiled(TorchTileBackend(model, BLEND), image, tile=64)  # strips kept in fp16, as the graph keeps them
    assert np.abs(half.astype(int) - expected).max() <= 2


def test_strips_spilled_to_a_temp_file_give_the_same_image(model, monkeypatch):
    """Past SPILL_BYTES a layer's strips live in a temp file (bounded memory at any
    size); the result is the in-memory one, bit for bit, and every file is closed."""
    image = photo(150, 190, seed=4)
    in_memory = stylize_tiled(TorchTileBackend(model, BLEND), image, tile=64)
    made = []

    class Tracked(tiles_mod._Strips):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(tiles_mod, "SPILL_BYTES", 0)
    monkeypatch.setattr(tiles_mod, "_Strips", Tracked)
    assert np.array_equal(stylize_tiled(TorchTileBackend(model, BLEND), image, tile=64), in_memory)
    blocks = len(model.residuals)
    assert len(made) == len(tiles_mod.network_layers(2 * blocks, 9)) + blocks  # each layer's output, each stream
    assert all(strips.file is not None and strips.file.closed for strips in made)


def test_each_conv_runs_about_once_per_pixel(model):
    """What makes tiles cost what one piece costs: every layer computes each of its output
    pixels once (plus the few rows an upsampling strip computes past its edges and one
    small probe per layer), where recomputing the front and back per norm layer cost
    2.5-5 times as much."""
    image = photo(256, 320, seed=2)
    backend = TorchTileBackend(model, BLEND)
    computed = {}
    conv = backend.conv

    def counted(layer, rows, *args):
        out = conv(layer, rows, *args)
        computed[layer.name] = computed.get(layer.name, 0) + out[0].shape[2] * out[0].shape[3]
        return out

    backend.conv = counted
    stylize_tiled(backend, image, tile=128)
    for layer in backend.layers:
        exact = -(-256 // layer.scale) * -(-320 // layer.scale)
        assert exact <= computed[layer.name] <= 1.15 * exact, layer.name


def test_tiles_that_normalise_themselves_would_show(model):
    """The reason for whole-image statistics: per-tile instance norm differs a lot."""
    image = photo(128, 256)
    expected = untiled(model, image, BLEND)
    left, right = untiled(model, image[:, :128], BLEND), untiled(model, image[:, 128:], BLEND)
    naive = np.concatenate([left, right], axis=1)
    assert np.abs(naive.astype(int) - expected).max() > 10
    exact = stylize_tiled(TorchTileBackend(model, BLEND, kept=torch.float32), image, tile=128)
    assert np.abs(exact.astype(int) - expected).max() <= 1


def test_progress_counts_every_pass(model):
    class Bar:
        total, done = None, 0

        def refresh(self):
            pass

        def update(self, n):
            self.done += n

    bar = Bar()
    stylize_tiled(TorchTileBackend(model, BLEND), photo(100, 140), tile=64, progress=bar)
    assert bar.total == bar.done == len(TorchTileBackend(model, BLEND).layers) + 1  # each layer, then the output


def test_bad_tile_arguments(model):
    with pytest.raises(ValueError, match="multiple of 4"):
        stylize_tiled(TorchTileBackend(model, BLEND), photo(80, 80), tile=66)
    with pytest.raises(ValueError, match="uint8"):
        stylize_tiled(TorchTileBackend(model, BLEND), photo(80, 80).astype(np.float32), tile=64)


@pytest.mark.slow
def test_the_tiled_graph_gives_the_untiled_image(model, tmp_path):
    result = export_tiled_onnx(model, NAMES, tmp_path / "tiled.onnx")
    assert result.parity["max_abs_diff_uint8"] <= 1
    runner = StyleRunner(tmp_path / "tiled.onnx", device="cpu")
    assert runner.capabilities.tiles_only and runner.style_names == NAMES
    image = photo(150, 210, seed=3)
    tiled = runner.run_tiled(image, BLEND, tile=64)
    assert np.abs(tiled.astype(int) - untiled(model, image, BLEND)).max() <= 2
    # The runner's plain entry point tiles too, one image at a time (in strips of the default size).
    float_out = runner.run(image[None].astype(np.float32) / 255, BLEND[None])
    assert np.abs(float_out[0] * 255 - runner.run_tiled(image, BLEND)).max() <= 0.51
    export_onnx(model, NAMES, tmp_path / "plain.onnx")
    with pytest.raises(RunnerError, match="not the tiled variant"):
        StyleRunner(tmp_path / "plain.onnx", device="cpu").run_tiled(image, BLEND)


@pytest.mark.slow
def test_automatic_tiling_above_the_pixel_budget(model, tmp_path, monkeypatch):
    atomic_torch_save(make_checkpoint(model, NAMES), tmp_path / "m.pt")
    stylizer = TorchStylizer(tmp_path / "m.pt", device="cpu")
    assert not use_tiles(stylizer, 1000, 1000, None) and use_tiles(stylizer, 100, 100, 64)
    assert use_tiles(stylizer, 2049, 2048, None)
    monkeypatch.setattr(tiles_mod, "AUTO_TILE_PIXELS", 100 * 100)
    assert use_tiles(stylizer, 101, 100, None)
    # A plain graph without a tiled sibling refuses what it cannot run in bounded memory.
    export_onnx(model, NAMES, tmp_path / "plain.onnx")
    plain = StyleRunner(tmp_path / "plain.onnx", device="cpu")
    assert not plain.capabilities.tiles and not use_tiles(plain, 100, 100, None)
    with pytest.raises(ImageError, match="no tiled sibling"):
        use_tiles(plain, 101, 100, None)


@pytest.mark.slow
def test_a_plain_graph_tiles_through_its_sibling(model, tmp_path, monkeypatch):
    """`export` writes NAME.tiled.onnx beside a plain graph; the runner tiles large images
    through it (bounded memory), giving the untiled result."""
    checkpoint = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(model, NAMES), checkpoint)
    summary = export(checkpoint, tmp_path / "m.onnx", precision="fp16")
    assert summary.sibling is not None and summary.sibling.path == tmp_path / "m.tiled.onnx"
    assert any("m.tiled.onnx (tiled variant" in line for line in format_export(summary))
    runner = StyleRunner(tmp_path / "m.onnx", device="cpu")
    assert runner.capabilities.tiles and not runner.capabilities.tiles_only
    image = photo(140, 180, seed=6)
    assert np.abs(runner.run_tiled(image, BLEND, tile=64).astype(int) - untiled(model, image, BLEND)).max() <= 2
    monkeypatch.setattr(tiles_mod, "AUTO_TILE_PIXELS", 100 * 100)
    assert use_tiles(runner, 140, 180, None)
    # A sibling of other weights is refused, not silently used.
    other = make_checkpoint(type(model)(model.config), NAMES)
    atomic_torch_save(other, tmp_path / "other.pt")
    export(tmp_path / "other.pt", tmp_path / "o.onnx", verify=False)
    (tmp_path / "o.tiled.onnx").replace(tmp_path / "m.tiled.onnx")
    with pytest.raises(RunnerError, match="not the tiled variant of m.onnx"):
        StyleRunner(tmp_path / "m.onnx", device="cpu").run_tiled(image, BLEND)
    # --no-tiled-sibling: only the plain graph.
    export(checkpoint, tmp_path / "alone.onnx", tiled_sibling=False, verify=False)
    assert not (tmp_path / "alone.tiled.onnx").exists()
    assert export(checkpoint, tmp_path / "baked.onnx", bake="beta=1", verify=False).sibling is None


@pytest.mark.slow
def test_stylize_cli_tiles_with_the_same_finish(model, tmp_path):
    checkpoint = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(model, NAMES), checkpoint)
    exported = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "tiled.onnx"), "--tiled"])
    assert exported.exit_code == 0, exported.output
    assert "tiled variant" in exported.output and "max uint8 diff" in exported.output
    assert StyleRunner(tmp_path / "tiled.onnx", device="cpu").capabilities.tiles_only
    refused = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "t16.onnx"), "--tiled",
                                       "--precision", "fp16"])
    assert refused.exit_code == 2 and not (tmp_path / "t16.onnx").exists()
    export_onnx(model, NAMES, tmp_path / "plain.onnx")
    Image.fromarray(photo(120, 170, seed=5)).save(tmp_path / "in.png")
    runner = CliRunner()
    common = ["--style", "beta=1,gamma=1", "--strength", "0.7", "--preserve-color"]

    def run(model, out, *extra):
        result = runner.invoke(cli, ["stylize", str(model), str(tmp_path / "in.png"), "-o", str(out),
                                     *common, *extra])
        assert result.exit_code == 0, result.output
        return np.asarray(Image.open(out)).astype(int)

    plain = run(checkpoint, tmp_path / "plain.png")
    tiled = run(checkpoint, tmp_path / "tiled.png", "--tile", "64")
    graph = run(tmp_path / "tiled.onnx", tmp_path / "graph.png")
    assert np.abs(tiled - plain).max() <= 2 and np.abs(graph - plain).max() <= 2
    refused = runner.invoke(cli, ["stylize", str(tmp_path / "plain.onnx"), str(tmp_path / "in.png"),
                                  "-o", str(tmp_path / "x.png"), "--tile", "64"])
    assert refused.exit_code == 2 and "export --tiled" in refused.output
    odd = runner.invoke(cli, ["stylize", str(checkpoint), str(tmp_path / "in.png"), "-o",
                              str(tmp_path / "y.png"), "--tile", "66"])
    assert odd.exit_code == 2 and "multiple of 4" in odd.output
