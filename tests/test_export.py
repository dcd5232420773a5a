"""ONNX export, the onnxruntime runner, and other runtimes on a tiny model."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_NAMES, make_tiny_model, write_image
from PIL import Image

from cin_style.cli.main import cli
from cin_style.deploy.onnx_export import ExportError, export_onnx, read_metadata
from cin_style.infer import onnx_runner as runner_mod
from cin_style.infer.onnx_runner import RunnerError, StyleRunner
from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

NAMES = TINY_NAMES


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {
        "fp32": export_onnx(model, NAMES, folder / "m.onnx"),
        "baked": export_onnx(model, NAMES, folder / "baked.onnx", bake=np.array([0.25, 0.0, 0.75])),
        "fp16": export_onnx(model, NAMES, folder / "half.onnx", precision="fp16"),
        "fp16-weights": export_onnx(model, NAMES, folder / "stored.onnx", precision="fp16-weights"),
    }


def _torch(model, image, weights):
    with torch.no_grad():
        return model(torch.from_numpy(image), torch.from_numpy(weights)).numpy()


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.slow
def test_graph_is_checked_standard_and_dynamic(exported):
    proto = onnx.load(str(exported["fp32"].path))
    onnx.checker.check_model(proto, full_check=True)
    assert {n.domain for n in proto.graph.node} <= {""}  # standard ONNX ops only
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in proto.graph.input}
    assert dims["image"][1] == 3 and all(isinstance(d, str) for d in (dims["image"][0], *dims["image"][2:]))
    assert dims["style_weights"][1] == 3 and dims["style_weights"][0] == dims["image"][0]
    assert [o.name for o in proto.graph.output] == ["stylized"]
    assert proto.producer_name == "cin-style"


def test_metadata_present(exported):
    meta = read_metadata(exported["fp32"].path)
    assert json.loads(meta["style_names"]) == NAMES
    assert json.loads(meta["model_config"])["num_styles"] == 3
    assert meta["value_range"] == "[0, 1]" and meta["format_version"] == "1"
    parity = json.loads(meta["parity"])
    assert parity["max_abs_diff"] <= 1e-4 and len(parity["cases"]) == 3
    assert any(c["size"][0] % 2 for c in parity["cases"])  # an odd size was checked


@pytest.mark.parametrize("h,w", [(16, 16), (17, 31), (40, 24)])
def test_ort_parity_with_mixed_blends_in_one_batch(model, exported, h, w):
    image = np.random.default_rng(h).random((2, 3, h, w), dtype=np.float32)
    weights = np.array([[0, 1, 0], [0.2, 0.3, 0.5]], np.float32)
    got = _session(exported["fp32"].path).run(None, {"image": image, "style_weights": weights})[0]
    assert got.shape == (2, 3, h, w)
    assert np.abs(got - _torch(model, image, weights)).max() <= 1e-4


def test_baked_graph_equals_two_input_graph_with_that_blend(exported):
    image = np.random.default_rng(1).random((2, 3, 21, 18), dtype=np.float32)
    baked = _session(exported["baked"].path)
    assert [i.name for i in baked.get_inputs()] == ["image"]
    weights = np.tile(np.array([[0.25, 0.0, 0.75]], np.float32), (2, 1))
    two = _session(exported["fp32"].path).run(None, {"image": image, "style_weights": weights})[0]
    np.testing.assert_allclose(baked.run(None, {"image": image})[0], two, atol=1e-5)
    assert read_metadata(exported["baked"].path)["baked_blend"] == "alpha=0.25,gamma=0.75"


def test_fp16_graph_parity_figure(model, exported):
    proto = onnx.load(str(exported["fp16"].path))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    parity = json.loads(read_metadata(exported["fp16"].path)["parity"])
    assert parity["min_psnr_db"] >= 40
    image = np.random.default_rng(2).random((1, 3, 33, 27), dtype=np.float32)
    weights = np.array([[0.5, 0.5, 0]], np.float32)
    got = _session(exported["fp16"].path).run(None, {"image": image, "style_weights": weights})[0]
    assert got.dtype == np.float32
    mse = np.mean((got - _torch(model, image, weights)) ** 2)
    assert 10 * np.log10(1 / mse) >= 40


def test_fp16_weights_graph_stores_half_and_computes_in_fp32(model, exported):
    proto = onnx.load(str(exported["fp16-weights"].path))
    convs = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    kinds = {t.name: t.data_type for t in proto.graph.initializer}
    casts = {n.output[0]: n for n in proto.graph.node if n.op_type == "Cast"}
    for conv in convs:  # each kernel: an fp16 initializer cast to float32 right before use
        cast = casts[conv.input[1]]
        assert kinds[cast.input[0]] == onnx.TensorProto.FLOAT16 and cast.attribute[0].i == onnx.TensorProto.FLOAT
    assert not any(n.attribute[0].i == onnx.TensorProto.FLOAT16 for n in casts.values())  # no fp16 arithmetic
    def weight_bytes(path):
        return sum(len(t.raw_data) for t in onnx.load(str(path)).graph.initializer)

    assert weight_bytes(exported["fp16-weights"].path) < 0.55 * weight_bytes(exported["fp32"].path)
    image = np.random.default_rng(3).random((1, 3, 33, 27), dtype=np.float32)
    weights = np.array([[0.2, 0.3, 0.5]], np.float32)
    got = _session(exported["fp16-weights"].path).run(None, {"image": image, "style_weights": weights})[0]
    mse = np.mean((got - _torch(model, image, weights)) ** 2)
    assert 10 * np.log10(1 / mse) >= 40
    assert json.loads(read_metadata(exported["fp16-weights"].path)["parity"])["precision"] == "fp16-weights"


def test_upsampling_layers_export_as_exact_phase_convs(exported):
    """Nearest 2x + reflection pad + 3x3 conv (+ crop) is a 2x2 conv per output phase of
    the edge-padded input: the graph has no Resize, and its parity (even and odd sizes,
    checked at export) is fp32-exact."""
    proto = onnx.load(str(exported["fp32"].path))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("DepthToSpace") == 2 and "Resize" not in ops
    kernels = {t.name: list(t.dims) for t in proto.graph.initializer}
    phase_convs = [n for n in proto.graph.node if n.op_type == "Conv" and kernels[n.input[1]][2:] == [2, 2]]
    assert len(phase_convs) == 2
    parity = json.loads(read_metadata(exported["fp32"].path)["parity"])
    assert {tuple(c["size"]) for c in parity["cases"]} >= {(37, 53)} and parity["max_abs_diff"] < 1e-5


@pytest.mark.parametrize("rows, cols", [(10, 12), (9, 12), (10, 11), (9, 11)])
def test_phase_kernels_equal_upsample_pad_conv(rows, cols):
    from cin_style.deploy.onnx_export import _PhaseUpsampleConv, phase_kernels
    from cin_style.nn.stylenet import UpsampleConvCIN

    torch.manual_seed(rows * cols)
    plain = UpsampleConvCIN(2, 5, 4)
    x = torch.randn(2, 5, (rows + 1) // 2, (cols + 1) // 2)
    expected = plain.pre_norm(x, (rows, cols))
    assert expected.shape[-2:] == (rows, cols)
    fast = UpsampleConvCIN(2, 5, 4)
    fast.load_state_dict(plain.state_dict())
    fast.__class__ = _PhaseUpsampleConv
    fast.phase_kernel = phase_kernels(fast.block.conv.weight)
    fast.phase_bias = fast.block.conv.bias.detach().repeat(4)
    torch.testing.assert_close(fast.pre_norm(x, (rows, cols)), expected, rtol=1e-5, atol=1e-5)
    if rows % 2 == 0 and cols % 2 == 0:  # doubling sizes: exactly the resize-to-size definition
        block = plain.block
        resized = torch.nn.functional.interpolate(x, size=(rows, cols), mode="nearest")
        torch.testing.assert_close(block.conv(block.pad(resized)), expected)


@pytest.mark.slow
def test_the_crop_older_torch_exports_is_the_same_graph(model, exported, tmp_path, monkeypatch):
    """torch.export before 2.13 cannot trace the upsampling layers' crop as a slice
    (nn/stylenet.crop_to); the negative pad it gets instead exports, plain and tiled,
    with the same parity."""
    from cin_style.deploy.onnx_tiled import export_tiled_onnx
    from cin_style.nn import stylenet

    monkeypatch.setattr(stylenet, "SLICE_EXPORTS", False)
    plain = export_onnx(model, NAMES, tmp_path / "m.onnx")
    assert plain.parity["max_abs_diff"] < 1e-5
    pads = [sum(n.op_type == "Pad" for n in onnx.load(str(p)).graph.node) for p in (plain.path, exported["fp32"].path)]
    assert pads[0] == pads[1] + 2  # one per upsampling layer
    assert export_tiled_onnx(model, NAMES, tmp_path / "t.onnx").parity["max_abs_diff_uint8"] <= 1


def test_export_refuses_bad_requests(model, tmp_path):
    with pytest.raises(ExportError, match="precision"):
        export_onnx(model, NAMES, tmp_path / "x.onnx", precision="int8")
    with pytest.raises(ExportError, match="baked blend has 2 weights"):
        export_onnx(model, NAMES, tmp_path / "x.onnx", bake=np.array([1.0, 0.0]))
    assert not (tmp_path / "x.onnx").exists()


def test_reference_evaluator_and_opencv_agree_with_onnxruntime(exported):
    from onnx.reference import ReferenceEvaluator

    cv2 = pytest.importorskip("cv2")
    path = str(exported["fp32"].path)
    image = np.random.default_rng(3).random((1, 3, 24, 20), dtype=np.float32)
    weights = np.array([[0.1, 0.6, 0.3]], np.float32)
    expected = _session(path).run(None, {"image": image, "style_weights": weights})[0]
    reference = ReferenceEvaluator(path).run(None, {"image": image, "style_weights": weights})[0]
    assert np.abs(reference - expected).max() <= 1e-4
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(image, "image")
    net.setInput(weights, "style_weights")
    assert np.abs(net.forward() - expected).max() <= 1e-4


def test_runner_imports_and_runs_without_torch(exported):
    script = textwrap.dedent(f"""
        import sys, numpy as np
        from cin_style.infer.onnx_runner import StyleRunner
        runner = StyleRunner({str(exported["fp32"].path)!r}, device="cpu")
        out = runner.stylize(np.zeros((20, 17, 3), np.uint8), "beta=1")
        assert out.shape == (20, 17, 3) and out.dtype == np.uint8, (out.shape, out.dtype)
        assert "torch" not in sys.modules, "torch was imported"
        print(runner.device, runner.style_names)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "cpu ['alpha', 'beta', 'gamma']"


