"""Wall-clock timing for the benchmarks and the int8 report: one way to time a call."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def seconds(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """The median of ``repeats`` timed calls after ``warmup`` untimed ones (allocations,
    kernel plans and caches settle in the first)."""
    for _ in range(warmup):
        fn()
    return statistics.median(seconds(fn) for _ in range(repeats))


def best_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls after ``warmup`` untimed ones (for a peak)."""
    for _ in range(warmup):
        fn()
    return min(seconds(fn) for _ in range(repeats))
