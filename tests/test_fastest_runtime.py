"""The fastest installed runtime by default (`--runtime auto`): a bundled model runs as its
ONNX graph, on OpenVINO where its extra is installed, else onnxruntime; `--runtime` still
chooses, and `--json` says which ran and by which route."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cin_style.assets.bundled import bundled_graph, bundled_model
from cin_style.errors import UsageError
from cin_style.infer.loader import load_stylizer
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.infer.runtimes import RUNTIME_ENV, fastest_graph_runtime, openvino_installed
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.io.image import psnr
from cin_style.io.synthetic import textured

needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="the openvino extra is not installed")


def test_auto_picks_openvino_on_the_cpu_where_installed_and_onnxruntime_on_a_gpu(monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV, raising=False)
    assert fastest_graph_runtime(on_gpu=True) == "onnxruntime"
    assert fastest_graph_runtime(on_gpu=False) == ("openvino" if openvino_installed() else "onnxruntime")
    monkeypatch.setenv(RUNTIME_ENV, "onnxruntime")
    assert fastest_graph_runtime(on_gpu=False) == "onnxruntime"
    monkeypatch.setenv(RUNTIME_ENV, "tensorrt")
    with pytest.raises(UsageError, match=RUNTIME_ENV):
        fastest_graph_runtime(on_gpu=False)


def test_a_bundled_checkpoint_runs_as_its_graph_unless_pytorch_is_asked_for():
    checkpoint = bundled_model("lite")
    if checkpoint.suffix != ".pt":
        pytest.skip("torch is not installed: the bundled models are their graphs already")
    auto = load_stylizer(checkpoint, device="cpu")
    assert isinstance(auto, StyleRunner) and auto.path == bundled_graph("lite")
    assert isinstance(load_stylizer(checkpoint, device="cpu", runtime="pytorch"), TorchStylizer)
    with pytest.raises(UsageError, match="PyTorch runs .pt checkpoints"):
        load_stylizer(bundled_graph("lite"), runtime="pytorch")


@needs_openvino
def test_the_default_command_runs_openvino_and_says_so(tmp_path):
    """The real command in its own process, as a user runs it (no runtime pinned)."""
    Image.fromarray(textured(96, 128, seed=3, noise=15)).save(tmp_path / "in.png")
    env = {k: v for k, v in os.environ.items() if k != RUNTIME_ENV}

    def stylize(out, *extra):
        result = subprocess.run([sys.executable, "-m", "cin_style", "stylize", "lite", str(tmp_path / "in.png"),
                                 "-o", str(tmp_path / out), "--style", "starry_night", "--json", "-q", *extra],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1]), np.asarray(Image.open(tmp_path / out))

    auto, fast = stylize("auto.png")
    assert auto["runtime"] == "openvino" and auto["runtime_precision"] in ("bf16", "f32")
    assert auto["route"] == "whole" and auto["model"].endswith("lite.onnx")
    exact, reference = stylize("ort.png", "--runtime", "onnxruntime")
    assert exact["runtime"] == "onnxruntime" and exact["runtime_precision"] is None
    assert psnr(fast / 255, reference / 255) > 35  # bf16 arithmetic, not another model
    tiled, _ = stylize("tiled.png", "--tile", "64")
    assert tiled["route"] == "tiled" and tiled["runtime"] == "openvino"
