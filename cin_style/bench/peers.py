"""pytorch/examples' fast_neural_style, loaded from the folder a user gives (never copied
here), for side-by-side benchmarks: their modules, their training step, and their
Vgg16 built from our VGG16 weights in place of torchvision's download."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch

from cin_style.nn.vgg_layers import layer_names


@contextmanager
def _torchvision_vgg16_from(state_dict: Mapping[str, torch.Tensor]):
    """Make ``torchvision.models.vgg16(weights=...)`` build the net from our
    weights instead of downloading (their Vgg16 asks for ImageNet weights).
    Every conv their Vgg16 runs (to relu4_3) must be in ``state_dict``: a net
    left partly random would time the right step on the wrong network."""
    from torchvision import models

    if not isinstance(state_dict, Mapping):
        raise TypeError(f"the peer's VGG weights must be a state dict, got a {type(state_dict).__name__}")
    needed = [n for n in layer_names("vgg16")[: layer_names("vgg16").index("relu4_3")] if n.startswith("conv")]
    missing = [n for n in needed if f"{n}.weight" not in state_dict or f"{n}.bias" not in state_dict]
    if missing:
        raise KeyError(f"the peer's VGG weights lack {', '.join(missing)}")

    original = models.vgg16

    def vgg16(*args, **kwargs):
        kwargs["weights"] = None
        net = original(*args, **kwargs)
        convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
        names = [n for n in layer_names("vgg16") if n.startswith("conv")]
        with torch.no_grad():
            for module, name in zip(convs, names):
                if f"{name}.weight" in state_dict:
                    module.weight.copy_(state_dict[f"{name}.weight"])
                    module.bias.copy_(state_dict[f"{name}.bias"])
        return net

    models.vgg16 = vgg16
    try:
        yield
    finally:
        models.vgg16 = original


def _import_from(folder: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{folder / (name + '.py')} not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # their files import each other by plain name
    spec.loader.exec_module(module)
    return module


def load_peer_modules(peer_dir: Path, *names: str) -> list:
    """Their modules by file name (they import each other by plain names such as
    ``utils``), without leaving those names behind in ``sys.modules``; a folder that
    lacks one of them is refused, naming what is missing."""
    peer_dir = Path(peer_dir)
    missing = [f"{n}.py" for n in names if not (peer_dir / f"{n}.py").is_file()]
    if missing:
        raise FileNotFoundError(f"{peer_dir}: not a fast_neural_style folder (missing {', '.join(missing)})")
    saved = {n: sys.modules.get(n) for n in ("transformer_net", "vgg", "utils", *names)}
    try:
        return [_import_from(peer_dir, name) for name in names]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def peer_vgg_state(weights_file: str | Path) -> dict[str, torch.Tensor]:
    """Our VGG16 weights file as the state dict the peer's Vgg16 is built from."""
    from cin_style.nn.vgg_weights import load_state_dict_file

    state, _preprocessing = load_state_dict_file(weights_file, "vgg16")
    return state


def peer_step(peer_dir: Path, size: int, batch: int, vgg_state: dict, device: str = "cpu") -> Callable[[], None]:
    """pytorch/examples fast_neural_style: one iteration of its training loop (on ``device``,
    as their script moves model, VGG and batches there)."""
    transformer_net, vgg_module, utils = load_peer_modules(peer_dir, "transformer_net", "vgg", "utils")
    torch.manual_seed(0)
    transformer = transformer_net.TransformerNet().to(device)
    optimizer = torch.optim.Adam(transformer.parameters(), 1e-3)
    mse_loss = torch.nn.MSELoss()
    with _torchvision_vgg16_from(vgg_state):
        vgg = vgg_module.Vgg16(requires_grad=False).to(device)
    style = torch.rand(batch, 3, 384, 384, device=device) * 255
    gram_style = [utils.gram_matrix(y) for y in vgg(utils.normalize_batch(style))]
    generator = torch.Generator().manual_seed(0)

    def step():  # the body of their `for batch_id, (x, _) in enumerate(train_loader)` loop
        x = (torch.rand(batch, 3, size, size, generator=generator) * 255).to(device)
        optimizer.zero_grad()
        y = transformer(x)
        y = utils.normalize_batch(y)
        x = utils.normalize_batch(x)
        features_y = vgg(y)
        features_x = vgg(x)
        content_loss = 1e5 * mse_loss(features_y.relu2_2, features_x.relu2_2)
        style_loss = 0.0
        for ft_y, gm_s in zip(features_y, gram_style):
            style_loss += mse_loss(utils.gram_matrix(ft_y), gm_s[:batch, :, :])
        total = content_loss + 1e10 * style_loss
        total.backward()
        optimizer.step()
        content_loss.item()

    return step
