"""Multi-style training: one network, N styles, one perceptual-loss trainer.

Every sample of a batch draws its own style, so a single run learns all
styles at once; the styles differ only in their CIN γ/β rows (Dumoulin et
al. 2017).  ``add_styles`` grows a trained model by new styles and trains only
their new rows, leaving the old styles bit-identical.
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
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from cin_style.config import ADD_STYLE_LR, ADD_STYLE_STEPS, ClipConfig, TrainConfig
from cin_style.data.photos import ContentImages, center_crops
from cin_style.data.styles import StyleSpec, load_style_image, parse_style_inputs
from cin_style.errors import DataError, TrainingDiverged
from cin_style.losses.clip import ClipDirectionLoss
from cin_style.losses.perceptual import PerceptualLoss
from cin_style.nn import checkpoint as ckpt
from cin_style.nn.devices import pick_device
from cin_style.nn.stylenet import StyleNet, one_hot_weights
from cin_style.nn.vgg import build_encoder
from cin_style.progress import progress
from cin_style.train import distributed
from cin_style.train.distill import distill_loss, draw_weights, load_teacher

log = logging.getLogger(__name__)


def learning_rate(config: TrainConfig, step: int) -> float:
    if config.lr_schedule == "cosine":
        floor = 0.01
        t = min(step, config.steps) / config.steps
        return config.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))
    return config.lr


@dataclass
class TrainResult:
    model: StyleNet
    style_names: list[str]
    step: int
    checkpoint: Path
    history: list[dict]
    samples: list[Path]
    skipped: str | None
    seconds: float
    images_per_second: float


def prefetch_crops(device: torch.device) -> bool:
    """Cut the next batch's crops on a thread while this step computes: on a GPU (on a
    CPU the thread would only take a core from the step)."""
    return device.type == "cuda"


class _Run:
    """The state one training loop needs; shared by ``train`` and ``add_styles``."""

    def __init__(self, model: StyleNet, style_names: list[str], styles: Sequence[StyleSpec],
                 style_indices: list[int], content: ContentImages, loss_fn: PerceptualLoss,
                 config: TrainConfig, device: torch.device, params: list[nn.Parameter],
                 channels_last: bool | None = None, prefetch: bool | None = None,
                 teacher: StyleNet | None = None, clip: ClipDirectionLoss | None = None):
        self.model, self.style_names, self.config, self.device = model, style_names, config, device
        # Distillation (config.distill): the frozen model whose outputs are the targets.
        self.teacher = teacher.to(device) if teacher is not None else None
        # NHWC feeds cuDNN's tensor-core kernels; on the CPU `bench --train` measures it.
        self.channels_last = device.type == "cuda" if channels_last is None else channels_last
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
            loss_fn.to(memory_format=torch.channels_last)
            if self.teacher is not None:
                self.teacher.to(memory_format=torch.channels_last)
        self.content, self.loss_fn = content, loss_fn
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
        self.net = model
        if self.world.size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(params, lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed + 1)
        self.step = 0
        self.history: list[dict] = []
        self.validation: list[dict] = []
        # Styles in words (spec.text) learn from the CLIP direction loss instead of Grams; its
        # random patches have their own generator (the crops' may be drawn on another thread).
        self.clip = clip
        self.clip_generator = torch.Generator().manual_seed(config.seed + 2)
        self.text_rows = torch.zeros(len(style_names), dtype=torch.bool)
        self.text_rows[[i for s, i in zip(styles, style_indices) if s.text is not None]] = True
        painted = [(s, i) for s, i in zip(styles, style_indices) if s.text is None]
        images = [load_style_image(s.path, config.style_size).to(device) for s, _ in painted]
        # One Gram row per model style; styles not being trained (or given in words) stay zero.
        self.grams = {}
        if images:
            with self._autocast():
                grams = loss_fn.style_targets(images)
            for name, value in grams.items():
                table = torch.zeros(len(style_names), *value.shape[1:], device=device)
                table[[i for _, i in painted]] = value.float()
                self.grams[name] = table

    def _autocast(self):
        precision = self.config.precision
        if precision == "bf16" or (precision == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def state(self, extra: dict) -> dict:
        return ckpt.make_checkpoint(
            self.model, self.style_names,
            train_config=self.config.checkpoint_dict(),
            step=self.step,
            optimizer=self.optimizer.state_dict(),
            # A batch drawn ahead is drawn again after a resume: store the state before it.
            rng={"data": self._next[1] if self._next else self.generator.get_state(),
                 "torch": torch.get_rng_state(), "clip": self.clip_generator.get_state()},
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

    def perceptual(self, output: torch.Tensor, content: torch.Tensor,
                   indices: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The perceptual loss of ``output`` for style rows ``indices`` [N]: Grams for
        paintings; for styles in words the CLIP direction loss (``clip`` part) instead,
        each term weighted by its share of the batch."""
        targets = {name: table[indices] for name, table in self.grams.items()}
        if self.clip is None:
            return self.loss_fn(output, content, targets)
        is_text = self.text_rows.to(indices.device)[indices]
        total, parts = self.loss_fn(output, content, targets, style_samples=~is_text)
        clip = output.new_zeros((), dtype=torch.float32)
        if is_text.any():
            terms = self.clip(output[is_text], content[is_text], indices[is_text], self.clip_generator)
            clip = self.clip.weighted(terms) * is_text.float().mean()
        parts["clip"] = clip
        return total + clip, parts

    def train_step(self) -> dict:
        cfg = self.config
        if self._next is not None:
            content, self._next = self._next[0].result(), None
        else:
            content = self.content.sample(cfg.batch_size, self.generator, keep=self.share)
        if self.device.type == "cuda":  # page-locked: the copy overlaps the GPU's work
            content = content.pin_memory().to(self.device, non_blocking=True)
        else:
            content = content.to(self.device)
        if cfg.distill is None:
            pick = torch.randint(len(self.style_indices), (cfg.batch_size,), generator=self.generator)
            if self.share is not None:
                pick = pick[self.share]
            indices = self.style_indices[pick].to(self.device)
            weights = one_hot_weights(indices, len(self.style_names))
        else:
            weights = draw_weights(self.style_indices, len(self.style_names), cfg.batch_size,
                                   cfg.distill.blend_share, self.generator)
            if self.share is not None:
                weights = weights[self.share]
            weights = weights.to(self.device)
        if cfg.stability_weight > 0:
            moved, move = perturb(content, self.generator)
        if self._executor is not None and self.step + 1 < cfg.steps:  # every draw of this step is done
            state = self.generator.get_state()
            self._next = (self._executor.submit(self.content.sample, cfg.batch_size, self.generator,
                                                self.share), state)
        if self.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(cfg, self.step)
        with self._autocast():
            if cfg.stability_weight > 0:
                # One forward for the crops and their perturbed copies (DDP wants one per step).
                both = self.net(torch.cat([content, moved]), torch.cat([weights, weights]))
                output, output_moved = both[:len(content)], both[len(content):]
            else:
                output = self.net(content, weights)
            if cfg.distill is None:
                total, parts = self.perceptual(output, content, indices)
            else:
                with torch.no_grad():
                    target = self.teacher(content, weights)
                total, parts = distill_loss(output, target, self.loss_fn.encoder,
                                            list(cfg.loss.content_layers), cfg.distill)
            if cfg.stability_weight > 0:
                parts["stability"] = stability_loss(output_moved, move(output))
                total = total + cfg.stability_weight * parts["stability"]
        # Every process sees the global batch's losses: the same record, the same verdict.
        names = list(parts)
        shared = distributed.mean(torch.stack([total.detach().float(), *(parts[n].detach().float()
                                                                          for n in names)]))
        if not torch.isfinite(shared[0]):
            raise TrainingDiverged(f"loss became {float(shared[0])} at step {self.step + 1}; "
                                     f"lower --lr or set --grad-clip")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.optimizer.step()
        self.step += 1
        record = {"step": self.step, "loss": float(shared[0]),
                  **{name: float(value) for name, value in zip(names, shared[1:])}}
        self.history.append(record)
        return record


