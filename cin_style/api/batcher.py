"""Dynamic batching: requests of one image size that arrive within a short wait run as
one onnxruntime call (N is a dynamic axis of our graphs).

One thread per process feeds the runner (onnxruntime parallelises inside a call with
its own threads); the queue is bounded by requests and by decoded pixels, so a burst
gets 503s instead of unbounded memory.  Every image takes its route through
``infer.pipeline``: only those that run whole are batched; the others run alone.
Torch-free.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from cin_style.errors import CinStyleError
from cin_style.infer.finish import Finish
from cin_style.infer.grain import DEFAULT_GRAIN
from cin_style.infer.onnx_runner import StyleRunner
from cin_style.infer.pipeline import WHOLE, Pipeline


class QueueFull(CinStyleError, RuntimeError):
    """The queue holds as many requests or pixels as it may; the client should retry."""


@dataclass(eq=False)  # a job is itself: the queue removes jobs by identity
class Job:
    """One request's image, as ``Pipeline.route`` said to decode it: float32 [H, W, 3] in
    [0, 1] for the WHOLE route (batched), else uint8 (it runs alone)."""

    image: np.ndarray
    weights: np.ndarray  # [S]
    finish: Finish
    route: str = WHOLE
    style_scale: float = 1.0
    grain: int = DEFAULT_GRAIN
    future: Future = field(default_factory=Future)  # → uint8 [H, W, 3]

    @property
    def alone(self) -> bool:
        return self.route != WHOLE

    @property
    def key(self) -> tuple:
        return (self.route, self.style_scale, self.grain, *self.image.shape[:2])

    @property
    def pixels(self) -> int:
        return self.image.shape[0] * self.image.shape[1]


class Batcher:
    """``submit`` jobs from any thread; each job's future gets its uint8 result."""

    def __init__(
        self,
        runner: StyleRunner,
        *,
        max_batch: int = 8,
        wait_s: float = 0.005,
        queue_size: int = 64,
        max_queued_pixels: int = 32_000_000,
        on_batch=None,
        on_depth=None,
    ):
        self.runner, self.max_batch, self.wait_s = runner, max_batch, wait_s
        self.queue_size, self.max_queued_pixels = queue_size, max_queued_pixels
        self._on_batch = on_batch or (lambda size: None)
        self._on_depth = on_depth or (lambda depth: None)
        self._jobs: deque[Job] = deque()
        self._pixels = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="cin-style-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future:
        with self._cond:
            if self._closed:
                raise QueueFull("the service is shutting down")
            # One job is always admitted into an empty queue, however large: the pixel
            # budget bounds what waits, not what can be served.
            if self._jobs and (
                len(self._jobs) >= self.queue_size or self._pixels + job.pixels > self.max_queued_pixels
            ):
                raise QueueFull(f"the queue is full ({len(self._jobs)} requests, {self._pixels:,} pixels waiting)")
            self._jobs.append(job)
            self._pixels += job.pixels
            self._on_depth(len(self._jobs))
            self._cond.notify_all()
        return job.future

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=10)

    def _take(self) -> list[Job]:
        """The next batch: the oldest job and, within ``wait_s`` of taking it, later jobs
        of its key, up to ``max_batch`` (the wait ends early once the batch is full)."""
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if not self._jobs:
                return []
            first = self._jobs.popleft()
            batch = [first]
            deadline = time.monotonic() + self.wait_s
            while not first.alone and len(batch) < self.max_batch:
                for job in [j for j in self._jobs if j.key == first.key][: self.max_batch - len(batch)]:
                    self._jobs.remove(job)
                    batch.append(job)
                remaining = deadline - time.monotonic()
                if len(batch) >= self.max_batch or remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            self._pixels -= sum(job.pixels for job in batch)
            self._on_depth(len(self._jobs))
            return batch

    def _loop(self) -> None:
        while batch := self._take():
            live = [job for job in batch if job.future.set_running_or_notify_cancel()]
            if not live:
                continue
            self._on_batch(len(live))
            try:
                results = self._run(live)
            except Exception as exc:  # a bug or a runtime failure: each request gets it (500)
                for job in live:
                    job.future.set_exception(exc)
                continue
            for job, result in zip(live, results):
                job.future.set_result(result)

    def _run(self, jobs: list[Job]) -> list[np.ndarray]:
        pipeline = Pipeline(self.runner, style_scale=jobs[0].style_scale, batch_size=len(jobs), grain=jobs[0].grain)
        return pipeline.stylize(
            [job.image for job in jobs], np.stack([job.weights for job in jobs]), finishes=[job.finish for job in jobs]
        )
