import dataclasses

import numpy as np
import pytest
import torch
from conftest import random_encoder, tiny_train_config
from PIL import Image

from cin_style.config import TrainConfig
from cin_style.data.styles import parse_style_inputs
from cin_style.errors import DataError
from cin_style.nn.checkpoint import CheckpointError, load_checkpoint, load_model
from cin_style.nn.stylenet import one_hot_weights
from cin_style.train.recipes import add_styles, train


def run(style_dir, content_dir, out, **kw):
    config = kw.pop("config", None) or tiny_train_config()
    return train([style_dir], content_dir, out, config, device="cpu", encoder=random_encoder(), **kw)


def test_checkpoint_holds_everything_needed(style_dir, content_dir, tmp_path):
    result = run(style_dir, content_dir, tmp_path / "m.pt")
    data = load_checkpoint(tmp_path / "m.pt")
    for key in ("format_version", "model_config", "style_names", "train_config", "step",
                "optimizer", "rng", "model"):
        assert key in data
    assert data["style_names"] == ["alpha", "beta", "gamma"] == result.style_names
    assert data["step"] == 4 and data["model_config"]["num_styles"] == 3
    tiny = tiny_train_config()
    restored = TrainConfig.from_dict(data["train_config"], network=data["model_config"])
    assert restored == dataclasses.replace(tiny, network=dataclasses.replace(tiny.network, num_styles=3))
    # the network's shape is stored once: as model_config, not again in train_config
    assert "network" not in data["train_config"] and "base_width" not in data["train_config"]


def test_checkpoints_from_before_the_network_field_still_resume(style_dir, content_dir, tmp_path):
    run(style_dir, content_dir, tmp_path / "m.pt", config=tiny_train_config(steps=2))
    data = load_checkpoint(tmp_path / "m.pt")
    legacy = {**data["train_config"], "base_width": 4, "residual_blocks": 1}
    torch.save({**data, "train_config": legacy, "loss_config": legacy["loss"]}, tmp_path / "old.pt")
    assert TrainConfig.from_dict(legacy).network.base_width == 4
    resumed = run(style_dir, content_dir, tmp_path / "old.pt", config=tiny_train_config(steps=3),
                  resume=True)
    assert resumed.step == 3 and resumed.model.config.base_width == 4