STABILITY_MARGIN = 4  # px left out at the borders, where the shifted copy had no pixels


def perturb(images: torch.Tensor, generator: torch.Generator):
    """A copy of ``images`` each shifted by up to 2 px, zoomed by up to 2 % and given
    sensor noise (σ up to 0.02), and the function that moves any [N, C, H, W] the same
    way (without the noise): synthetic camera motion from still photos."""
    n, _, h, w = images.shape
    shift = (torch.rand(n, 2, generator=generator) * 4 - 2) * torch.tensor([2 / w, 2 / h])
    scale = 1 + (torch.rand(n, generator=generator) * 0.04 - 0.02)
    sigma = torch.rand(n, 1, 1, 1, generator=generator) * 0.02
    noise = torch.randn(images.shape, generator=generator) * sigma
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False).to(images.device)

    def move(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border",
                                               align_corners=False)

    return (move(images) + noise.to(images.device)).clamp(0, 1).to(images.dtype), move


def stability_loss(output_moved: torch.Tensor, moved_output: torch.Tensor) -> torch.Tensor:
    m = STABILITY_MARGIN
    return torch.nn.functional.mse_loss(output_moved[..., m:-m, m:-m].float(), moved_output[..., m:-m, m:-m])


@torch.no_grad()
def validate(run: _Run, photos: torch.Tensor) -> dict:
    """Mean weighted loss parts of the model on fixed validation photos, and
    each style's own style loss.  Style k stylizes photos 2k and 2k+1 (mod N),
    so every style is scored on the same number of photos, with no randomness."""
    was_training = run.model.training
    run.model.eval()
    sums = {"content": 0.0, "style": 0.0, "tv": 0.0, **({"clip": 0.0} if run.clip is not None else {})}
    per_style = {}
    for k, index in enumerate(run.style_indices.tolist()):
        pick = torch.tensor([(2 * k) % len(photos), (2 * k + 1) % len(photos)])
        content = photos[pick].to(run.device)
        if run.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        weights = one_hot_weights(torch.full((2,), index), len(run.style_names)).to(run.device)
        with run._autocast():
            output = run.model(content, weights)
            _, parts = run.perceptual(output, content, torch.full((2,), index, device=run.device))
        for name in sums:
            sums[name] += float(parts[name]) / len(run.style_indices)
        per_style[run.style_names[index]] = float(parts["clip" if run.text_rows[index] else "style"])
    run.model.train(was_training)
    return {"step": run.step, "loss": sum(sums.values()), **sums, "style_by_name": per_style}


