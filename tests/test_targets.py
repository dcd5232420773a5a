"""Export to other runtimes (deploy/targets.py) on a tiny model: OpenVINO, the ORT format
and LiteRT run here and must match onnxruntime; Core ML is checked by its spec and program
(predictions need macOS).  The runtimes come from the openvino, tflite and coreml extras,
which the test install has."""

import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from conftest import TINY_NAMES

from cin_style.cli.main import cli
from cin_style.deploy.export import export, format_export
from cin_style.deploy.targets import FP32_MAX_DIFF
from cin_style.errors import UsageError
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.infer.runtimes import litert_metadata, open_converted
from cin_style.io.image import MIN_PSNR_DB, psnr
from cin_style.io.synthetic import textured
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("targets") / "tiny.pt"
    atomic_torch_save(make_checkpoint(model, TINY_NAMES), path)
    return path


@pytest.fixture(scope="module")
def reference(checkpoint):
    """The fp32 ONNX graph of the same weights, in onnxruntime: what every target must match."""
    summary = export(checkpoint, checkpoint.with_name("tiny.onnx"), tiled_sibling=False)
    return open_converted(summary.path, threads=1)


def random_cases(fixed=None, count=3):
    rng = np.random.default_rng(7)
    for i in range(count):
        h, w = fixed or ((32, 32), (29, 41), (48, 20))[i]
        yield rng.random((1, 3, h, w), dtype=np.float32), rng.dirichlet(np.ones(3)).astype(np.float32)[None]


def test_openvino_ir_matches_onnxruntime_and_keeps_its_facts(checkpoint, reference, tmp_path):
    from cin_style.deploy.targets import openvino_metadata

    summary = export(checkpoint, tmp_path / "tiny.xml")
    assert [p.name for p in summary.files] == ["tiny.xml", "tiny.bin"] and summary.parity[
        "max_abs_diff"
    ] <= FP32_MAX_DIFF
    run = open_converted(tmp_path / "tiny.xml", threads=1)  # f32: dynamic sizes, any blend
    for image, weights in random_cases():
        assert np.abs(run(image, weights) - reference(image, weights)).max() <= FP32_MAX_DIFF
    meta = openvino_metadata(tmp_path / "tiny.xml")
    assert json.loads(meta["style_names"]) == TINY_NAMES and meta["format"] == "openvino"
    half = export(checkpoint, tmp_path / "half.xml", precision="fp16-weights")
    assert half.parity["min_psnr_db"] >= MIN_PSNR_DB["fp16-weights"]
    assert (tmp_path / "half.bin").stat().st_size < 0.7 * (tmp_path / "tiny.bin").stat().st_size


