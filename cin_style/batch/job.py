"""The driver of `cin-style batch`: inputs → pending work (the manifest says what is
done) → Ray Data ``map_batches`` over an autoscaling pool of ``StylizeActor``s → a
progress bar and a summary.  Rerunning after a kill resumes where it stopped."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cin_style.batch.inputs import Item, resolve_items
from cin_style.batch.manifest import DONE, compact, done_inputs, folder_of, read_manifest
from cin_style.batch.store import Store
from cin_style.errors import ConfigError, UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchJob:
    """One run: ``source`` (folder, glob, or .txt/.csv/.parquet list) → ``output`` (a
    folder or URI: images plus ``manifest/``).  ``actors`` is the pool's (min, max)
    size; each actor holds one session with ``threads`` onnxruntime threads (and
    ``gpus_per_actor`` GPUs: then the CUDA provider)."""

    source: str
    output: str
    model: str | None = None
    styles: tuple[str, ...] = ()
    strength: float = 1.0
    preserve_color: bool = False
    format: str = "png"
    max_pixels: int | None = None
    address: str | None = None  # None: a local Ray cluster for this run; "auto" or ray://host:port: an existing one
    batch_size: int = 16
    actors: tuple[int, int] = (1, 2)
    threads: int = 1
    gpus_per_actor: float = 0.0

    def __post_init__(self):
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        low, high = self.actors
        if not 1 <= low <= high:
            raise ConfigError(f"--actors must be MIN,MAX with 1 <= MIN <= MAX, got {low},{high}")
        if self.threads < 1 or self.gpus_per_actor < 0:
            raise ConfigError("--threads must be >= 1 and --gpus-per-actor >= 0")
        if self.format not in ("png", "jpg", "webp"):
            raise ConfigError(f"--format must be png, jpg or webp, got {self.format!r}")


@dataclass(frozen=True)
class BatchSummary:
    total: int
    skipped: int  # done by an earlier run
    done: int
    errors: int
    seconds: float
    manifest: str

    @property
    def images_per_s(self) -> float:
        return (self.done + self.errors) / self.seconds if self.seconds > 0 else 0.0


def graph_of(model: str | None) -> Path:
    from cin_style.assets.bundled import resolve_model

    path = resolve_model(model, graph=True)
    if path.suffix.lower() != ".onnx":
        raise UsageError(f"{path}: batch runs .onnx graphs (torch-free); `cin-style export {path} -o model.onnx`")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return path


def run_batch(job: BatchJob, show_progress: bool = True) -> BatchSummary:
    from cin_style.infer.contract import tiled_sibling_path
    from cin_style.infer.onnx_runner import StyleRunner
    from cin_style.infer.runtimes import DEFAULT_RUNTIME
    from cin_style.infer.stylizer import blend_for
    from cin_style.io.atomic import refuse_overwriting_inputs, remove_stale_temps_under
    from cin_style.progress import progress

    started = time.perf_counter()
    graph = graph_of(job.model)
    probe = StyleRunner(graph, device="cpu", warmup=False, runtime=DEFAULT_RUNTIME)  # names, a clear error, before Ray
    weights, blend = blend_for(probe, list(job.styles))
    items = resolve_items(job.source, job.output, job.format)
    store, root = Store.for_location(job.output)
    manifest = folder_of(store, root)
    if store.local:
        local_inputs = [Path(i.input) for i in items if "://" not in i.input]
        refuse_overwriting_inputs([Path(i.output) for i in items], local_inputs)
        remove_stale_temps_under(root)
    done = done_inputs(store, manifest)
    pending = [item for item in items if item.input not in done]
    if pending:
        sibling = tiled_sibling_path(graph)
        graph_bytes = graph.read_bytes()
        actor_args = {
            "graph": graph_bytes,
            "tiled_sibling": sibling.read_bytes() if probe.capabilities.tiles else None,
            "weights": weights.tolist(),
            "blend": blend,
            "model_sha256": hashlib.sha256(graph_bytes).hexdigest(),
            "strength": job.strength,
            "preserve_color": job.preserve_color,
            "max_pixels": job.max_pixels,
            "output_location": job.output,
            "manifest_folder": manifest,
            "device": "cuda" if job.gpus_per_actor > 0 else "cpu",
            "threads": job.threads,
        }
        with progress(len(pending), "images", enabled=show_progress) as bar:
            for finished in _run_on_ray(job, pending, actor_args):
                bar.update(finished)
    compact(store, manifest)
    table = read_manifest(store, manifest)
    statuses = {}
    if table is not None:
        wanted = {item.input for item in pending}
        for row in table.select(["input", "status"]).to_pylist():
            if row["input"] in wanted:
                statuses[row["input"]] = row["status"]
    ok = sum(1 for s in statuses.values() if s == DONE)
    return BatchSummary(
        len(items), len(items) - len(pending), ok, len(statuses) - ok, time.perf_counter() - started, manifest
    )


def _run_on_ray(job: BatchJob, pending: list[Item], actor_args: dict):
    """Yields how many images finished, batch by batch."""
    import ray

    from cin_style.batch.worker import StylizeActor

    started_here = not ray.is_initialized()
    reaper = None
    if started_here:
        # Ray's own logs and bars stay off (warnings and errors still show): ours is the bar.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
        ray.init(
            address=job.address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
            configure_logging=True,
        )
        if job.address is None:  # our own local cluster: nothing of it may outlive a killed driver
            from cin_style.batch import reaper as reapers

            reaper = reapers.start()
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        dataset = ray.data.from_items([{"input": i.input, "output": i.output} for i in pending])
        low, high = job.actors
        # Ray Data restarts a dead actor and reruns its batch by default (max_restarts and
        # max_task_retries -1): outputs are atomic, and a batch's manifest part is written
        # only once the batch is done, so a rerun batch is recorded once.
        stylized = dataset.map_batches(
            StylizeActor,
            batch_size=job.batch_size,
            compute=ray.data.ActorPoolStrategy(min_size=low, max_size=high),
            num_cpus=job.threads,
            num_gpus=job.gpus_per_actor,
            fn_constructor_kwargs=actor_args,
        )
        for batch in stylized.iter_batches(batch_size=None, batch_format="numpy"):
            yield len(batch["input"])
    finally:
        if started_here:
            ray.shutdown()
        if reaper is not None:
            reaper.terminate()
            reaper.wait()