def _sample_grid(model: StyleNet, content: torch.Tensor, style_indices: Sequence[int],
                 num_styles: int, device: torch.device) -> torch.Tensor:
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


def _save_sample(run: _Run, fixed: torch.Tensor, folder: Path, indices: Sequence[int]) -> Path:
    from cin_style.data.photos import to_array
    from cin_style.io.image import save_image

    grid = _sample_grid(run.model, fixed, indices, len(run.style_names), run.device)
    return save_image(folder / f"step_{run.step:06d}.jpg", to_array(grid), quality=90)


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


def _loop(run: _Run, out: Path,
          time_budget: float | None, sample_dir: Path | None, extra_state: dict,
          after_step: Callable[[], None] = lambda: None,
          validation: torch.Tensor | None = None,
          stop: threading.Event | None = None) -> tuple[list[Path], float, int]:
    if stop is None:
        with stop_on_signals() as stop:
            return _loop(run, out, time_budget, sample_dir, extra_state,
                         after_step, validation, stop)
    cfg = run.config
    main = run.world.main  # only rank 0 writes checkpoints, samples and progress
    fixed = run.content.sample(min(4, max(1, len(run.content))), torch.Generator().manual_seed(1234))
    samples: list[Path] = []
    shown = ExitStack()
    bar = shown.enter_context(progress(cfg.steps, "train", initial=run.step, enabled=main))
    started, start_step = time.perf_counter(), run.step
    run.model.train()
    try:
        while run.step < cfg.steps:
            record = run.train_step()
            after_step()
            elapsed = time.perf_counter() - started
            ips = (run.step - start_step) * cfg.batch_size / max(elapsed, 1e-9)
            out_of_time = time_budget is not None and elapsed >= time_budget
            if time_budget is not None:  # show the steps the budget will allow
                per_step = elapsed / max(1, run.step - start_step)
                remaining = 0 if out_of_time else max(0, int((time_budget - elapsed) / per_step))
                bar.total = max(run.step, min(cfg.steps, run.step + remaining))
            terms = " ".join(f"{k} {v:.3g}" for k, v in record.items() if k not in ("step", "loss"))
            bar.set_postfix_str(f"loss {record['loss']:.3g} ({terms}) {ips:.1f} img/s", refresh=False)
            bar.update(1)
            # Processes stop together: at the step where any of them ran out of time or was told to.
            out_of_time, stopping = distributed.any_of(out_of_time, stop.is_set())
            last = run.step >= cfg.steps or out_of_time or stopping
            if main and (run.step % cfg.checkpoint_every == 0 or last):  # checkpoint first: it matters most
                if validation is not None and not any(v["step"] == run.step for v in run.validation):
                    scores = validate(run, validation)
                    run.validation.append(scores)
                    log.info(f"step {run.step}: validation loss {scores['loss']:.4g} (content "
                             f"{scores['content']:.4g} style {scores['style']:.4g} tv {scores['tv']:.3g})")
                ckpt.atomic_torch_save(run.state(extra_state), out)
            if main and sample_dir is not None and (run.step % cfg.sample_every == 0 or last):
                samples.append(_save_sample(run, fixed, sample_dir, run.style_indices.tolist()))
            if out_of_time:
                log.info(f"time budget of {time_budget:.0f}s reached at step {run.step}")
                break
            if stopping:
                log.info(f"stopped at step {run.step} with the checkpoint written; --resume continues")
                break
    finally:
        shown.close()
        if run._executor is not None:
            run._executor.shutdown(wait=True, cancel_futures=True)
    elapsed = time.perf_counter() - started
    return samples, elapsed, run.step - start_step


