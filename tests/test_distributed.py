"""Training on several processes (DDP over gloo on the CPU, launched through
torchrun by `--nproc`): the same run as one process, resumable across process
counts, rank 0 alone writes.

Tolerance: one process and two sum the same gradients in a different order (and
at different thread counts), so weights differ by float rounding, which Adam can
turn into up to 2·lr per step for a weight whose gradient is near zero (its first
steps move each weight by about lr·sign(g)).  So: the per-step losses (the same
samples on the same weights) agree to LOSS_RTOL relative, 99 % of the weights to 1e-5,
and all within 2·lr·steps.  One process at 1 and at 2 threads differs as much.
LOSS_RTOL: a fresh install with the newest packages drifted 2e-5 to 4e-4 between the runs
(issue 21), where 1e-5 had held before; 1e-3 keeps a 2.5x margin over that and still
fails on a different sample draw (the losses then differ by whole percent).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import write_image

from cin_style.nn.checkpoint import load_checkpoint, load_model

pytestmark = pytest.mark.ddp

LR = 1e-3
LOSS_RTOL = 1e-3


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from cin_style.nn.vgg import VGGEncoder

    root = tmp_path_factory.mktemp("ddp")
    for i in range(6):
        write_image(root / "content" / f"p{i}.png", seed=i, size=(48, 40))
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        write_image(root / "styles" / f"{name}.png", seed=100 + i, size=(36, 36))
    write_image(root / "extra" / "delta.png", seed=200, size=(36, 36))
    torch.manual_seed(1)
    encoder = VGGEncoder("vgg16", ["relu5_3"])
    torch.save({k.replace("stack.", ""): v for k, v in encoder.state_dict().items()}, root / "vgg.pt")
    return root


def cli(root: Path, *args, nproc: int = 1, check: bool = True, popen: bool = False):
    command = [sys.executable, "-m", "cin_style", *map(str, args), "--vgg-weights", str(root / "vgg.pt"),
               "--device", "cpu"]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def train_args(out: str, steps: int, *extra):
    return ["train", "--styles", "styles", "--content", "content", "--out", out, "--steps", steps,
            "--batch-size", 4, "--image-size", 24, "--style-size", 32, "--base-width", 4,
            "--residual-blocks", 1, "--content-layers", "relu2_2", "--style-layers", "relu1_2,relu2_2",
            "--checkpoint-every", 2, "--sample-every", 2, "--lr", LR, *extra]


def assert_same_run(a: dict, b: dict, steps: int):
    la, lb = [h["loss"] for h in a["history"]], [h["loss"] for h in b["history"]]
    assert len(la) == len(lb) == steps
    assert all(abs(x - y) <= LOSS_RTOL * abs(x) for x, y in zip(la, lb)), (la, lb)
    diffs = torch.cat([(a["model"][k].float() - b["model"][k].float()).abs().flatten() for k in a["model"]])
    assert (diffs <= 1e-5).float().mean() >= 0.99
    assert diffs.max() <= 2 * LR * steps


def test_two_processes_train_what_one_does(data):
    cli(data, *train_args("one.pt", 4))
    two = cli(data, *train_args("two.pt", 4), nproc=2)
    assert two.stdout.count("wrote two.pt") == 1  # rank 0 alone reports
    one, both = load_checkpoint(data / "one.pt"), load_checkpoint(data / "two.pt")
    assert_same_run(one, both, 4)
    assert not any(k.startswith("module.") for k in both["model"])  # no DDP wrapper names
    model, names = load_model(data / "two.pt")
    assert names == ["alpha", "beta", "gamma"]
    # Rank 0 alone wrote samples: one grid per sample step, no duplicates.
    assert sorted(p.name for p in (data / "two_samples").iterdir()) == \
        sorted(p.name for p in (data / "one_samples").iterdir())


def test_resume_with_another_number_of_processes(data):
    cli(data, *train_args("ref.pt", 4))
    cli(data, *train_args("mixed.pt", 2), nproc=2)
    cli(data, *train_args("mixed.pt", 4, "--resume"))
    assert_same_run(load_checkpoint(data / "ref.pt"), load_checkpoint(data / "mixed.pt"), 4)


def test_add_style_on_two_processes_keeps_old_rows(data):
    cli(data, *train_args("base.pt", 2))
    cli(data, "add-style", "base.pt", "extra/delta.png", "--content", "content", "-o", "grown.pt",
        "--steps", 2, nproc=2)
    base, grown = load_checkpoint(data / "base.pt"), load_checkpoint(data / "grown.pt")
    assert grown["style_names"] == ["alpha", "beta", "gamma", "delta"]
    for key, value in base["model"].items():
        if key.endswith(("gamma", "beta")):
            assert torch.equal(grown["model"][key][:3], value)
        else:
            assert torch.equal(grown["model"][key], value)


def test_a_batch_that_does_not_split_is_one_clear_error(data):
    done = cli(data, *train_args("odd.pt", 2, "--batch-size", 3), nproc=2, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--batch-size 3 does not split over 2 processes" in done.stderr
    assert not (data / "odd.pt").exists()
    # Under torchrun directly, every rank refuses the same way (distributed.World.share).
    from cin_style.errors import ConfigError
    from cin_style.train.distributed import World

    with pytest.raises(ConfigError, match="does not split"):
        World(rank=1, size=2).share(3)
    assert World(rank=1, size=2).share(4) == slice(2, 4) and World().share(3) is None


def test_killing_one_process_leaves_a_loadable_checkpoint(data):
    run = cli(data, *train_args("killed.pt", 100000, "--sample-every", 100000), nproc=2, popen=True)
    try:
        deadline = time.time() + 120
        while not (data / "killed.pt").exists() and time.time() < deadline:
            time.sleep(0.2)
        assert (data / "killed.pt").exists(), "no checkpoint appeared"
        launcher = Path(f"/proc/{run.pid}/task/{run.pid}/children").read_text().split()
        agent = launcher[0]  # python -m torch.distributed.run
        workers = Path(f"/proc/{agent}/task/{agent}/children").read_text().split()
        assert len(workers) == 2
        os.kill(int(workers[-1]), signal.SIGKILL)
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    state = load_checkpoint(data / "killed.pt")
    assert state["step"] % 2 == 0 and state["step"] >= 2
    load_model(data / "killed.pt")
