"""The public Trainer: a time budget stops with a resumable checkpoint, a non-finite
loss raises TrainingDiverged before any weight moves, and objectives plug in."""

import dataclasses

import pytest
import torch
from click.testing import CliRunner
from conftest import random_encoder, tiny_train_config
from test_cli import TINY_TRAIN

from cin_style.cli.main import cli
from cin_style.data.photos import ContentImages
from cin_style.data.styles import parse_style_inputs
from cin_style.errors import TrainingDiverged
from cin_style.nn.checkpoint import load_checkpoint
from cin_style.nn.stylenet import StyleNet
from cin_style.train.objectives import Batch
from cin_style.train.recipes import StyleRows, build_trainer, train


def make_trainer(style_dir, content_dir, **config):
    config = tiny_train_config(**config)
    specs = parse_style_inputs([style_dir])
    torch.manual_seed(0)
    model = StyleNet(dataclasses.replace(config.network, num_styles=len(specs)))
    data = ContentImages(content_dir, config.image_size)
    return build_trainer(StyleRows.all_styles(model, specs), data, config, torch.device("cpu"), random_encoder())


def test_time_budget_stops_with_a_checkpoint_that_resumes_exactly(style_dir, content_dir, tmp_path):
    kwargs = {"device": "cpu", "encoder": random_encoder(), "samples": False}
    straight = train([style_dir], content_dir, tmp_path / "a.pt", tiny_train_config(steps=5), **kwargs)
    stopped = train([style_dir], content_dir, tmp_path / "b.pt", tiny_train_config(steps=5),
                    time_budget=1e-9, **kwargs)
    assert stopped.step == 1 and load_checkpoint(tmp_path / "b.pt")["step"] == 1
    resumed = train([style_dir], content_dir, tmp_path / "b.pt", tiny_train_config(steps=5), resume=True,
                    **kwargs)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert resumed.step == 5 and all(torch.equal(a[k], b[k]) for k in a)


def test_max_seconds_below_one_is_a_usage_error(style_dir, content_dir, tmp_path):
    result = CliRunner().invoke(cli, ["train", "--styles", str(style_dir), "--content", str(content_dir),
                                      "--out", str(tmp_path / "m.pt"), "--max-seconds", "0.5"])
    assert result.exit_code == 2 and "--max-seconds" in result.output
    assert not (tmp_path / "m.pt").exists()


class NanAtStep:
    """Any objective, with its loss made NaN at one step."""

    def __init__(self, inner, step: int):
        self.inner, self.step, self.calls = inner, step, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def loss(self, output, batch):
        self.calls += 1
        total, parts = self.inner.loss(output, batch)
        return (total * float("nan"), parts) if self.calls == self.step else (total, parts)


def test_a_nan_loss_raises_before_the_weights_move(style_dir, content_dir):
    trainer = make_trainer(style_dir, content_dir, steps=4)
    trainer.objective = NanAtStep(trainer.objective, step=2)
    trainer.train_step()
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(TrainingDiverged, match="at step 2"):
        trainer.train_step()
    assert trainer.step == 1
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_training_divergence_is_one_line_from_the_cli(style_dir, content_dir, vgg_weights_file, tmp_path,
                                                     monkeypatch):
    from cin_style.train import trainer as trainer_module

    real = trainer_module.Trainer.__init__

    def diverging(self, *args, **kwargs):
        real(self, *args, **kwargs)
        self.objective = NanAtStep(self.objective, step=1)

    monkeypatch.setattr(trainer_module.Trainer, "__init__", diverging)
    result = CliRunner().invoke(cli, ["train", "--styles", str(style_dir), "--content", str(content_dir),
                                      "--out", str(tmp_path / "m.pt"), "--vgg-weights", str(vgg_weights_file),
                                      *TINY_TRAIN])
    assert result.exit_code == 1, result.output
    assert "loss became nan at step 1" in result.output and "Traceback" not in result.output


class Identity:
    """A custom objective: reproduce the photo (pixel MSE), one style per sample."""

    def draw_weights(self, style_indices, num_styles, batch_size, generator):
        indices = style_indices[torch.randint(len(style_indices), (batch_size,), generator=generator)]
        return torch.nn.functional.one_hot(indices, num_styles).float(), indices

    def prepare(self, batch: Batch, generator):
        pass

    def forward(self, net, batch: Batch):
        return net(batch.content, batch.weights)

    def loss(self, output, batch: Batch):
        pixel = torch.nn.functional.mse_loss(output, batch.content)
        return pixel, {"pixel": pixel}


def test_a_custom_objective_plugs_in_and_learns(style_dir, content_dir, tmp_path):
    trainer = make_trainer(style_dir, content_dir, steps=60, lr=1e-2, checkpoint_every=60)
    trainer.objective = Identity()
    first = trainer.train_step()["pixel"]
    trainer.fit(tmp_path / "identity.pt")
    assert trainer.step == 60 and set(trainer.history[-1]) == {"step", "loss", "pixel"}
    assert trainer.history[-1]["pixel"] < 0.5 * first
    assert load_checkpoint(tmp_path / "identity.pt")["step"] == 60