def test_stylize_runs_a_graph_in_openvino(checkpoint, reference, tmp_path):
    """``--runtime openvino``: the runner over OpenVINO at its own precision (bf16 where the
    CPU has it) gives the onnxruntime image, to that precision."""
    graph = checkpoint.with_name("tiny.onnx")
    runner = StyleRunner(graph, device="cpu", runtime="openvino")
    assert runner.style_names == TINY_NAMES and runner.providers == ["OpenVINO CPU"]
    image = textured(70, 90, seed=2, noise=20)
    weights = np.array([0.2, 0.5, 0.3], np.float32)
    got = runner.run(image[None].astype(np.float32) / 255, weights[None])
    want = StyleRunner(graph, device="cpu").run(image[None].astype(np.float32) / 255, weights[None])
    assert psnr(got, want) >= 35
    photo = tmp_path / "p.png"
    from PIL import Image

    Image.fromarray(image).save(photo)
    result = CliRunner().invoke(
        cli, ["stylize", str(graph), str(photo), "-o", str(tmp_path / "o.png"), "--runtime", "openvino", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == image.shape
    with pytest.raises(Exception, match="runs .onnx graphs"):
        from cin_style.infer.loader import load_stylizer

        load_stylizer(checkpoint, runtime="openvino")


def test_ort_format_runs_in_onnxruntime_with_its_operator_config(checkpoint, reference, tmp_path):
    summary = export(checkpoint, tmp_path / "tiny.ort")
    config = tmp_path / "tiny.required_operators.config"
    assert summary.files == [tmp_path / "tiny.ort", config]
    ops = config.read_text()
    assert "ai.onnx;18;" in ops and "Conv" in ops and "InstanceNormalization" in ops
    session = ort.InferenceSession(str(tmp_path / "tiny.ort"), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["cin_style.style_names"]) == TINY_NAMES
    run = open_converted(tmp_path / "tiny.ort", threads=1)
    for image, weights in random_cases():
        assert np.abs(run(image, weights) - reference(image, weights)).max() <= FP32_MAX_DIFF


def test_litert_model_has_a_fixed_size_and_matches(checkpoint, reference, tmp_path):
    summary = export(checkpoint, tmp_path / "tiny.tflite", size=(40, 56))
    assert summary.parity["cases"][0]["size"] == [40, 56] and summary.parity["max_abs_diff"] <= FP32_MAX_DIFF
    run = open_converted(tmp_path / "tiny.tflite", threads=1)
    for image, weights in random_cases(fixed=(40, 56)):
        assert np.abs(run(image, weights) - reference(image, weights)).max() <= FP32_MAX_DIFF
    with pytest.raises(UsageError, match="takes images of shape"):
        run(np.zeros((1, 3, 32, 32), np.float32), np.full((1, 3), 1 / 3, np.float32))
    meta = litert_metadata(tmp_path / "tiny.tflite")
    assert json.loads(meta["style_names"]) == TINY_NAMES and meta["image_size"] == "40x56"
    int8 = export(checkpoint, tmp_path / "int8.tflite", size=(40, 56), precision="int8")
    assert int8.parity["min_psnr_db"] >= MIN_PSNR_DB["int8"]


def test_coreml_package_has_the_blend_input_flexible_size_and_metadata(checkpoint, tmp_path):
    summary = export(checkpoint, tmp_path / "Tiny.mlpackage")
    facts = summary.facts
    assert summary.precision == "fp16" and (tmp_path / "Tiny.mlpackage").is_dir()
    image, weights = facts["inputs"]
    assert image["name"] == "image" and image["ranges"][2:] == [[16, 4096], [16, 4096]]
    assert weights["name"] == "style_weights" and weights["shape"] == [1, 3]
    assert [f["name"] for f in facts["outputs"]] == ["stylized"]
    assert {f["dtype"] for f in [*facts["inputs"], *facts["outputs"]]} == {"FLOAT32"}
    assert json.loads(facts["metadata"]["style_names"]) == TINY_NAMES
    assert facts["ops"]["conv"] == 8 and facts["ops"]["instance_norm"] == 8  # every conv, every CIN
    assert facts["ops"]["cast"] >= 3  # fp16 compute: casts at the float32 edges
    fp32 = export(checkpoint, tmp_path / "Full.mlpackage", precision="fp32").facts
    assert "cast" not in fp32["ops"] and fp32["ops"]["conv"] == 8
    lines = format_export(summary)
    assert "not run (predictions need macOS)" in lines[0] and lines[-1].startswith("wrote Tiny.mlpackage")
    again = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / "Tiny.mlpackage")])
    assert again.exit_code == 0 and "wrote Tiny.mlpackage" in again.output  # replaces the package
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Full.mlpackage", "Tiny.mlpackage"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "m.tflite", "--format", "openvino"], "writes a .xml file"),
        (["-o", "m.xml", "--tiled"], "--tiled is an ONNX variant"),
        (["-o", "m.tflite", "--bake", "alpha=1"], "keeps the style-weight input"),
        (["-o", "m.ort", "--precision", "int8"], "offers --precision fp32"),
        (["-o", "m.tflite", "--size", "big"], "--size takes HxW"),
        (["-o", "m.onnx", "--size", "64x64"], "--size is for --format tflite"),
        (["-o", "folder.xml"], "is a folder"),
    ],
)
def test_export_refuses_what_a_target_cannot_express(checkpoint, tmp_path, args, message):
    args = [a if not a.startswith(("m.", "folder.")) else str(tmp_path / a) for a in args]
    made = [tmp_path / "folder.xml"] if "folder.xml" in args[1] else []
    for folder in made:  # a folder where the file would go
        folder.mkdir()
    result = CliRunner().invoke(cli, ["export", str(checkpoint), *args])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert sorted(tmp_path.iterdir()) == made and not any(any(f.iterdir()) for f in made)


@pytest.mark.parametrize(
    "module, extra", [("openvino", "openvino"), ("litert_torch", "tflite"), ("coremltools", "coreml")]
)
def test_a_missing_converter_names_its_extra(checkpoint, tmp_path, monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    suffix = {"openvino": ".xml", "tflite": ".tflite", "coreml": ".mlpackage"}[extra]
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "-o", str(tmp_path / f"m{suffix}")])
    assert result.exit_code == 1 and f"pip install -e '.[{extra}]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_file_that_does_not_match_is_not_written(checkpoint, tmp_path, monkeypatch):
    from cin_style.deploy import targets

    monkeypatch.setattr(targets, "FP32_MAX_DIFF", 0.0)  # any rounding difference now fails
    with pytest.raises(UsageError, match="does not match onnxruntime"):
        export(checkpoint, tmp_path / "tiny.xml")
    assert not any(tmp_path.iterdir())  # neither the .xml nor its .bin


def test_video_runs_a_graph_in_openvino(checkpoint, reference, tmp_path, monkeypatch):
    import av
    from clips import panning_frames, write_clip

    from cin_style.infer.openvino_session import OpenVinoSession

    calls = []
    real_run = OpenVinoSession.run
    monkeypatch.setattr(OpenVinoSession, "run", lambda self, *a: calls.append(1) or real_run(self, *a))
    write_clip(tmp_path / "in.mp4", panning_frames(6, 48, 64), audio=False)
    graph = checkpoint.with_name("tiny.onnx")
    args = ["video", str(graph), str(tmp_path / "in.mp4"), "--style", "beta"]
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out.mp4"), "--runtime", "openvino"])
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6
    assert calls  # the frames went through OpenVINO
