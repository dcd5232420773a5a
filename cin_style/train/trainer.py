"""The training loop: one network, N styles, any objective.

``Trainer`` owns what every run needs — the device, DDP, the crop-prefetch thread,
autocast and channels-last, the optimizer and its schedule, exact-resume state,
checkpoints, validation and sample grids — and asks an ``Objective``
(objectives.py) what to minimise.  ``recipes.py`` builds trainers for ``train`` and
``add_styles``.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cin_style.config import TrainConfig
from cin_style.data.photos import ContentImages
from cin_style.errors import TrainingDiverged
from cin_style.nn import checkpoint as ckpt
from cin_style.nn.stylenet import StyleNet, one_hot_weights
from cin_style.progress import progress
from cin_style.train import distributed
from cin_style.train.objectives import Batch, Objective, Perceptual

log = logging.getLogger(__name__)


def learning_rate(config: TrainConfig, step: int) -> float:
    if config.lr_schedule == "cosine":
        floor = 0.01
        t = min(step, config.steps) / config.steps
        return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
    return config.lr


def prefetch_crops(device: torch.device) -> bool:
    """Cut the next batch's crops on a thread while this step computes: on a GPU (on a
    CPU the thread would only take a core from the step)."""
    return device.type == "cuda"


@dataclass(frozen=True)
class FitResult:
    samples: list[Path]
    seconds: float
    steps: int  # taken in this call (not counting a resumed run's earlier steps)


class Trainer:
    """Trains ``params`` of ``model`` on ``style_indices`` (rows of ``style_names``).

    ``objective`` is what training minimises; ``scorer`` is what validation reports
    (the perceptual loss, also when distilling, so student and teacher compare).
    ``channels_last`` and ``prefetch`` default to on for CUDA (``bench train`` sets them).
    """

    def __init__(
        self,
        model: StyleNet,
        style_names: list[str],
        style_indices: list[int],
        content: ContentImages,
        objective: Objective,
        scorer: Perceptual,
        config: TrainConfig,
        device: torch.device,
        params: list[nn.Parameter],
        *,
        channels_last: bool | None = None,
        prefetch: bool | None = None,
        teacher: StyleNet | None = None,
    ):
        self.model, self.style_names, self.config, self.device = model, style_names, config, device
        self.objective, self.scorer = objective, scorer
        # NHWC feeds cuDNN's tensor-core kernels; on the CPU `bench train` measures it.
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        if self.channels_last:
            for module in (model, scorer.loss_fn, teacher):
                if module is not None:
                    module.to(memory_format=torch.channels_last)
        self.content = content
        self.style_indices = torch.tensor(style_indices)
        self.params = params
        # On a GPU the next batch's crops are cut on a thread while the GPU computes (the
        # generator draws in the same order, so runs are bit-identical with it or without).
        self.prefetch = prefetch_crops(device) if prefetch is None else prefetch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="crops") if self.prefetch else None
        self._next: tuple | None = None  # (future batch, generator state before its draws)
        # Under DDP this process trains on its share of each global batch; `net` is the
        # wrapped model that averages gradients, `model` the plain one (checkpoints,
        # validation and samples use it, so they carry no wrapper names).
        self.world = distributed.current()
        self.share = self.world.share(config.batch_size)
        self.net: nn.Module = model
        if self.world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        # The CLIP loss's random patches have their own generator (the crops' may be drawn
        # on another thread).
        self.clip_generator = scorer.clip_generator or torch.Generator().manual_seed(config.seed + 2)
        self.step = 0
        self.history: list[dict] = []
        self.validation: list[dict] = []

    def autocast(self):
        precision = self.config.precision
        if precision == "bf16" or (precision == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    # --------------------------------------------------------------- state

    def state(self, extra: dict) -> dict:
        return ckpt.make_checkpoint(
            self.model,
            self.style_names,
            train_config=self.config.checkpoint_dict(),
            step=self.step,
            optimizer=self.optimizer.state_dict(),
            # A batch drawn ahead is drawn again after a resume: store the state before it.
            rng={
                "data": self._next[1] if self._next else self.generator.get_state(),
                "torch": torch.get_rng_state(),
                "clip": self.clip_generator.get_state(),
            },
            history=self.history[-1000:],
            validation=self.validation,
            **extra,
        )

    def restore(self, data: dict) -> None:
        self.optimizer.load_state_dict(data["optimizer"])
        self._next = None
        self.generator.set_state(data["rng"]["data"])
        torch.set_rng_state(data["rng"]["torch"])
        if "clip" in data["rng"]:
            self.clip_generator.set_state(data["rng"]["clip"])
        self.step = int(data["step"])
        self.history = list(data.get("history", []))
        self.validation = list(data.get("validation", []))

    # --------------------------------------------------------------- one step

    def _to_device(self, content: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":  # page-locked: the copy overlaps the GPU's work
            return content.pin_memory().to(self.device, non_blocking=True)
        return content.to(self.device)

    def next_batch(self) -> Batch:
        """This process's share of the next global batch, drawn in a fixed order."""
        cfg = self.config
        if self._next is not None:
            content, self._next = self._next[0].result(), None
        else:
            content = self.content.sample(cfg.batch_size, self.generator, keep=self.share)
        weights, indices = self.objective.draw_weights(
            self.style_indices, len(self.style_names), cfg.batch_size, self.generator
        )
        if self.share is not None:
            weights, indices = weights[self.share], None if indices is None else indices[self.share]
        batch = Batch(
            self._to_device(content), weights.to(self.device), None if indices is None else indices.to(self.device)
        )
        self.objective.prepare(batch, self.generator)
        if self._executor is not None and self.step + 1 < cfg.steps:  # every draw of this step is done
            state = self.generator.get_state()
            self._next = (self._executor.submit(self.content.sample, cfg.batch_size, self.generator, self.share), state)
        if self.channels_last:
            batch.content = batch.content.contiguous(memory_format=torch.channels_last)
        return batch

    def train_step(self) -> dict:
        batch = self.next_batch()
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.step)
        with self.autocast():
            total, parts = self.objective.loss(self.objective.forward(self.net, batch), batch)
        # Every process sees the global batch's losses: the same record, the same verdict.
        names = list(parts)
        shared = distributed.mean(torch.stack([total.detach().float(), *(parts[n].detach().float() for n in names)]))
        if not torch.isfinite(shared[0]):
            raise TrainingDiverged(
                f"loss became {float(shared[0])} at step {self.step + 1}; lower --lr or set --grad-clip"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        record = {
            "step": self.step,
            "loss": float(shared[0]),
            **{name: float(value) for name, value in zip(names, shared[1:])},
        }
        self.history.append(record)
        return record

    # --------------------------------------------------------------- validation and samples

    @torch.no_grad()
    def validate(self, photos: torch.Tensor) -> dict:
        """Mean weighted loss parts of the model on fixed validation photos, and
        each style's own style loss.  Style k stylizes photos 2k and 2k+1 (mod N),
        so every style is scored on the same number of photos, with no randomness."""
        was_training = self.model.training
        self.model.eval()
        sums = {"content": 0.0, "style": 0.0, "tv": 0.0, **({"clip": 0.0} if self.scorer.clip is not None else {})}
        per_style = {}
        text_rows = self.scorer.text_rows
        for k, index in enumerate(self.style_indices.tolist()):
            pick = torch.tensor([(2 * k) % len(photos), (2 * k + 1) % len(photos)])
            content = photos[pick].to(self.device)
            if self.channels_last:
                content = content.contiguous(memory_format=torch.channels_last)
            weights = one_hot_weights(torch.full((2,), index), len(self.style_names)).to(self.device)
            batch = Batch(content, weights, torch.full((2,), index, device=self.device))
            with self.autocast():
                _, parts = self.scorer.loss(self.model(content, weights), batch)
            for name in sums:
                sums[name] += float(parts[name]) / len(self.style_indices)
            is_text = text_rows is not None and bool(text_rows[index])
            per_style[self.style_names[index]] = float(parts["clip" if is_text else "style"])
        self.model.train(was_training)
        return {"step": self.step, "loss": sum(sums.values()), **sums, "style_by_name": per_style}

    def save_sample(self, fixed: torch.Tensor, folder: Path) -> Path:
        from cin_style.data.photos import to_array
        from cin_style.io.image import save_image

        grid = sample_grid(self.model, fixed, self.style_indices.tolist(), len(self.style_names), self.device)
        return save_image(folder / f"step_{self.step:06d}.jpg", to_array(grid), quality=90)

    # --------------------------------------------------------------- the loop

    def fit(
        self,
        out: Path,
        *,
        time_budget: float | None = None,
        sample_dir: Path | None = None,
        extra_state: dict | None = None,
        after_step: Callable[[], None] = lambda: None,
        validation: torch.Tensor | None = None,
        stop: threading.Event | None = None,
    ) -> FitResult:
        """Train to ``config.steps`` (or ``time_budget`` seconds, or a stop signal), writing
        the checkpoint to ``out`` every ``checkpoint_every`` steps and at the end."""
        if stop is None:
            with stop_on_signals() as stop:
                return self.fit(
                    out,
                    time_budget=time_budget,
                    sample_dir=sample_dir,
                    extra_state=extra_state,
                    after_step=after_step,
                    validation=validation,
                    stop=stop,
                )
        cfg = self.config
        main = self.world.main  # only rank 0 writes checkpoints, samples and progress
        fixed = self.content.sample(min(4, max(1, len(self.content))), torch.Generator().manual_seed(1234))
        samples: list[Path] = []
        shown = ExitStack()
        bar = shown.enter_context(progress(cfg.steps, "train", initial=self.step, enabled=main))
        started, start_step = time.perf_counter(), self.step
        self.model.train()
        try:
            while self.step < cfg.steps:
                record = self.train_step()
                after_step()
                elapsed = time.perf_counter() - started
                ips = (self.step - start_step) * cfg.batch_size / max(elapsed, 1e-9)
                out_of_time = time_budget is not None and elapsed >= time_budget
                if time_budget is not None:  # show the steps the budget will allow
                    per_step = elapsed / max(1, self.step - start_step)
                    remaining = 0 if out_of_time else max(0, int((time_budget - elapsed) / per_step))
                    bar.total = max(self.step, min(cfg.steps, self.step + remaining))
                terms = " ".join(f"{k} {v:.3g}" for k, v in record.items() if k not in ("step", "loss"))
                bar.set_postfix_str(f"loss {record['loss']:.3g} ({terms}) {ips:.1f} img/s", refresh=False)
                bar.update(1)
                # Processes stop together: at the step where any of them ran out of time or was told to.
                out_of_time, stopping = distributed.any_of(out_of_time, stop.is_set())
                last = self.step >= cfg.steps or out_of_time or stopping
                if main and (self.step % cfg.checkpoint_every == 0 or last):  # checkpoint first: it matters most
                    if validation is not None and not any(v["step"] == self.step for v in self.validation):
                        scores = self.validate(validation)
                        self.validation.append(scores)
                        log.info(
                            f"step {self.step}: validation loss {scores['loss']:.4g} (content "
                            f"{scores['content']:.4g} style {scores['style']:.4g} tv {scores['tv']:.3g})"
                        )
                    ckpt.atomic_torch_save(self.state(extra_state or {}), out)
                if main and sample_dir is not None and (self.step % cfg.sample_every == 0 or last):
                    samples.append(self.save_sample(fixed, sample_dir))
                if out_of_time:
                    log.info(f"time budget of {time_budget:.0f}s reached at step {self.step}")
                    break
                if stopping:
                    log.info(f"stopped at step {self.step} with the checkpoint written; --resume continues")
                    break
        finally:
            shown.close()
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
        return FitResult(samples, time.perf_counter() - started, self.step - start_step)


def sample_grid(
    model: StyleNet, content: torch.Tensor, style_indices: Sequence[int], num_styles: int, device: torch.device
) -> torch.Tensor:
    """Rows: the content images then one row per style; columns: sample photos."""
    rows = [content]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for index in style_indices:
            w = one_hot_weights(torch.full((len(content),), index), num_styles).to(device)
            rows.append(model(content.to(device), w).float().cpu())
    model.train(was_training)
    n, _, h, w_ = content.shape
    grid = torch.stack(rows)  # [R, N, 3, H, W]
    return grid.permute(2, 0, 3, 1, 4).reshape(3, len(rows) * h, n * w_)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """While training, SIGINT (Ctrl-C) and SIGTERM set an event instead of
    killing the step half-way: the loop finishes the step, writes the
    checkpoint and returns, so a stopped run resumes exactly.  A second
    signal interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
