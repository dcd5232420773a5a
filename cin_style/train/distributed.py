"""Training on several processes with PyTorch's DistributedDataParallel.

torchrun (or `cin-style train --nproc N`, which calls it) starts one process per
GPU, or per CPU slot with gloo, and sets RANK/WORLD_SIZE/LOCAL_RANK; ``join``
turns that into a process group.  Every process draws the same global batch from
the same generator and keeps its own slice of it (``World.share``), so the
samples, the style draw and a checkpoint's state depend only on the seed and the
step, never on the number of processes: a run resumes on any number of them.
Only rank 0 writes checkpoints, samples and progress.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cin_style.errors import ConfigError

# Long enough for rank 0 to validate and write a checkpoint while the others wait.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, batch_size: int) -> slice | None:
        """This process's slice of a global batch (None: all of it)."""
        if self.size == 1:
            return None
        if batch_size % self.size:
            raise ConfigError(
                f"--batch-size {batch_size} does not split over {self.size} processes; use a multiple of {self.size}"
            )
        per = batch_size // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


def launched() -> bool:
    """Whether torchrun started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> World:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU); a single
    process gets World() and no group."""
    if not launched():
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=TIMEOUT)
    return current()


def current() -> World:
    if not dist.is_available() or not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(device: torch.device) -> torch.device:
    """On CUDA each process takes the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and launched():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


def mean(values: torch.Tensor) -> torch.Tensor:
    """The mean over all processes (the value itself for one process)."""
    if current().size == 1:
        return values
    values = values.detach().clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / current().size


def any_of(*flags: bool) -> tuple[bool, ...]:
    """Each flag true on every process when it is true on any (one collective for all):
    all stop at the same step."""
    if current().size == 1:
        return flags
    values = torch.tensor([1.0 if flag else 0.0 for flag in flags])
    dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in values.tolist())


def leave() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def relaunch(nproc: int, argv: Sequence[str]) -> int | None:
    """With ``nproc`` > 1, outside torchrun: run this same command (``argv``, the
    arguments after the program name, less any ``--nproc``) on ``nproc`` processes
    through torchrun and return its exit status.  None means: carry on here."""
    if nproc <= 1 or launched():
        return None
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    return launch(nproc, rest)


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run `cin-style ARGV` on ``nproc`` local processes through torchrun; its exit status."""
    if nproc < 2:
        raise ConfigError(f"--nproc must be at least 2, got {nproc}")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "cin_style",
        *argv,
    ]
    return subprocess.run(command).returncode
