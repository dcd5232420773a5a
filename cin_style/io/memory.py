"""Peak resident memory of this process, for the benchmarks' fresh-process measurements
(imports nothing: the measured process loads only what it measures)."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """This process's peak resident set in MiB.  VmHWM belongs to this program's address
    space; ru_maxrss (the fallback off Linux) would carry over the parent's peak through
    fork + exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
