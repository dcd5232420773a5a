"""Styles from words (CLIP).  No real CLIP weights exist on this machine: a tiny open_clip
model with random weights, built from a small config, stands in (no download)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_LOSS, random_encoder, tiny_train_config

from cin_style.blend.specs import SpecError
from cin_style.cli.main import cli
from cin_style.config import ClipConfig, ConfigError, OptimizeConfig
from cin_style.data.styles import parse_style_inputs
from cin_style.losses.clip import ClipDirectionLoss, ClipUnavailable, load_clip
from cin_style.nn.checkpoint import load_checkpoint, load_model
from cin_style.optimize.gatys import optimize_image
from cin_style.train.recipes import add_styles, train

open_clip = pytest.importorskip("open_clip")

TINY_CLIP = "cin-test-tiny-clip"


@pytest.fixture(scope="module")
def clip_weights(tmp_path_factory):
    """Register a tiny CLIP architecture with open_clip and save random weights for it."""
    folder = tmp_path_factory.mktemp("clip")
    config = {"embed_dim": 16,
              "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP)
    path = folder / "tiny-clip.pt"
    torch.save(model.state_dict(), path)
    return path


CLIP_DECREASE_BOUND = 0.8


def tiny_clip_config(weights, **overrides) -> ClipConfig:
    return ClipConfig(model=TINY_CLIP, weights=str(weights), **{"patches": 4, **overrides})


def test_text_styles_parse_and_name_themselves(tmp_path):
    specs = parse_style_inputs(["text:A watercolor painting, soft blue!", "ink=text:an ink wash"])
    assert [(s.name, s.text, s.path) for s in specs] == [
        ("a_watercolor_painting_soft_blue", "A watercolor painting, soft blue!", None),
        ("ink", "an ink wash", None)]
    assert specs[1].source == "text:an ink wash"
    with pytest.raises(SpecError, match="in words"):
        parse_style_inputs(["text:  "])


def test_a_safetensors_file_holding_a_pickle_is_one_line(clip_weights, tmp_path):
    """Issue 22: it raised SafetensorError with a traceback (nothing ran)."""
    import pickle

    fake = tmp_path / "x.safetensors"
    fake.write_bytes(pickle.dumps({"not": "tensors"}))
    with pytest.raises(ClipUnavailable, match="could not load CLIP"):
        load_clip(ClipConfig(model=TINY_CLIP, weights=str(fake)))


def test_clip_needs_weights_and_says_so(clip_weights, tmp_path):
    with pytest.raises(ClipUnavailable, match="--clip-weights FILE .* or --clip-pretrained"):
        load_clip(ClipConfig(model=TINY_CLIP))
    with pytest.raises(ClipUnavailable, match="not found"):
        load_clip(ClipConfig(model=TINY_CLIP, weights=str(tmp_path / "none.pt")))
    with pytest.raises(ClipUnavailable, match="unknown CLIP model"):
        load_clip(ClipConfig(model="no-such-net", weights=str(clip_weights)))
    # weights for another architecture: one line, not a traceback
    other = tmp_path / "other.pt"
    torch.save({"visual.proj": torch.zeros(3, 3)}, other)
    with pytest.raises(ClipUnavailable, match="could not load CLIP"):
        load_clip(ClipConfig(model=TINY_CLIP, weights=str(other)))


def test_clip_weights_load_as_tensors_only(clip_weights, tmp_path):
    """A checkpoint that would run code when unpickled is refused (weights_only)."""
    class Payload:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.pt"
    torch.save({"x": Payload()}, evil)
    with pytest.raises(ClipUnavailable, match="could not load CLIP"):
        load_clip(ClipConfig(model=TINY_CLIP, weights=str(evil)))


def test_direction_loss_is_finite_differentiable_and_rejects_easy_patches(clip_weights):
    model, tokenizer = load_clip(tiny_clip_config(clip_weights))
    loss = ClipDirectionLoss(model, tokenizer, tiny_clip_config(clip_weights), [None, "a watercolor painting"])
    assert torch.equal(loss.directions[0], torch.zeros_like(loss.directions[0]))
    assert torch.isclose(loss.directions[1].norm(), torch.tensor(1.0))
    output = torch.rand(2, 3, 40, 48, requires_grad=True)
    parts = loss(output, torch.rand(2, 3, 40, 48), torch.tensor([1, 1]), torch.Generator().manual_seed(0))
    assert set(parts) == {"direction", "patch"}
    assert all(torch.isfinite(v) and 0 <= float(v.detach()) <= 2 for v in parts.values())
    loss.weighted(parts).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    # with the threshold above any possible loss (2) every patch is rejected
    strict = ClipDirectionLoss(model, tokenizer, tiny_clip_config(clip_weights, threshold=2.5), ["x"])
    parts = strict(output, torch.rand(2, 3, 40, 48), torch.tensor([0, 0]))
    assert float(parts["patch"].detach()) == 0


def test_optimising_towards_a_text_lowers_the_clip_loss(clip_weights):
    # the whole-image direction term alone: random patches make single steps noisy
    content = np.random.default_rng(0).random((40, 48, 3)).astype(np.float32)
    config = OptimizeConfig(size=48, steps=60, optimizer="adam", lr=0.05, text="a watercolor painting",
                            clip=tiny_clip_config(clip_weights, patches=0), loss=TINY_LOSS)
    model, tokenizer = load_clip(config.clip)
    clip = ClipDirectionLoss(model, tokenizer, config.clip, [config.text])
    result = optimize_image(content, [], [], config, random_encoder(), clip=clip)
    clip_terms = [r["clip"] for r in result.history]
    assert "style" not in result.history[-1] and {"content", "tv", "clip"} <= set(result.history[-1])
    # The last/first ratio moves with open_clip's and torch's versions (the tiny CLIP is
    # randomly initialised): 0.39 with open_clip 3.3.0 and torch 2.14.1, 0.65 on the fresh
    # install of issue 21.  An optimiser that did nothing stays at 1.
    assert clip_terms[-1] < CLIP_DECREASE_BOUND * clip_terms[0]
    assert result.image.shape == content.shape
    with pytest.raises(ConfigError, match="--optimizer adam"):
        OptimizeConfig(text="a watercolor painting")  # L-BFGS by default


@pytest.mark.slow
def test_text_style_trains_beside_a_painting_and_round_trips(style_dir, content_dir, clip_weights,
                                                             tmp_path):
    from cin_style.deploy.onnx_export import export_onnx

    out = tmp_path / "m.pt"
    config = tiny_train_config(steps=30, checkpoint_every=30, lr=2e-2, clip=tiny_clip_config(clip_weights))
    result = train([style_dir / "alpha.png", "wc=text:a watercolor painting"], content_dir, out, config,
                   device="cpu", encoder=random_encoder(), samples=False, validation=content_dir)
    assert result.style_names == ["alpha", "wc"]
    clip_terms = [r["clip"] for r in result.history if r["clip"] > 0]
    style_terms = [r["style"] for r in result.history if r["style"] > 0]
    assert clip_terms and style_terms  # both kinds of style trained in the same run
    assert np.mean(clip_terms[-5:]) < np.mean(clip_terms[:5])
    data = load_checkpoint(out)
    assert data["style_prompts"] == {"wc": "a watercolor painting"}
    assert data["style_paths"][1] == "text:a watercolor painting"
    assert data["train_config"]["clip"]["weights"] == str(clip_weights)
    assert set(data["validation"][-1]["style_by_name"]) == {"alpha", "wc"}
    model, names = load_model(out)
    photo = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        painted, worded = (model(photo, torch.eye(2)[[k]]) for k in range(2))
        blend = model(photo, torch.tensor([[0.5, 0.5]]))
    assert not torch.allclose(painted, worded)
    assert not torch.allclose(blend, painted) and not torch.allclose(blend, worded)
    from cin_style.evaluate.scores import model_style_images

    assert model_style_images(out, names) == {"alpha": style_dir / "alpha.png"}  # no painting for words
    graph = export_onnx(model, names, tmp_path / "m.onnx")
    assert graph.style_names == ["alpha", "wc"] and graph.parity["max_abs_diff"] < 1e-4
    # resume reloads CLIP from the stored settings and continues exactly
    again = train([style_dir / "alpha.png", "wc=text:a watercolor painting"], content_dir, out,
                  tiny_train_config(steps=32), resume=True, device="cpu", encoder=random_encoder(),
                  samples=False)
    assert again.step == 32


def test_text_training_resumes_exactly(style_dir, content_dir, clip_weights, tmp_path):
    styles = [style_dir / "alpha.png", "text:a watercolor painting"]
    clip = tiny_clip_config(clip_weights)

    def run(out, steps, resume=False):
        return train(styles, content_dir, out, tiny_train_config(steps=steps, clip=clip), resume=resume,
                     device="cpu", encoder=random_encoder(), samples=False)

    straight = run(tmp_path / "a.pt", 4)
    run(tmp_path / "b.pt", 2)
    resumed = run(tmp_path / "b.pt", 4, resume=True)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_add_style_from_words_keeps_old_styles_bit_identical(style_dir, content_dir, clip_weights,
                                                             tmp_path):
    train([style_dir], content_dir, tmp_path / "m.pt", tiny_train_config(), device="cpu",
          encoder=random_encoder(), samples=False)
    before, _ = load_model(tmp_path / "m.pt")
    result = add_styles(tmp_path / "m.pt", ["ink=text:an ink wash painting"], content_dir,
                        tmp_path / "m4.pt", steps=3, device="cpu", encoder=random_encoder(),
                        samples=False, clip=tiny_clip_config(clip_weights))
    assert result.style_names == ["alpha", "beta", "gamma", "ink"]
    assert result.history[-1]["clip"] > 0
    photo = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        for k in range(3):
            w_old, w_new = torch.eye(3)[[k]], torch.eye(4)[[k]]
            assert torch.equal(before(photo, w_old), result.model(photo, w_new))
    assert load_checkpoint(tmp_path / "m4.pt")["style_prompts"] == {"ink": "an ink wash painting"}


def test_cli_text_style_without_weights_is_one_clear_line(style_dir, content_dir, vgg_weights_file,
                                                          tmp_path):
    photo = content_dir / "photo0.png"
    result = CliRunner().invoke(cli, ["optimize", str(photo), "-o", str(tmp_path / "o.png"), "--text",
                                      "a watercolor painting", "--vgg-weights", str(vgg_weights_file)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "--clip-weights" in result.output
    result = CliRunner().invoke(cli, ["optimize", str(photo), "-o", str(tmp_path / "o.png")])
    assert result.exit_code != 0 and "give a STYLE image or --text" in result.output
    result = CliRunner().invoke(cli, ["train", "--styles", "text:an ink wash", "--content", str(content_dir),
                                      "--out", str(tmp_path / "t.pt"), "--vgg-weights", str(vgg_weights_file),
                                      "--device", "cpu", "--steps", "1", "--image-size", "24"])
    assert result.exit_code != 0 and "--clip-weights" in result.output
    assert "Traceback" not in result.output


def test_cli_optimize_with_text_writes_an_image(content_dir, clip_weights, vgg_weights_file, tmp_path):
    out = tmp_path / "o.png"
    result = CliRunner().invoke(cli, ["optimize", str(content_dir / "photo0.png"), "-o", str(out),
                                      "--text", "a watercolor painting", "--size", "32", "--steps", "3",
                                      "--clip-model", TINY_CLIP, "--clip-weights", str(clip_weights),
                                      "--encoder", "vgg16", "--content-layers", "relu2_2",
                                      "--style-layers", "relu1_2",
                                      "--vgg-weights", str(vgg_weights_file), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "3 steps" in result.output
