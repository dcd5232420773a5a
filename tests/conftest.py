"""Shared fixtures: tiny networks, a random-init VGG and synthetic images.

Nothing here touches the network or the real VGG weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cin_style.config import LossConfig, StyleNetConfig, TrainConfig
from cin_style.io.synthetic import smooth_field
from cin_style.nn.stylenet import StyleNet
from cin_style.nn.vgg import VGGEncoder

# Small crops and shallow layers keep a training step to a few milliseconds.
TINY_LOSS = LossConfig(content_layers={"relu2_2": 1.0},
                       style_layers={"relu1_2": 1.0, "relu2_2": 1.0},
                       style_weight=1e3, tv_weight=1e-3)


def tiny_train_config(**overrides) -> TrainConfig:
    base = dict(steps=4, batch_size=2, image_size=24, style_size=32, lr=1e-2, seed=3,
                checkpoint_every=2, sample_every=2,
                network=StyleNetConfig(base_width=4, num_residual_blocks=1),
                loss=TINY_LOSS)
    base.update(overrides)
    return TrainConfig(**base)


def random_encoder(layers=("relu1_2", "relu2_2"), seed: int = 0) -> VGGEncoder:
    torch.manual_seed(seed)
    return VGGEncoder("vgg16", layers)


@pytest.fixture
def encoder() -> VGGEncoder:
    return random_encoder()


def make_tiny_model() -> StyleNet:
    """3 styles, base width 4, one residual block, with distinct γ/β per style."""
    torch.manual_seed(0)
    model = StyleNet(StyleNetConfig(num_styles=3, base_width=4, num_residual_blocks=1))
    # Spread γ/β away from their identical init so styles really differ.
    with torch.no_grad():
        for norm in model.cin_layers():
            norm.gamma.uniform_(0.5, 1.5)
            norm.beta.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.fixture
def tiny_model() -> StyleNet:
    return make_tiny_model()


# The tiny model's style names wherever a test needs them named.
TINY_NAMES = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def model() -> StyleNet:
    """``make_tiny_model`` named TINY_NAMES, shared by a module's tests."""
    net = make_tiny_model()
    net.style_names = TINY_NAMES
    return net


def write_image(path: Path, seed: int, size=(40, 32), mode="RGB") -> Path:
    """A small photo-like image: random colour cells with fine noise (io.synthetic)."""
    w, h = size
    array = (smooth_field(h, w, seed, cell=8) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).convert(mode).save(path)
    return path


@pytest.fixture
def content_dir(tmp_path) -> Path:
    folder = tmp_path / "content"
    for i in range(4):
        write_image(folder / f"photo{i}.png", seed=i)
    write_image(folder / "nested" / "deep.jpg", seed=9)
    return folder


@pytest.fixture
def style_dir(tmp_path) -> Path:
    folder = tmp_path / "styles"
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        write_image(folder / f"{name}.png", seed=100 + i, size=(36, 36))
    return folder


@pytest.fixture
def vgg_weights_file(tmp_path) -> Path:
    """A random-init VGG16 weights file in cin-style's format (for CLI tests)."""
    torch.manual_seed(1)
    enc = VGGEncoder("vgg16", ["relu5_3"])
    state = {k.replace("stack.", ""): v for k, v in enc.state_dict().items()}
    path = tmp_path / "vgg16-random.pt"
    torch.save(state, path)
    return path


# CIN_STYLE_CUDA_DRY_RUN=1 runs the `cuda` tests on the CPU (gloo for NCCL): the same
# code paths, to prove the tests themselves before a GPU is at hand (training/gpu/README.md).
CUDA_DRY_RUN = os.environ.get("CIN_STYLE_CUDA_DRY_RUN") == "1"


@pytest.fixture
def cuda_device() -> torch.device:
    """The device of the `cuda` tests: the GPU, or the CPU in a dry run."""
    return torch.device("cuda" if torch.cuda.is_available() and not CUDA_DRY_RUN else "cpu")


def pytest_collection_modifyitems(config, items):
    """`cuda` tests skip, saying why, where torch sees no CUDA device (unless dry-run)."""
    if torch.cuda.is_available() or CUDA_DRY_RUN:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False here)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    """The tests' parity checks compare with float32 PyTorch, so "auto" runs graphs on
    onnxruntime here (OpenVINO's bf16 is its own test: test_fastest_runtime.py)."""
    from cin_style.infer.runtimes import RUNTIME_ENV

    os.environ.setdefault(RUNTIME_ENV, "onnxruntime")