def test_runner_stylize_batches_mixed_sizes_and_blends(model, exported):
    runner = StyleRunner(exported["fp32"].path, device="cpu")
    rng = np.random.default_rng(4)
    images = [rng.random((18, 22, 3)).astype(np.float32), Image.new("RGB", (30, 16), (10, 200, 30)),
              rng.random((18, 22, 3)).astype(np.float32)]
    weights = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 2]], np.float32)
    outs = runner.stylize(images, weights, grain=0)  # the network alone, as _torch runs it
    assert isinstance(outs[1], Image.Image) and outs[1].size == (30, 16)  # PIL in, PIL out
    assert [outs[0].shape, outs[2].shape] == [(18, 22, 3), (18, 22, 3)]
    assert outs[0].dtype == np.float32
    expected = _torch(model, images[2].transpose(2, 0, 1)[None].copy(),
                      np.array([[0, 0, 1]], np.float32))[0].transpose(1, 2, 0)
    assert np.abs(outs[2] - expected).max() <= 1e-4  # the [0, 0, 2] row was normalised
    with pytest.raises(ValueError, match="unknown style 'delta'; valid styles: alpha, beta, gamma"):
        runner.stylize(images[0], "delta=1")
    with pytest.raises(RunnerError, match="at least 16x16"):
        runner.run(np.zeros((1, 8, 8, 3), np.float32), np.array([[1, 0, 0]], np.float32))


