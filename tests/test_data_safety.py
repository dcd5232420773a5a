"""Nothing written is lost (issue 22): outputs never replace inputs, a new training run
never replaces a checkpoint unasked, a killed run's temp files are cleaned up, and a
damaged checkpoint is refused with one line naming it."""

import os
import time
import zipfile

import pytest
import torch
from click.testing import CliRunner
from clips import panning_frames, write_clip
from conftest import TINY_NAMES, make_tiny_model, random_encoder, tiny_train_config, write_image
from test_cli import TINY_TRAIN

from cin_style.cli.main import cli
from cin_style.errors import UsageError
from cin_style.io.atomic import remove_stale_temps
from cin_style.nn.checkpoint import CheckpointError, atomic_torch_save, load_checkpoint, make_checkpoint
from cin_style.train.recipes import train


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(make_tiny_model(), TINY_NAMES), path)
    return path


def test_stylize_refuses_to_write_over_its_input(model_file, tmp_path):
    photo = write_image(tmp_path / "crab.png", seed=1, size=(48, 40))
    before = photo.read_bytes()
    os.link(photo, tmp_path / "hardlink.png")
    for output in (photo, tmp_path / "hardlink.png", tmp_path / "." / "crab.png"):
        result = CliRunner().invoke(cli, ["stylize", str(model_file), str(photo), "-o", str(output)])
        assert result.exit_code == 2 and "would replace the input" in result.output, result.output
    result = CliRunner().invoke(cli, ["stylize", str(model_file), str(tmp_path), "-o", str(tmp_path)])
    assert result.exit_code == 2  # a folder into itself: crab.png -> crab.png
    assert photo.read_bytes() == before


def test_video_refuses_to_write_over_its_input(model_file, tmp_path):
    clip = write_clip(tmp_path / "same.mp4", panning_frames(3, 32, 48), audio=False)
    before = clip.read_bytes()
    result = CliRunner().invoke(cli, ["video", str(model_file), str(clip), "-o", str(clip)])
    assert result.exit_code == 2 and "would replace the input" in result.output, result.output
    assert clip.read_bytes() == before


def test_a_new_run_does_not_replace_a_checkpoint_unasked(style_dir, content_dir, vgg_weights_file, tmp_path):
    out = tmp_path / "model.pt"
    args = ["train", "--styles", str(style_dir), "--content", str(content_dir), "--out", str(out),
            "--vgg-weights", str(vgg_weights_file), *TINY_TRAIN]
    assert CliRunner().invoke(cli, args).exit_code == 0
    first, prev = out.read_bytes(), out.with_name("model.pt.prev").read_bytes()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2 and "--resume" in again.output and "--overwrite" in again.output
    assert out.read_bytes() == first and out.with_name("model.pt.prev").read_bytes() == prev
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0
    with pytest.raises(UsageError, match="exists"):
        train([style_dir], content_dir, out, tiny_train_config(), device="cpu", encoder=random_encoder())


def test_stale_temp_files_of_ours_are_removed_and_nothing_else(model_file, tmp_path):
    old = [tmp_path / ".m.pt.a1b2c3.tmp", tmp_path / ".m.pt.prev.tmp", tmp_path / ".clip.x9y8.tmp.mp4"]
    keep = [tmp_path / "notes.tmp", tmp_path / ".other.pt.a1b2.tmp.bak", tmp_path / ".m.pt"]
    for path in old + keep:
        path.write_bytes(b"left behind")
    past = time.time() - 3600
    for path in old + keep:
        os.utime(path, (past, past))
    fresh = tmp_path / ".m.pt.fresh1.tmp"  # written after this process started: maybe in use
    fresh.write_bytes(b"being written")
    atomic_torch_save(load_checkpoint(model_file), model_file)
    remove_stale_temps(tmp_path / "clip.mp4")
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in keep) and fresh.exists()


def test_a_damaged_checkpoint_is_refused_naming_the_file(model_file, tmp_path):
    data = load_checkpoint(model_file)
    assert "tensor_sha256" in data
    name = next(k for k in data["model"] if k.endswith("weight"))
    data["model"][name].view(-1)[3] += 1.0  # one weight changed behind the checksum's back
    damaged = tmp_path / "damaged.pt"
    torch.save(data, damaged)
    with pytest.raises(CheckpointError, match="damaged.pt: damaged"):
        load_checkpoint(damaged)
    # a flipped byte in the file itself
    flipped = tmp_path / "flipped.pt"
    raw = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as archive:
        member = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    offset = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra) + member.file_size // 2
    raw[offset] ^= 0x40
    flipped.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="flipped.pt"):
        load_checkpoint(flipped)
    result = CliRunner().invoke(cli, ["styles", str(damaged)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "damaged" in result.output


def test_resume_with_a_damaged_training_state_is_one_line(style_dir, content_dir, tmp_path):
    out = tmp_path / "m.pt"
    train([style_dir], content_dir, out, tiny_train_config(steps=2), device="cpu", encoder=random_encoder(),
          samples=False)
    data = load_checkpoint(out)
    data["step"] = "abc"
    atomic_torch_save(data, out)  # a consistent checksum: the content is what is wrong
    with pytest.raises(CheckpointError, match="cannot be resumed"):
        train([style_dir], content_dir, out, tiny_train_config(steps=4), resume=True, device="cpu",
              encoder=random_encoder())


def test_export_never_replaces_its_source_or_a_training_run_unasked(model_file, tmp_path):
    """`export X.pt -o X.pt` once wrote a slim checkpoint over the training state it read."""
    run = tmp_path / "run.pt"
    atomic_torch_save(make_checkpoint(make_tiny_model(), TINY_NAMES, optimizer={"state": {}, "param_groups": []},
                                      step=7), run)
    before = run.read_bytes()
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(run), "-o", str(run), "-q"])
    assert result.exit_code == 2 and "replace the input" in result.output and run.read_bytes() == before
    result = runner.invoke(cli, ["export", str(model_file), "-o", str(run), "-q"])  # another run's state
    assert result.exit_code == 2 and "--replace-training-state" in result.output and run.read_bytes() == before
    result = runner.invoke(cli, ["export", str(model_file), "-o", str(run), "-q", "--replace-training-state"])
    assert result.exit_code == 0, result.output
    assert "optimizer" not in load_checkpoint(run)
    slim = tmp_path / "slim.pt"  # a slim checkpoint holds nothing of a run: replaced as asked
    for _ in range(2):
        assert runner.invoke(cli, ["export", str(model_file), "-o", str(slim), "-q"]).exit_code == 0
