"""Resident memory of this process, now and at its peak: for the benchmarks' fresh-process
measurements and the service's memory budget (imports nothing: the measured process
loads only what it measures)."""

from __future__ import annotations

import resource


def _status_mib(field: str, pid: int | None) -> float | None:
    """A memory field of /proc/PID/status (VmHWM, VmRSS) in MiB; None off Linux or when gone."""
    try:
        with open(f"/proc/{pid or 'self'}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib(pid: int | None = None) -> float:
    """The peak resident set in MiB of this process (or of ``pid``, Linux only).  VmHWM
    belongs to this program's address space; ru_maxrss (the fallback off Linux) would
    carry over the parent's peak through fork + exec."""
    peak = _status_mib("VmHWM", pid)
    if peak is not None:
        return peak
    if pid is not None:
        return float("nan")  # not Linux, or the process is gone
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib(pid: int | None = None) -> float:
    """The resident set in MiB now (VmRSS; Linux only, else the peak)."""
    now = _status_mib("VmRSS", pid)
    return now if now is not None else peak_rss_mib(pid)


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise: an idle server
    once still held 4 GB after a burst).  A no-op where there is no glibc."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