def test_resume_is_exact(style_dir, content_dir, tmp_path):
    straight = run(style_dir, content_dir, tmp_path / "a.pt", config=tiny_train_config(steps=4))
    run(style_dir, content_dir, tmp_path / "b.pt", config=tiny_train_config(steps=2))
    resumed = run(style_dir, content_dir, tmp_path / "b.pt", config=tiny_train_config(steps=4),
                  resume=True)
    assert resumed.step == 4
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    opt_a = load_checkpoint(tmp_path / "a.pt")["optimizer"]["state"]
    opt_b = load_checkpoint(tmp_path / "b.pt")["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)


def test_resume_refuses_other_styles(style_dir, content_dir, tmp_path):
    run(style_dir, content_dir, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="trained on styles"):
        train([style_dir / "alpha.png"], content_dir, tmp_path / "m.pt", tiny_train_config(),
              resume=True, device="cpu", encoder=random_encoder())


def test_init_from_starts_a_fresh_run_from_a_trained_models_weights(style_dir, content_dir, tmp_path):
    from cin_style.nn.checkpoint import file_sha256

    first = run(style_dir, content_dir, tmp_path / "a.pt", config=tiny_train_config(steps=3))
    # a different shape asked for: the starting model's shape wins; a vanishing rate
    # leaves its weights where they were after the fresh optimizer's one step
    config = dataclasses.replace(tiny_train_config(steps=1, lr=1e-12, lr_schedule="cosine"),
                                 network=dataclasses.replace(first.model.config, base_width=6),
                                 init_from=str(tmp_path / "a.pt"))
    tail = run(style_dir, content_dir, tmp_path / "b.pt", config=config)
    assert tail.step == 1 and tail.model.config == first.model.config
    start, got = first.model.state_dict(), tail.model.state_dict()
    assert max((start[k] - got[k]).abs().max().item() for k in start) < 1e-6
    fresh = run(style_dir, content_dir, tmp_path / "c.pt", config=tiny_train_config(steps=1))
    assert max((start[k] - fresh.model.state_dict()[k]).abs().max().item() for k in start) > 1e-3
    saved = load_checkpoint(tmp_path / "b.pt")["train_config"]
    assert saved["init_from"] == str(tmp_path / "a.pt") and saved["init_sha256"] == file_sha256(tmp_path / "a.pt")
    assert load_checkpoint(tmp_path / "b.pt")["optimizer"]["state"][0]["step"].item() == 1  # fresh Adam
    resumed = run(style_dir, content_dir, tmp_path / "b.pt",
                  config=dataclasses.replace(config, steps=2), resume=True)
    assert resumed.step == 2  # a run begun from another model resumes like any other
    with pytest.raises(CheckpointError, match="same names, same order"):
        train([style_dir / "alpha.png"], content_dir, tmp_path / "d.pt", config, device="cpu",
              encoder=random_encoder())


def test_init_from_cli_refuses_resume_and_a_shape(style_dir, content_dir, tmp_path):
    from click.testing import CliRunner

    from cin_style.cli.main import cli

    common = ["train", "--styles", str(style_dir), "--content", str(content_dir), "--out",
              str(tmp_path / "m.pt"), "--init-from", str(tmp_path / "a.pt")]
    for extra, message in ((["--resume"], "--resume continues one"), (["--net", "lite"], "network shape")):
        result = CliRunner().invoke(cli, common + extra)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_losses_fall_and_every_style_trains(style_dir, content_dir, tmp_path):
    config = tiny_train_config(steps=40, checkpoint_every=40, sample_every=40, lr=2e-2)
    result = run(style_dir, content_dir, tmp_path / "m.pt", config=config, samples=False)
    losses = [r["loss"] for r in result.history]
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    for norm in result.model.cin_layers():  # each style's γ rows moved away from 1
        assert (norm.gamma - 1).abs().amax(dim=1).min() > 0


def test_sample_grid_has_a_row_per_style(style_dir, content_dir, tmp_path):
    result = run(style_dir, content_dir, tmp_path / "m.pt")
    assert [p.name for p in result.samples] == ["step_000002.jpg", "step_000004.jpg"]
    with Image.open(result.samples[-1]) as grid:
        assert grid.size == (4 * 24, (1 + 3) * 24)  # content row + 3 style rows, 4 photos


def test_unreadable_content_is_skipped_and_counted(style_dir, content_dir, tmp_path):
    (content_dir / "broken.jpg").write_bytes(b"garbage")
    config = tiny_train_config(steps=12, batch_size=4)
    result = run(style_dir, content_dir, tmp_path / "m.pt", config=config)
    assert result.skipped and result.skipped.startswith("skipped 1 unreadable content image(s) of 6")


def test_bad_data_is_reported_clearly(style_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .jpg/.png/.webp images"):
        run(style_dir, empty, tmp_path / "m.pt")
    with pytest.raises(DataError, match="style image not found"):
        parse_style_inputs([tmp_path / "nope.jpg"])
    with pytest.raises(DataError, match="two styles are named"):
        parse_style_inputs([style_dir / "alpha.png", f"alpha={style_dir / 'beta.png'}"])
    with pytest.raises(ValueError, match="learning rate"):
        tiny_train_config(lr=-1)


def test_named_style_inputs(style_dir):
    specs = parse_style_inputs([f"wave={style_dir / 'beta.png'}", style_dir / "alpha.png"])
    assert [s.name for s in specs] == ["wave", "alpha"]


def test_add_style_keeps_old_styles_bit_identical(style_dir, content_dir, tmp_path):
    base = run(style_dir, content_dir, tmp_path / "m.pt")
    extra = tmp_path / "extra.png"
    Image.fromarray((np.random.default_rng(5).random((30, 30, 3)) * 255).astype(np.uint8)).save(extra)
    grown = add_styles(tmp_path / "m.pt", [f"new={extra}"], content_dir, tmp_path / "grown.pt",
                       steps=3, device="cpu", encoder=random_encoder())
    assert grown.style_names == ["alpha", "beta", "gamma", "new"]
    old_model, _ = load_model(tmp_path / "m.pt")
    new_model, names = load_model(tmp_path / "grown.pt")
    x = torch.rand(2, 3, 21, 26)
    for i in range(3):
        before = old_model(x, one_hot_weights(torch.full((2,), i), 3))
        after = new_model(x, one_hot_weights(torch.full((2,), i), 4))
        assert torch.equal(before, after)
    # the new style was trained: its rows left the starting point (mean of the old rows)
    start = old_model.head.norm.gamma.mean(dim=0)
    assert not torch.equal(new_model.head.norm.gamma[3], start)
    # shared convolution weights are untouched
    assert torch.equal(old_model.head.conv.weight, new_model.head.conv.weight)
    assert base.step == 4


def test_cosine_schedule_and_clipping_run(style_dir, content_dir, tmp_path):
    from cin_style.train.trainer import learning_rate

    config = tiny_train_config(lr_schedule="cosine", grad_clip=0.5)
    assert learning_rate(config, 0) == pytest.approx(config.lr)
    assert learning_rate(config, config.steps) == pytest.approx(0.01 * config.lr)
    result = run(style_dir, content_dir, tmp_path / "m.pt", config=config)
    assert all(np.isfinite(r["loss"]) for r in result.history)
    # clipping really scales the gradients: clipped to ~0, Adam's step (g / (|g| + eps)) all but
    # vanishes, while the unclipped run moves the weights (both start from the seeded init)
    from cin_style.nn.stylenet import StyleNet

    moved = {}
    for clip in (None, 1e-14):
        cfg = tiny_train_config(steps=2, grad_clip=clip)
        torch.manual_seed(cfg.seed)  # train() builds its network right after this seed
        start = StyleNet(dataclasses.replace(cfg.network, num_styles=3)).state_dict()
        state = run(style_dir, content_dir, tmp_path / f"c{clip}.pt", config=cfg).model.state_dict()
        moved[clip] = max((state[k] - start[k]).abs().max().item() for k in start)
    assert moved[1e-14] < 0.01 * moved[None]


def test_sigint_stops_at_a_step_boundary_with_a_resumable_checkpoint(style_dir, content_dir, tmp_path,
                                                                    monkeypatch, caplog):
    import os
    import signal

    from cin_style.train import trainer as train_module

    straight = run(style_dir, content_dir, tmp_path / "a.pt", config=tiny_train_config(steps=6))
    real_step = train_module.Trainer.train_step

    def step_then_interrupt(self):
        record = real_step(self)
        if self.step == 3:  # as if Ctrl-C arrived during step 3
            os.kill(os.getpid(), signal.SIGINT)
        return record

    monkeypatch.setattr(train_module.Trainer, "train_step", step_then_interrupt)
    before = signal.getsignal(signal.SIGINT)
    with caplog.at_level("INFO", logger="cin_style"):
        stopped = train([style_dir], content_dir, tmp_path / "b.pt", tiny_train_config(steps=6),
                        device="cpu", encoder=random_encoder())
    assert stopped.step == 3 and load_checkpoint(tmp_path / "b.pt")["step"] == 3
    assert any("stopped at step 3" in line for line in caplog.messages)
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found, restored
    monkeypatch.setattr(train_module.Trainer, "train_step", real_step)
    resumed = run(style_dir, content_dir, tmp_path / "b.pt", config=tiny_train_config(steps=6),
                  resume=True)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert resumed.step == 6 and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stability", [0.0, 10.0])
def test_prefetching_crops_changes_nothing(style_dir, content_dir, tmp_path, monkeypatch, stability):
    """The GPU path cuts the next batch on a thread; forced on here, a run and a run
    stopped half-way and resumed give exactly the weights of the plain run."""
    from cin_style.train import trainer as train_mod

    config = tiny_train_config(steps=6, stability_weight=stability)
    plain = run(style_dir, content_dir, tmp_path / "plain.pt", config=config)
    monkeypatch.setattr(train_mod, "prefetch_crops", lambda device: True)
    ahead = run(style_dir, content_dir, tmp_path / "ahead.pt", config=config)
    run(style_dir, content_dir, tmp_path / "parts.pt", config=dataclasses.replace(config, steps=3))
    parts = run(style_dir, content_dir, tmp_path / "parts.pt", config=config, resume=True)
    # ahead.pt.prev is the step-4 checkpoint, written while step 5's batch was being cut.
    assert load_checkpoint(tmp_path / "ahead.pt.prev")["step"] == 4
    (tmp_path / "ahead.pt.prev").rename(tmp_path / "pending.pt")
    pending = run(style_dir, content_dir, tmp_path / "pending.pt", config=config, resume=True)
    for other in (ahead, parts, pending):
        a, b = plain.model.state_dict(), other.model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