def test_cuda_request_without_cuda_is_a_clear_error(exported, monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(RunnerError, match="has no CUDA provider; install onnxruntime-gpu"):
        StyleRunner(exported["fp32"].path, device="cuda")
    assert StyleRunner(exported["fp32"].path, device="auto").device == "cpu"  # auto falls back
    monkeypatch.setattr(runner_mod, "_installed_ort_distributions",
                        lambda: ["onnxruntime", "onnxruntime-gpu"])
    with pytest.raises(RunnerError, match="both onnxruntime and onnxruntime-gpu"):
        StyleRunner(exported["fp32"].path, device="cuda")


@pytest.mark.skipif(runner_mod.cuda_driver_present(), reason="this machine has a GPU driver")
def test_cuda_request_on_a_machine_without_gpu(exported):
    with pytest.raises(RunnerError, match="runs on the CPU"):
        StyleRunner(exported["fp32"].path, device="cuda")


@pytest.mark.slow
def test_cli_export_and_stylize_onnx_with_json(model, tmp_path):
    ckpt = atomic_torch_save(make_checkpoint(model, NAMES), tmp_path / "m.pt")
    cli_runner = CliRunner()
    onnx_path = tmp_path / "m.onnx"
    result = cli_runner.invoke(cli, ["export", str(ckpt), "-o", str(onnx_path), "-q"])
    assert result.exit_code == 0, result.output
    assert "parity vs PyTorch" in result.output and onnx_path.is_file()
    photo = write_image(tmp_path / "photo.png", seed=5, size=(35, 27))
    outputs = {}
    for model_path in (ckpt, onnx_path):
        out = tmp_path / f"out_{model_path.suffix[1:]}.png"
        result = cli_runner.invoke(cli, ["stylize", str(model_path), str(photo), "-o", str(out),
                                         "--style", "alpha=1", "--style", "gamma=3", "--json"])
        assert result.exit_code == 0, result.output
        record = json.loads(result.output.strip().splitlines()[-1])
        assert record["device"] == "cpu" and record["blend"] == "alpha=0.25,gamma=0.75"
        assert record["size"] == [35, 27]
        outputs[model_path.suffix] = np.asarray(Image.open(out), dtype=np.int16)
    assert np.abs(outputs[".pt"] - outputs[".onnx"]).max() <= 1  # same pixels, up to rounding
    result = cli_runner.invoke(cli, ["stylize", str(onnx_path), str(photo), "-o",
                                     str(tmp_path / "x.png"), "--style", "nope"])
    assert result.exit_code == 1 and "valid styles: alpha, beta, gamma" in result.output
    # asserted on every machine: a CPU-only provider list stands in for a missing GPU
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
        result = cli_runner.invoke(cli, ["stylize", str(onnx_path), str(photo), "-o",
                                         str(tmp_path / "x.png"), "--device", "cuda"])
    assert result.exit_code == 1 and "has no CUDA provider" in result.output


@pytest.mark.slow
def test_cli_export_bake_and_errors(model, tmp_path):
    ckpt = atomic_torch_save(make_checkpoint(model, NAMES), tmp_path / "m.pt")
    cli_runner = CliRunner()
    result = cli_runner.invoke(cli, ["export", str(ckpt), "-o", str(tmp_path / "b.onnx"),
                                     "--bake", "beta=1,gamma=1", "--no-verify", "-q"])
    assert result.exit_code == 0 and "baked beta=0.5,gamma=0.5" in result.output
    photo = write_image(tmp_path / "photo.png", seed=6, size=(20, 20))
    result = cli_runner.invoke(cli, ["stylize", str(tmp_path / "b.onnx"), str(photo), "-o",
                                     str(tmp_path / "o.png"), "--json"])
    assert result.exit_code == 0 and '"blend": "beta=0.5,gamma=0.5"' in result.output
    result = cli_runner.invoke(cli, ["stylize", str(tmp_path / "b.onnx"), str(photo), "-o",
                                     str(tmp_path / "o.png"), "--style", "alpha"])
    assert result.exit_code == 2 and "baked blend" in result.output
    result = cli_runner.invoke(cli, ["export", str(ckpt), "-o", str(tmp_path / "b.onnx"),
                                     "--bake", "zeta=1"])
    assert result.exit_code == 1 and "unknown style 'zeta'" in result.output
    result = cli_runner.invoke(cli, ["export", str(ckpt), "-o", str(tmp_path / "b.txt")])
    assert result.exit_code == 2 and ".onnx" in result.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"nope")
    result = cli_runner.invoke(cli, ["styles", str(junk)])
    assert result.exit_code == 1 and "onnxruntime cannot load it" in result.output


