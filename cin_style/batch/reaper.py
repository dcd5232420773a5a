"""Ends what a batch job's local Ray cluster leaves behind when its driver is killed.

Ray ties the raylet and the GCS to the driver that started them, but the raylet's agents
(DashboardAgent, RuntimeEnvAgent) outlive a SIGKILLed driver by minutes.  The driver
starts this small process beside it (in a session of its own, so a kill of the driver's
group spares it); it notes the driver's descendants every half second and, once the
driver is gone, kills those still running the same command line (never a reused PID).
Linux only (/proc); elsewhere it is not started.

    python -m cin_style.batch.reaper DRIVER_PID
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.5


def supported() -> bool:
    return Path("/proc/self/task").is_dir()


def start() -> subprocess.Popen | None:
    """The reaper of this process's descendants, or None where /proc is missing."""
    if not supported():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "cin_style.batch.reaper", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _command(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None


def _alive(pid: int) -> bool:
    """Running: not gone, and not a zombie its parent has yet to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _alive_after(pid: int, seconds: float) -> bool:
    time.sleep(seconds)
    return _alive(pid)


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def descendants(pid: int) -> dict[int, bytes]:
    """Every process below ``pid``, with its command line."""
    seen: dict[int, bytes] = {}
    todo = _children(pid)
    while todo:
        child = todo.pop()
        command = _command(child)
        if child not in seen and command is not None:
            seen[child] = command
            todo += _children(child)
    return seen


def watch(driver: int) -> None:
    known: dict[int, bytes] = {}
    me = os.getpid()
    while _alive(driver) or _alive_after(driver, POLL_S):  # gone twice in a row: really gone
        known.update({pid: cmd for pid, cmd in descendants(driver).items() if pid != me})
        time.sleep(POLL_S)
    for pid, command in known.items():
        if _command(pid) == command:  # still the process we saw, not a reused PID
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    watch(int(sys.argv[1]))