def _train_rows(model: StyleNet, names: list[str], specs: Sequence[StyleSpec], trained: list[int],
                params: list[nn.Parameter], content: str | Path, out: Path, config: TrainConfig, *,
                device: str, vgg_weights: str | Path | None, encoder: nn.Module | None,
                samples: bool, time_budget: float | None, validation: str | Path | None,
                style_paths: list[str], resumed: dict | None = None,
                after_step: Callable[[], None] = lambda: None,
                teacher: StyleNet | None = None, prompts: dict[str, str] | None = None) -> TrainResult:
    """The run set-up ``train`` and ``add_styles`` share: device, loss network,
    data, checkpoints, samples, validation, the loop and its result.
    ``trained`` are the style rows being learnt (``specs`` their paintings, in
    order); ``params`` what Adam moves."""
    dev = distributed.device_for(pick_device(device))
    distributed.join(dev)
    model.to(dev)
    if encoder is None:
        encoder = build_encoder(config.loss.encoder, config.loss.layers, vgg_weights)
    loss_fn = PerceptualLoss(encoder, config.loss).to(dev)
    data = ContentImages(content, config.image_size, photo_size=config.photo_size)
    clip = None
    if any(s.text is not None for s in specs) and config.distill is None:
        from cin_style.losses.clip import load_clip

        clip_config = config.clip or ClipConfig()
        clip_model, tokenizer = load_clip(clip_config, dev)
        rows: list[str | None] = [None] * len(names)
        for spec, index in zip(specs, trained):
            rows[index] = spec.text
        clip = ClipDirectionLoss(clip_model, tokenizer, clip_config, rows).to(dev)
    run = _Run(model, names, specs, trained, data, loss_fn, config, dev, params, teacher=teacher, clip=clip)
    if resumed is not None:
        run.restore(resumed)
        log.info(f"resuming from step {run.step} of {config.steps}")
    sample_dir = out.with_name(out.stem + "_samples") if samples else None
    extra = {"content": str(content), "style_paths": style_paths, "style_prompts": prompts or {}}
    val_photos = (center_crops(validation, config.image_size, config.photo_size)
                  if validation is not None else None)
    try:
        sample_paths, seconds, done = _loop(run, out, time_budget, sample_dir, extra,
                                            after_step=after_step, validation=val_photos)
    finally:
        # Close the process group before the interpreter exits: gloo's threads would
        # otherwise abort the process (SIGABRT) at exit.
        distributed.leave()
    report = data.skipped_report()
    if report:
        log.info(report)
    model.eval()
    return TrainResult(model.cpu(), names, run.step, out, run.history, sample_paths, report,
                       seconds, done * config.batch_size / max(seconds, 1e-9))


