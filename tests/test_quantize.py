"""int8 export: static quantization calibrated on photos, checked on real photos,
refused below the floor, nothing half-written."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import make_tiny_model, write_image

from cin_style.assets.bundled import bundled_samples
from cin_style.cli.main import cli
from cin_style.deploy.onnx_export import export_onnx
from cin_style.deploy.quantize import QuantizationError, quantize_int8
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

NAMES = ["alpha", "beta", "gamma"]

# A random tiny model is no real model: the 30 dB floor of `export --precision int8` is for
# trained ones.  Measured on it: 30.7 dB here (onnxruntime 1.31.1), 29.9 dB on the fresh
# install of issue 21; so 25 dB.
TINY_MODEL_FLOOR_DB = 25.0


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    model = make_tiny_model()
    export_onnx(model, NAMES, folder / "fp32.onnx")
    photos = [write_image(folder / "photos" / f"p{i}.png", seed=i, size=(72, 60)) for i in range(6)]
    return folder, photos


@pytest.mark.slow
def test_int8_graph_quantizes_only_residual_convs_and_stays_close(graphs):
    folder, photos = graphs
    checks = sorted(bundled_samples().glob("*.jpg"))[:2]
    report = quantize_int8(folder / "fp32.onnx", folder / "int8.onnx", photos, checks,
                           min_psnr=TINY_MODEL_FLOOR_DB)
    assert report["checked"] == 6 and report["min_psnr_db"] >= report["floor_db"] == TINY_MODEL_FLOOR_DB
    assert report["fp32_ms_512"] > 0 and report["int8_ms_512"] > 0
    proto = onnx.load(str(folder / "int8.onnx"))
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    quantized_inputs = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    int8_convs = [c for c in convs if c.input[1] in quantized_inputs]
    assert len(int8_convs) == 2 and len(convs) == 8  # the one residual block's two convs
    runner = StyleRunner(folder / "int8.onnx", device="cpu")
    assert runner.metadata["precision"] == "int8"
    assert json.loads(runner.metadata["parity"])["min_psnr_db"] == report["min_psnr_db"]
    x = np.random.default_rng(0).random((1, 3, 40, 52), dtype=np.float32)
    fp32 = StyleRunner(folder / "fp32.onnx", device="cpu").run_nchw(x, np.eye(3, dtype=np.float32)[[1]])
    assert np.abs(runner.run_nchw(x, np.eye(3, dtype=np.float32)[[1]]) - fp32).mean() < 0.02


def test_int8_below_the_floor_is_refused_and_nothing_is_written(graphs):
    folder, photos = graphs
    with pytest.raises(QuantizationError, match="rejected"):
        quantize_int8(folder / "fp32.onnx", folder / "refused.onnx", photos[:2],
                      sorted(bundled_samples().glob("*.jpg"))[:1], min_psnr=200)
    assert not (folder / "refused.onnx").exists()
    with pytest.raises(QuantizationError, match="no calibration photos"):
        quantize_int8(folder / "fp32.onnx", folder / "none.onnx", [], photos)


@pytest.mark.slow
def test_export_cli_int8(graphs, tmp_path):
    folder, photos = graphs
    checkpoint = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(make_tiny_model(), NAMES), checkpoint)
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "m8.onnx"),
                                 "--precision", "int8", "--calibrate", str(folder / "photos"),
                                 "--int8-floor", "20"])
    assert result.exit_code == 0, result.output
    assert "worst PSNR" in result.output and "int8" in result.output and (tmp_path / "m8.onnx").is_file()
    alone = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "x.onnx"), "--precision", "int8"])
    assert alone.exit_code == 2 and "--calibrate" in alone.output
    strict = runner.invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "y.onnx"), "--precision",
                                 "int8", "--calibrate", str(folder / "photos"), "--int8-floor", "200"])
    assert strict.exit_code == 1 and "rejected" in strict.output and not (tmp_path / "y.onnx").exists()