def test_instance_norm_nodes_apply_the_blended_affine_themselves(exported):
    """Per-sample blended γ/β go into InstanceNormalization itself (the batch folded
    into the channels makes them per-channel): no Mul/Add pass over the activations
    follows a norm, and its scale and bias are computed from style_weights."""
    proto = onnx.load(str(exported["fp32"].path))
    fixed = {t.name for t in proto.graph.initializer}
    fixed |= {n.output[0] for n in proto.graph.node if n.op_type == "Constant"}
    norms = [n for n in proto.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == 8  # head, 2 down, 2 in the one residual block, 2 up, tail
    consumers = {}
    for node in proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    for node in norms:
        assert node.input[1] not in fixed and node.input[2] not in fixed
        assert consumers[node.output[0]] == ["Reshape"]  # back to [N, C, H, W], nothing else


@pytest.mark.slow
def test_fp16_export_refuses_a_graph_that_overflows(tmp_path):
    net = make_tiny_model()
    with torch.no_grad():  # beyond fp16's range: the half graph computes inf, then NaN
        next(net.parameters()).mul_(1e8)
    with pytest.raises(ExportError, match="non-finite"):
        export_onnx(net, NAMES, tmp_path / "bad.onnx", precision="fp16")
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.slow
def test_export_leaves_the_callers_model_as_it_was(tmp_path):
    net = make_tiny_model().train()
    net.double()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, NAMES, tmp_path / "m.onnx")
    assert net.training and next(net.parameters()).dtype == torch.float64
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_large_images_run_without_the_cpu_arena_and_give_the_same_result(exported, monkeypatch):
    from cin_style.infer import onnx_runner as runner_module

    runner = StyleRunner(exported["fp32"].path, device="cpu")
    image = np.random.default_rng(0).random((1, 3, 40, 48), dtype=np.float32)
    weights = np.eye(3, dtype=np.float32)[[1]]
    small = runner.run_nchw(image, weights)
    assert runner._lean_session is None  # small images: the arena session
    monkeypatch.setattr(runner_module, "ARENA_MAX_PIXELS", 40 * 48 - 1)
    large = runner.run_nchw(image, weights)
    assert runner._lean_session is not None
    np.testing.assert_allclose(large, small, atol=1e-6)
