"""The CUDA paths: bf16 + channels-last training with exact-enough resume, the crop
prefetch thread, a one-process NCCL group, PyTorch inference on the GPU against the CPU
in fp32/fp16/bf16, export of a GPU-trained checkpoint, tiling on the GPU.

Skipped without a GPU; `CIN_STYLE_CUDA_DRY_RUN=1` runs them on the CPU (gloo instead of
NCCL) to prove the tests themselves.  Tolerances, and why:
- GPU training is not bit-reproducible (its kernels add in no fixed order), so the resumed
  run is held to what two straight runs differ by: within RESUME_NOISE_FACTOR times the
  larger of two such gaps, in per-step loss (relative) and mean weight difference, with
  floors RESUME_LOSS_RTOL and RESUME_WEIGHT_ATOL for a device that repeats itself exactly.
- fp32 inference on the GPU uses TF32 convolutions by default (10-bit mantissa): outputs
  match the CPU's to FP32_MAX_DIFF; fp16/bf16 autocast to a PSNR floor (bf16 has 8 bits of
  mantissa, so its floor is lower).
"""

import dataclasses
import socket

import numpy as np
import pytest
import torch
from conftest import TINY_NAMES, make_tiny_model, random_encoder, tiny_train_config

from cin_style.data.photos import ContentImages
from cin_style.data.styles import parse_style_inputs
from cin_style.infer.torch_stylizer import TorchStylizer
from cin_style.io.image import psnr
from cin_style.io.synthetic import textured
from cin_style.nn.checkpoint import atomic_torch_save, load_checkpoint, make_checkpoint
from cin_style.nn.stylenet import StyleNet
from cin_style.train.recipes import StyleRows, build_trainer, train

pytestmark = pytest.mark.cuda

RESUME_LOSS_RTOL = 1e-3
RESUME_WEIGHT_ATOL = 1e-6
RESUME_NOISE_FACTOR = 4
FP32_MAX_DIFF = 5e-3
MIN_PSNR_DB = {"fp16": 40.0, "bf16": 30.0}
LR = 1e-2


def trained_run(style_dir, content_dir, out, device, steps, resume=False):
    config = tiny_train_config(steps=steps, lr=LR, precision="bf16", checkpoint_every=3)
    return train([style_dir], content_dir, out, config, resume=resume, device=device.type,
                 encoder=random_encoder(), samples=False)


def test_bf16_channels_last_training_resumes_like_a_straight_run(style_dir, content_dir, tmp_path, cuda_device):
    """A resumed run is as close to a straight run as two straight runs are to each other
    (on the GPU every run differs a little; on the CPU all three are identical)."""
    straight = trained_run(style_dir, content_dir, tmp_path / "a.pt", cuda_device, 6)
    repeats = [trained_run(style_dir, content_dir, tmp_path / f"r{i}.pt", cuda_device, 6) for i in range(2)]
    trained_run(style_dir, content_dir, tmp_path / "b.pt", cuda_device, 3)
    resumed = trained_run(style_dir, content_dir, tmp_path / "b.pt", cuda_device, 6, resume=True)
    a = load_checkpoint(tmp_path / "a.pt")
    assert a["train_config"]["precision"] == "bf16" and resumed.step == 6

    def gaps(path):
        other = load_checkpoint(path)
        la, lb = [h["loss"] for h in a["history"]], [h["loss"] for h in other["history"]]
        assert len(la) == len(lb) == 6
        loss_gap = max(abs(x - y) / abs(x) for x, y in zip(la, lb))
        weights = torch.cat([(a["model"][k].float() - other["model"][k].float()).abs().flatten() for k in a["model"]])
        # Adam's first steps move a weight by about lr·sign(g), whatever the gradient's rounding.
        assert weights.max() <= 2 * LR * 6
        return loss_gap, float(weights.mean())

    noise = [gaps(tmp_path / f"r{i}.pt") for i in range(len(repeats))]
    resume = gaps(tmp_path / "b.pt")
    print(f"straight vs straight (loss rel, weight mean abs): {noise}; resumed vs straight: {resume}")
    for k, floor in enumerate((RESUME_LOSS_RTOL, RESUME_WEIGHT_ATOL)):
        assert resume[k] <= max(floor, RESUME_NOISE_FACTOR * max(n[k] for n in noise)), (resume, noise)
    assert all(torch.isfinite(v).all() for v in straight.model.state_dict().values())


