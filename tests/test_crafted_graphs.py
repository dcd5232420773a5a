"""Crafted or foreign .onnx files (issue 37): each gets one line naming what is wrong, in
`styles`, `stylize` and `web`, and never a traceback or a wrong-size image with exit 0."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import TINY_NAMES, make_tiny_model
from onnx import TensorProto, helper
from PIL import Image

from cin_style.cli.main import cli
from cin_style.deploy.onnx_export import export_onnx
from cin_style.infer.contract import INPUT_IMAGE, INPUT_WEIGHTS, META_PREFIX, OUTPUT
from cin_style.io.synthetic import textured


def _with_metadata(model: onnx.ModelProto, **changes) -> onnx.ModelProto:
    props = {p.key: p.value for p in model.metadata_props}
    props.update({META_PREFIX + k: v for k, v in changes.items()})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    return model


def _renamed(model: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    for value in [*model.graph.input, *model.graph.output]:
        if value.name == old:
            value.name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    return model


def _halving_graph() -> onnx.ModelProto:
    """A graph with the right names that returns the image at half size."""
    image = helper.make_tensor_value_info(INPUT_IMAGE, TensorProto.FLOAT, ["N", 3, "H", "W"])
    weights = helper.make_tensor_value_info(INPUT_WEIGHTS, TensorProto.FLOAT, ["N", 3])
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["N", 3, "h", "w"])
    pool = helper.make_node("AveragePool", [INPUT_IMAGE], [OUTPUT], kernel_shape=[2, 2], strides=[2, 2])
    graph = helper.make_graph([pool], "half", [image, weights], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return _with_metadata(model, style_names=json.dumps(TINY_NAMES))


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    root = tmp_path_factory.mktemp("crafted")
    export_onnx(make_tiny_model(), TINY_NAMES, root / "good.onnx", verify=False)
    good = onnx.load(root / "good.onnx")
    cases = {
        "not_json": _with_metadata(onnx.load(root / "good.onnx"), style_names="starry, wave"),
        "empty_list": _with_metadata(onnx.load(root / "good.onnx"), style_names="[]"),
        "a_number": _with_metadata(onnx.load(root / "good.onnx"), style_names="5"),
        "too_many": _with_metadata(onnx.load(root / "good.onnx"),
                                   style_names=json.dumps([f"s{i}" for i in range(100_000)])),
        "duplicates": _with_metadata(onnx.load(root / "good.onnx"), style_names='["a", "a", "b"]'),
        "wrong_count": _with_metadata(onnx.load(root / "good.onnx"), style_names='["a", "b"]'),
        "other_input": _renamed(onnx.load(root / "good.onnx"), INPUT_IMAGE, "photo"),
        "other_output": _renamed(onnx.load(root / "good.onnx"), OUTPUT, "out"),
        "tiled_without_convs": _with_metadata(onnx.load(root / "good.onnx"), variant="tiled"),
        # Metadata that passes, inputs of another contract (a tiled graph from an older cin-style).
        "tiled_of_another_contract": _with_metadata(onnx.load(root / "good.onnx"), variant="tiled",
                                                    residual_convs="2", outer_kernel="9"),
        "halves_the_image": _halving_graph(),
    }
    assert len(good.graph.input) == 2
    paths = {}
    for name, model in cases.items():
        onnx.save(model, root / f"{name}.onnx")
        paths[name] = root / f"{name}.onnx"
    Image.fromarray(textured(40, 48, seed=1, noise=20)).save(root / "p.png")
    return root, paths


CASES = ["not_json", "empty_list", "a_number", "too_many", "duplicates", "wrong_count", "other_input",
         "other_output", "tiled_without_convs", "tiled_of_another_contract", "halves_the_image"]


@pytest.mark.parametrize("case", CASES)
def test_a_crafted_graph_gets_one_line_everywhere(crafted, case, tmp_path):
    root, paths = crafted
    graph = paths[case]
    runner = CliRunner()
    calls = {
        "styles": ["styles", str(graph)],
        "stylize": ["stylize", str(graph), str(root / "p.png"), "-o", str(tmp_path / "o.png")],
        "web": ["web", str(graph), "-o", str(tmp_path / "site")],
    }
    for command, args in calls.items():
        if case == "halves_the_image" and command == "styles":
            continue  # its names are sound: listing them is right
        result = runner.invoke(cli, args)
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), (case, command, result.output)
        errors = [line for line in result.output.splitlines() if line.startswith(("Error", "error"))]
        assert len(errors) >= 1 and len(errors[0]) < 400, (case, command, result.output)
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "site" / "index.html").exists()


def test_the_good_graph_passes_the_same_checks(crafted, tmp_path):
    root, paths = crafted
    result = CliRunner().invoke(cli, ["stylize", str(root / "good.onnx"), str(root / "p.png"), "-o",
                                      str(tmp_path / "o.png")])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (40, 48, 3)


def test_the_service_refuses_a_crafted_graph_in_one_line_before_binding(crafted):
    import subprocess
    import sys

    root, paths = crafted
    for case in ("not_json", "halves_the_image"):
        done = subprocess.run([sys.executable, "-m", "cin_style.cli.main", "api", str(paths[case]), "--port", "1"],
                              capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, (case, done.stderr)


def test_pickled_code_and_foreign_files_are_refused_without_advice_to_load_them_unsafely(tmp_path):
    import os

    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unpickled",))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    (tmp_path / "text.jpg").write_text("not an image, not a model")
    for name, words in (("evil.pt", "holds Python objects"), ("text.jpg", "not a PyTorch file")):
        result = CliRunner().invoke(cli, ["styles", str(tmp_path / name)])
        assert result.exit_code == 1 and words in result.output, result.output
        assert "weights_only" not in result.output and "False" not in result.output


@pytest.mark.parametrize("args,words", [(["--max-pixels", "-5"], "max-pixels"), (["--max-pixels", "0"], "max-pixels"),
                                        (["--style", "alpha=1e308,beta=1e308"], "too large")])
def test_bad_numbers_on_the_command_line_are_refused(crafted, tmp_path, args, words):
    root, _ = crafted
    result = CliRunner().invoke(cli, ["stylize", str(root / "good.onnx"), str(root / "p.png"), "-o",
                                      str(tmp_path / "o.png"), *args])
    assert result.exit_code != 0 and words in result.output and not (tmp_path / "o.png").exists(), result.output


def test_accept_errors_are_logged_once_a_minute():
    import logging

    from cin_style.api.connections import AcceptErrorFilter

    accept = AcceptErrorFilter()
    records = [logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                 (), (OSError, OSError(24, "Too many open files"), None)) for _ in range(100)]
    kept = [r for r in records if accept.filter(r)]
    assert len(kept) == 1 and kept[0].exc_info is None and "once a minute" in kept[0].getMessage()
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", (), None)
    assert accept.filter(other)
