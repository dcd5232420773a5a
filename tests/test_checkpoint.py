import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from cin_style.nn.checkpoint import CheckpointError, atomic_torch_save, load_checkpoint, load_model, make_checkpoint
from cin_style.nn.stylenet import one_hot_weights


def test_round_trip_under_weights_only(tiny_model, tmp_path):
    path = atomic_torch_save(make_checkpoint(tiny_model, ["a", "b", "c"], step=7), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)  # no pickled code anywhere
    assert raw["format_version"] == 1 and raw["step"] == 7
    model, names = load_model(path)
    assert names == ["a", "b", "c"] and model.style_names == names
    x, w = torch.rand(1, 3, 18, 22), one_hot_weights(torch.tensor([2]), 3)
    assert torch.equal(model(x, w), tiny_model(x, w))


def test_garbage_and_foreign_files_give_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable cin-style checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not a cin-style checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_newer_format_is_refused(tiny_model, tmp_path):
    data = make_checkpoint(tiny_model, ["a", "b", "c"])
    data["format_version"] = 99
    torch.save(data, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(tmp_path / "future.pt")


def test_save_keeps_previous_and_failed_save_keeps_current(tiny_model, tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    atomic_torch_save(make_checkpoint(tiny_model, ["a", "b", "c"], step=1), path)
    atomic_torch_save(make_checkpoint(tiny_model, ["a", "b", "c"], step=2), path)
    assert load_checkpoint(path)["step"] == 2
    assert load_checkpoint(tmp_path / "m.pt.prev")["step"] == 1

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_torch_save({"x": 1}, path)
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.prev"]


def saver_script(path, padding: int, saves: int | None = None) -> str:
    """Python that saves checkpoints to ``path`` in a loop (``saves`` times, or until
    killed), printing each step once its save is complete."""
    loop = "while True:" if saves is None else f"for _ in range({saves}):"
    return textwrap.dedent(f"""
        import torch
        from cin_style.nn.checkpoint import atomic_torch_save, make_checkpoint
        from cin_style.config import StyleNetConfig
        from cin_style.nn.stylenet import StyleNet
        model = StyleNet(StyleNetConfig(num_styles=2, base_width=8, num_residual_blocks=2))
        step = 0
        {loop}
            step += 1
            atomic_torch_save(make_checkpoint(model, ["a", "b"], step=step,
                                              padding=torch.zeros({padding})), {str(path)!r})
            print(step, flush=True)
    """)


def test_sigkill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    script = saver_script(path, 300_000)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"  # at least one complete save
        steps = []
        for delay in (0.013, 0.021, 0.034):
            time.sleep(delay)
            steps.append(load_checkpoint(path)["step"])  # readable while being rewritten
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    data = load_checkpoint(path)
    assert data["step"] >= max(steps) >= 1
    # the kill may leave the write it interrupted as a hidden temp file; nothing else
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("ckpt.pt", "ckpt.pt.prev"))
    assert len(leftovers) <= 2 and all(re.fullmatch(r"\.ckpt\.pt\.(\w+|prev)\.tmp", n) for n in leftovers), leftovers


@pytest.mark.slow
def test_many_kills_while_saving_leave_a_loadable_file_and_no_temps_after_the_next_run(tmp_path):
    """Issue 22: 12 SIGKILLs mid-write left 12 hidden temp files that nothing removed.
    Each kill may leave the write it interrupted; the next run's first save clears them."""
    path = tmp_path / "ckpt.pt"
    script = saver_script(path, 5_000_000)
    interrupted = 0
    for kill in range(12):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            proc.stdout.readline()  # at least one complete save of this run
            time.sleep(0.01 * kill)  # spread over the save cycle (checksum, then the 20 MB write)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            proc.kill()
        assert load_checkpoint(path)["step"] >= 1
        interrupted += any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert interrupted  # some kills did land in a write (each run's first save clears the last one's)
    time.sleep(0.05)  # the temps' times are before the next run started
    done = subprocess.run([sys.executable, "-c", saver_script(path, 5_000_000, saves=1)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "ckpt.pt.prev"]
    assert load_checkpoint(path)["step"] == 1


@pytest.mark.parametrize("field,value", [("num_residual_blocks", 10**7), ("base_width", 10**6),
                                         ("num_styles", 10**5), ("outer_kernel", 10**4 + 1),
                                         ("num_residual_blocks", 2.5), ("base_width", True)])
def test_a_crafted_config_is_refused_before_anything_is_built(tmp_path, field, value):
    """A 350 KB .pt asking for 10**7 residual blocks once allocated gigabytes before its
    config was checked against its weights."""
    from conftest import TINY_NAMES, make_tiny_model

    data = make_checkpoint(make_tiny_model(), TINY_NAMES)
    data["model_config"][field] = value
    torch.save(data, tmp_path / "crafted.pt")
    with pytest.raises(CheckpointError, match=field):
        load_model(tmp_path / "crafted.pt")


def test_a_config_unlike_its_weights_is_refused_before_the_network_is_built(tmp_path, monkeypatch):
    """Within the bounds a config can still ask for far more than its weights hold (width
    1024: gigabytes of convolutions): it is compared with the weights' shapes first."""
    from conftest import TINY_NAMES, make_tiny_model

    from cin_style.nn import checkpoint

    def never_built(*args, **kwargs):
        raise AssertionError("the network was built before the config was checked")

    for field, value in (("base_width", 1024), ("num_residual_blocks", 64), ("outer_kernel", 31)):
        data = make_checkpoint(make_tiny_model(), TINY_NAMES)
        data["model_config"][field] = value
        torch.save(data, tmp_path / "crafted.pt")
        monkeypatch.setattr(checkpoint, "StyleNet", never_built)
        with pytest.raises(CheckpointError, match="do not match its config"):
            load_model(tmp_path / "crafted.pt")