def train(styles: Sequence[str | Path], content: str | Path, out: str | Path,
          config: TrainConfig | None = None, *, resume: bool = False, device: str = "auto",
          vgg_weights: str | Path | None = None, encoder: nn.Module | None = None,
          samples: bool = True, time_budget: float | None = None,
          validation: str | Path | None = None) -> TrainResult:
    """Train a multi-style network; write checkpoints to ``out``.

    ``validation`` (a folder or .txt list of photos training never sees) is
    scored at every checkpoint (see ``validate``) and kept in the checkpoint.

    ``encoder`` overrides the VGG loss network (tests pass a random one).
    With ``resume`` the run continues from ``out`` exactly where it stopped;
    the checkpoint's training config is used, except that ``config.steps``
    may extend the run.

    With ``config.distill`` the network learns to reproduce a teacher model with
    the same styles (``distill.py``) instead of minimising the perceptual loss;
    validation still scores the perceptual loss, so student and teacher compare.
    """
    out = Path(out)
    config = config or TrainConfig()
    specs = parse_style_inputs(styles)
    names = [s.name for s in specs]
    resumed = None
    if resume:
        if not out.is_file():
            raise ckpt.CheckpointError(f"--resume: no checkpoint at {out} to resume from")
        resumed = ckpt.load_checkpoint(out)
        if "optimizer" not in resumed:
            raise ckpt.CheckpointError(f"{out}: holds no training state to resume from")
        if list(resumed["style_names"]) != names:
            raise ckpt.CheckpointError(f"{out} was trained on styles {resumed['style_names']}, "
                                       f"not {names}")
        config = TrainConfig.from_dict({**resumed["train_config"], "steps": config.steps},
                                       network=resumed["model_config"])
    teacher = None
    if config.distill is not None:
        teacher, digest = load_teacher(config.distill, names)
        config = replace(config, distill=replace(config.distill, teacher_sha256=digest))
    torch.manual_seed(config.seed)
    model = StyleNet(replace(config.network, num_styles=len(specs)))
    if resumed is not None:
        model, _ = ckpt.model_from_checkpoint(resumed, str(out))
    elif config.init_from is not None:
        model, config = _start_from(config, names)
    return _train_rows(model, names, specs, list(range(len(names))), list(model.parameters()),
                       content, out, config, device=device, vgg_weights=vgg_weights, encoder=encoder,
                       samples=samples, time_budget=time_budget, validation=validation,
                       style_paths=[s.source for s in specs], resumed=resumed, teacher=teacher,
                       prompts={s.name: s.text for s in specs if s.text is not None})


def _start_from(config: TrainConfig, names: list[str]) -> tuple[StyleNet, TrainConfig]:
    """The model ``config.init_from`` names (a file or a bundled model's name) as the
    starting weights, and the config with its network shape and file hash."""
    model, digest = ckpt.load_model_to_build_on(config.init_from, names, "--init-from")
    log.info(f"starting from the weights of {config.init_from}")
    return model, replace(config, network=model.config, init_sha256=digest)


def add_styles(model_path: str | Path, new_styles: Sequence[str | Path], content: str | Path,
               out: str | Path | None = None, *, steps: int = ADD_STYLE_STEPS,
               lr: float = ADD_STYLE_LR,
               device: str = "auto", vgg_weights: str | Path | None = None,
               encoder: nn.Module | None = None, samples: bool = True,
               time_budget: float | None = None, validation: str | Path | None = None,
               clip: ClipConfig | None = None) -> TrainResult:
    """Grow a trained model by ``new_styles``, training only their new γ/β rows
    with the model's own training recipe (crop size, loss, precision).
    ``clip`` says where CLIP comes from for new styles given in words.

    Everything else is frozen and the old rows are restored after every step,
    so the old styles' outputs stay bit-identical.
    """
    model_path = Path(model_path)
    out = Path(out) if out else model_path
    data = ckpt.load_checkpoint(model_path)
    model, names = ckpt.model_from_checkpoint(data, str(model_path))
    specs = parse_style_inputs(new_styles)
    clash = [s.name for s in specs if s.name in names]
    if clash:
        raise DataError(f"the model already has style(s) {clash}; rename with NAME=PATH")
    # New rows learn from the paintings with the perceptual loss, also in a distilled model
    # (its teacher does not have the new styles).
    config = replace(TrainConfig.from_dict(data.get("train_config", {}), network=data["model_config"]),
                     steps=steps, lr=lr, lr_schedule="constant", distill=None)
    if clip is not None:
        config = replace(config, clip=clip)
    old_count = model.num_styles
    model.add_styles(len(specs))
    model.requires_grad_(False)
    params = []
    for norm in model.cin_layers():
        norm.gamma.requires_grad_(True)
        norm.beta.requires_grad_(True)
        params += [norm.gamma, norm.beta]
    frozen = [(p, p.detach()[:old_count].clone()) for p in params]

    def restore_old_rows():
        with torch.no_grad():
            for param, old in frozen:
                param[:old_count] = old.to(param.device)

    all_names = names + [s.name for s in specs]
    style_paths = list(data.get("style_paths", [])) + [s.source for s in specs]
    prompts = {**data.get("style_prompts", {}), **{s.name: s.text for s in specs if s.text is not None}}
    return _train_rows(model, all_names, specs, list(range(old_count, len(all_names))), params,
                       content, out, config, device=device, vgg_weights=vgg_weights, encoder=encoder,
                       samples=samples, time_budget=time_budget, validation=validation,
                       style_paths=style_paths, after_step=restore_old_rows, prompts=prompts)
