"""Each runtime's image goes in tiles from its own threshold (tiles.TILE_ABOVE_PIXELS): just
below it in one piece, just above in tiles, and neither peaks past 1.5 GB.  Each case is a
fresh process (its peak resident set is its own), with a tiny network; `cin-style bench
sizes` measures the bundled models."""

import json
import subprocess
import sys

import pytest
from conftest import TINY_NAMES

from cin_style.bench.sizes import _CASE
from cin_style.deploy.export import export
from cin_style.infer.runtimes import openvino_installed
from cin_style.infer.tiles import tiles_above
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

CAP_MIB = 1536
RUNTIMES = ["pytorch", "onnxruntime"] + (["openvino"] if openvino_installed() else [])


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    root = tmp_path_factory.mktemp("thresholds")
    atomic_torch_save(make_checkpoint(model, TINY_NAMES), root / "m.pt")
    export(root / "m.pt", root / "m.onnx", verify=False)  # with its tiled sibling
    return root


def run(model_file, runtime, width, height) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CASE, str(model_file), runtime, str(width), str(height), "default",
                           "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_one_piece_below_the_threshold_tiles_above_and_both_stay_under_the_cap(files, runtime):
    model_file = files / ("m.pt" if runtime == "pytorch" else "m.onnx")
    limit = tiles_above(runtime, "cpu")
    width = 1024
    below = run(model_file, runtime, width, limit // width - 4)
    above = run(model_file, runtime, width, limit // width + 4)
    assert (below["route"], above["route"]) == ("whole", "tiled") and below["runtime"] == runtime
    assert below["peak_rss_mib"] < CAP_MIB and above["peak_rss_mib"] < CAP_MIB, (below, above)