def make_trainer(style_dir, content_dir, device, **trainer_options):
    config = tiny_train_config(steps=4, precision="bf16")
    specs = parse_style_inputs([style_dir])
    torch.manual_seed(0)
    model = StyleNet(dataclasses.replace(config.network, num_styles=len(specs))).to(device)
    return build_trainer(StyleRows.all_styles(model, specs), ContentImages(content_dir, config.image_size), config,
                         device, random_encoder().to(device), **trainer_options)


def test_the_prefetch_thread_draws_the_same_batches(style_dir, content_dir, cuda_device):
    """On CUDA the next batch is cut on a thread (and channels-last is on by default);
    the batches, weights and draws are the same as without it."""
    ahead = make_trainer(style_dir, content_dir, cuda_device, prefetch=True, channels_last=True)
    plain = make_trainer(style_dir, content_dir, cuda_device, prefetch=False, channels_last=True)
    if cuda_device.type == "cuda":
        default = make_trainer(style_dir, content_dir, cuda_device)
        assert default.prefetch and default.channels_last
    for _ in range(3):
        a, b = ahead.next_batch(), plain.next_batch()
        ahead.step, plain.step = ahead.step + 1, plain.step + 1
        assert torch.equal(a.content.cpu(), b.content.cpu()) and torch.equal(a.weights.cpu(), b.weights.cpu())
        assert a.content.is_contiguous(memory_format=torch.channels_last)
        assert a.content.device.type == cuda_device.type
    ahead._executor.shutdown(wait=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_one_process_nccl_group_runs_our_collectives(cuda_device):
    import torch.distributed as dist

    from cin_style.train import distributed

    backend = "nccl" if cuda_device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        assert dist.get_backend() == backend and distributed.current().size == 1
        values = torch.tensor([1.0, 3.0], device=cuda_device)
        dist.all_reduce(values)
        assert values.tolist() == [1.0, 3.0]
        assert distributed.any_of(False, True) == (False, True)
    finally:
        distributed.leave()
    assert not dist.is_initialized()


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "tiny.pt"
    atomic_torch_save(make_checkpoint(make_tiny_model(), TINY_NAMES), path)
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_inference_on_the_gpu_matches_the_cpu(checkpoint, cuda_device, precision):
    images = np.stack([textured(40, 56, seed=i, noise=10) for i in range(2)]).astype(np.float32) / 255
    weights = np.array([[1, 0, 0], [0.2, 0.5, 0.3]], np.float32)
    expected = TorchStylizer(checkpoint, device="cpu").run(images, weights)
    if precision == "fp16" and cuda_device.type == "cpu":
        pytest.skip("fp16 autocast is a GPU path (the CPU dry run checks fp32 and bf16)")
    got = TorchStylizer(checkpoint, device=cuda_device.type, precision=precision).run(images, weights)
    assert got.dtype == np.float32 and got.shape == expected.shape
    if precision == "fp32":
        assert np.abs(got - expected).max() <= FP32_MAX_DIFF
    else:
        assert psnr(got, expected) >= MIN_PSNR_DB[precision]


def test_a_gpu_trained_checkpoint_exports_with_parity(style_dir, content_dir, tmp_path, cuda_device):
    from cin_style.deploy.export import export
    from cin_style.infer.onnx_runner import StyleRunner

    trained_run(style_dir, content_dir, tmp_path / "gpu.pt", cuda_device, 2)
    summary = export(tmp_path / "gpu.pt", tmp_path / "gpu.onnx")
    assert summary.parity["max_abs_diff"] < 1e-4
    runner = StyleRunner(tmp_path / "gpu.onnx", device="cpu")
    assert runner.style_names == ["alpha", "beta", "gamma"]


def test_tiling_on_the_gpu_gives_the_untiled_image(checkpoint, cuda_device):
    image = textured(150, 203, seed=1, noise=20)
    weights = np.array([0.2, 0.5, 0.3], np.float32)
    gpu = TorchStylizer(checkpoint, device=cuda_device.type)
    tiled = gpu.run_tiled(image, weights, tile=64)
    whole = TorchStylizer(checkpoint, device="cpu").run(image[None].astype(np.float32) / 255, weights[None])[0]
    expected = (np.clip(whole, 0, 1) * 255 + 0.5).astype(np.uint8)
    assert tiled.shape == image.shape
    assert np.abs(tiled.astype(int) - expected).max() <= 2  # uint8 rounding, and TF32 on the GPU

