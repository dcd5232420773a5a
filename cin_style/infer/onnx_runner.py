"""Run exported cin-style graphs with onnxruntime — no torch needed.

``StyleRunner`` picks execution providers from what this onnxruntime build
offers, then reads back what the session really uses: onnxruntime falls back
to the CPU silently, so ``device="cuda"`` that did not become active is an
error that says why.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import numpy as np

from cin_style.blend.weights import weight_matrix
from cin_style.errors import CinStyleError, first_line
from cin_style.infer.contract import (
    INPUT_IMAGE,
    INPUT_WEIGHTS,
    META_PREFIX,
    MIN_SIDE,
    OUTPUT,
    VARIANT_MASKS,
    VARIANT_TILED,
)
from cin_style.infer.stylizer import Capabilities, stylize_images
from cin_style.io.image import chw_to_hwc, hwc_to_chw, to_uint8

# Untiled CPU runs up to this many pixels use onnxruntime's CPU arena (StyleRunner._session_for).
ARENA_MAX_PIXELS = 1024 * 1024


def session_options(threads: int | None = None, *, arena: bool = True, optimize: bool = True):
    """onnxruntime session options as every cin-style session uses them: quiet logs, all
    graph optimisations (none with ``optimize=False``: the graph's own nodes stay
    observable), ``threads`` intra-op threads (None: onnxruntime's choice)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.enable_cpu_mem_arena = arena
    if threads:
        options.intra_op_num_threads = int(threads)
    return options


# What runs a graph: onnxruntime (CPU or CUDA), or OpenVINO on the CPU (the `openvino` extra).
RUNTIMES = ("onnxruntime", "openvino")


def cpu_session(graph: str | os.PathLike | bytes, threads: int | None = None, **options):
    """An onnxruntime CPU session of a graph file or serialized bytes (``session_options``)."""
    import onnxruntime as ort

    source = graph if isinstance(graph, bytes) else str(graph)
    return ort.InferenceSession(source, session_options(threads, **options), providers=["CPUExecutionProvider"])


class RunnerError(CinStyleError, RuntimeError):
    """A graph that cannot be run as asked; the message is meant for users."""


def _installed_ort_distributions() -> list[str]:
    names = []
    for dist in metadata.distributions():
        name = (dist.name or "").lower()
        if name.startswith("onnxruntime") and name not in names:
            names.append(name)
    return sorted(names)


def cuda_driver_present() -> bool:
    """Whether the NVIDIA driver library loads (no driver: no point asking ORT for CUDA,
    which would only print errors and fall back to the CPU)."""
    import ctypes
    import sys

    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def cuda_unavailable_reason(ort) -> str:
    """Why the CUDA provider is missing or did not load, as precisely as we can tell."""
    dists = _installed_ort_distributions()
    if "onnxruntime" in dists and any(d.startswith("onnxruntime-gpu") for d in dists):
        return (
            "both onnxruntime and onnxruntime-gpu are installed and shadow each other; "
            "`pip uninstall onnxruntime onnxruntime-gpu` then `pip install onnxruntime-gpu`"
        )
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return (
            f"this onnxruntime build ({', '.join(dists) or 'onnxruntime'} {ort.__version__}) has "
            f"no CUDA provider; install onnxruntime-gpu"
        )
    if not cuda_driver_present():
        return "no NVIDIA driver found (libcuda cannot be loaded): this machine has no usable GPU"
    return (
        "the CUDA provider is built in but could not load its libraries (CUDA 13 runtime, "
        "cuBLAS, cuDNN 9) or found no GPU; install the nvidia-* CUDA 13 wheels (torch's CUDA "
        "build brings them) or put the libraries on LD_LIBRARY_PATH"
    )


def _preload_cuda_libraries(ort) -> None:
    # onnxruntime's documented way to use the CUDA/cuDNN libraries that pip
    # installed (e.g. with torch) without importing torch.
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload()
    except Exception:  # missing libraries are diagnosed after session creation
        pass


def tiled_sibling_path(path: str | os.PathLike) -> Path:
    """Where a plain graph's tiled sibling lives: ``NAME.onnx`` → ``NAME.tiled.onnx``
    (`cin-style export` writes it; the bundled graphs ship with theirs)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tiled.onnx")


class StyleRunner:
    """An exported cin-style graph, ready to stylize.

    ``device``: ``"auto"`` (CUDA when it really works, else CPU), ``"cpu"`` or
    ``"cuda"`` (an error if CUDA does not become active).  ``threads`` sets
    onnxruntime's intra-op threads (default: its own choice).

    A plain graph with a tiled sibling (``tiled_sibling_path``) tiles through it:
    ``run_tiled`` works and large images stay in bounded memory.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "auto",
        threads: int | None = None,
        warmup: bool = True,
        runtime: str = "onnxruntime",
    ):
        import onnxruntime as ort

        if device not in ("auto", "cpu", "cuda"):
            raise RunnerError(f"device must be auto, cpu or cuda, got {device!r}")
        if runtime not in RUNTIMES:
            raise RunnerError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
        if runtime == "openvino" and device == "cuda":
            raise RunnerError("--runtime openvino runs on the CPU here; use onnxruntime for --device cuda")
        self.runtime = runtime
        self.path = Path(path)
        if not self.path.is_file():
            raise RunnerError(f"{self.path}: no such file")
        self._threads = threads
        providers: list = ["CPUExecutionProvider"]
        want_cuda = device in ("auto", "cuda") and runtime == "onnxruntime"
        if want_cuda and "CUDAExecutionProvider" in ort.get_available_providers() and cuda_driver_present():
            _preload_cuda_libraries(ort)
            providers.insert(
                0,
                (
                    "CUDAExecutionProvider",
                    {
                        # Heuristic algorithm choice: exhaustive search would re-benchmark
                        # cuDNN for every new image size.
                        "cudnn_conv_algo_search": "HEURISTIC",
                        "arena_extend_strategy": "kSameAsRequested",
                        "do_copy_in_default_stream": "1",
                    },
                ),
            )
        self.session = self._make_session(providers, arena=True)
        self._lean_session = None  # made when a large image first needs it (CPU only)
        self.providers = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in self.providers else "cpu"
        if device == "cuda" and self.device != "cuda":
            raise RunnerError(
                f"--device cuda requested but onnxruntime runs on the CPU: {cuda_unavailable_reason(ort)}"
            )
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META_PREFIX) :]: v for k, v in meta.items() if k.startswith(META_PREFIX)}
        if "style_names" not in self.metadata:
            raise RunnerError(f"{self.path}: not a cin-style graph (no {META_PREFIX}style_names metadata)")
        self.style_names: list[str] = json.loads(self.metadata["style_names"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        # The tiled variant (contract.py) runs only through run_tiled, for any image size;
        # the masks variant takes per-pixel blends [N, S, h, w].
        tiled = self.metadata.get("variant") == VARIANT_TILED
        baked, masks = INPUT_WEIGHTS not in self.input_names, self.metadata.get("variant") == VARIANT_MASKS
        sibling = tiled_sibling_path(self.path)
        self._sibling_path = sibling if not (tiled or baked or masks) and sibling.is_file() else None
        self._sibling: StyleRunner | None = None
        self.capabilities = Capabilities(
            baked=baked, masks=masks, tiles=tiled or self._sibling_path is not None, tiles_only=tiled
        )
        if warmup and not tiled:
            self._warmup()

    def _make_session(self, providers: list, arena: bool):
        import onnxruntime as ort

        if self.runtime == "openvino":
            from cin_style.infer.openvino_session import OpenVinoSession

            return OpenVinoSession(self.path, self._threads)
        try:
            return ort.InferenceSession(
                str(self.path), session_options(self._threads, arena=arena), providers=providers
            )
        except Exception as exc:
            raise RunnerError(f"{self.path}: onnxruntime cannot load it ({first_line(exc)[:200]})") from None

    def _session_for(self, pixels: int | None):
        """The CPU arena makes a run faster (buffers are reused instead of being
        page-faulted in afresh on every run) but it only grows, to several times the
        memory of a large image (docs/design-notes.md, "CPU arena").  So images up to
        ARENA_MAX_PIXELS (all of a batch together) run on the arena session; larger ones,
        and the tiled variant (``pixels`` None: the memory-bounded path), on a lean one."""
        whole = pixels is not None and pixels <= ARENA_MAX_PIXELS
        if self.device == "cuda" or self.runtime != "onnxruntime" or whole:
            return self.session
        if self._lean_session is None:
            self._lean_session = self._make_session(["CPUExecutionProvider"], arena=False)
        return self._lean_session

    def _warmup(self) -> None:
        image = np.full((1, 3, 64, 64), 0.5, np.float32)
        self.run_nchw(image, np.full((1, len(self.style_names)), 1.0 / len(self.style_names), np.float32))

    def _feed_weights(self, weights: np.ndarray) -> np.ndarray:
        weights = np.ascontiguousarray(weights, dtype=np.float32)
        if weights.ndim == 4 and not self.capabilities.masks:
            raise RunnerError(
                f"{self.path} takes one blend per image; per-pixel blends (style masks) "
                f"need a graph exported with `cin-style export --masks`"
            )
        if self.capabilities.masks and weights.ndim == 2:  # a global blend is a constant map
            weights = weights[:, :, None, None]
        return weights

    def run_tiled(
        self, image: np.ndarray, weights: np.ndarray, *, tile: int | None = None, finish=None, progress=None
    ) -> np.ndarray:
        """uint8 [H, W, 3] + one blend [S] → uint8 [H, W, 3] in tiles, in bounded memory,
        as the untiled network gives it (infer/tiles.py); needs the tiled variant."""
        from cin_style.infer.tiles import DEFAULT_TILE, stylize_tiled

        if not self.capabilities.tiles:
            raise RunnerError(
                f"{self.path} is not the tiled variant and has no tiled sibling "
                f"({tiled_sibling_path(self.path).name}); `cin-style export MODEL -o {self.path.name}` writes both"
            )
        if not self.capabilities.tiles_only:
            return self._tiled_sibling().run_tiled(image, weights, tile=tile, finish=finish, progress=progress)
        backend = OrtTileBackend(
            self._session_for(None), np.asarray(weights, np.float32), int(self.metadata["residual_convs"])
        )
        return stylize_tiled(backend, image, tile=tile or DEFAULT_TILE, finish=finish, progress=progress)

    def _tiled_sibling(self) -> StyleRunner:
        if self._sibling is None:
            assert self._sibling_path is not None  # capabilities.tiles without tiles_only
            sibling = StyleRunner(
                self._sibling_path, device=self.device, threads=self._threads, warmup=False, runtime=self.runtime
            )
            same = ("style_names", "model_config", "weights_sha256")
            if not sibling.capabilities.tiles_only or any(
                sibling.metadata.get(k) != self.metadata.get(k) for k in same
            ):
                raise RunnerError(
                    f"{self._sibling_path} is not the tiled variant of {self.path.name} (other styles or "
                    f"weights); export them together with `cin-style export MODEL -o {self.path.name}`"
                )
            self._sibling = sibling
        return self._sibling

    def run_nchw(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """The graph as it is: float32 [N, 3, H, W] + [N, S] → [N, 3, H, W], no checks
        (benchmarks time exactly this)."""
        if self.capabilities.tiles_only:
            tiles = [self.run_tiled(to_uint8(chw_to_hwc(image[None])[0]), row) for image, row in zip(images, weights)]
            return hwc_to_chw(np.stack(tiles).astype(np.float32) / 255)
        feeds = {INPUT_IMAGE: np.ascontiguousarray(images, dtype=np.float32)}
        if not self.capabilities.baked:
            feeds[INPUT_WEIGHTS] = self._feed_weights(weights)
        pixels = images.shape[0] * images.shape[2] * images.shape[3]
        return self._session_for(pixels).run([OUTPUT], feeds)[0]

    def run(self, images: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float32 [N, H, W, 3] in [0, 1] + [N, S] weights → [N, H, W, 3].

        For a baked graph ``weights`` is ignored (its blend is fixed).
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[3] != 3:
            raise RunnerError(f"images must be [N, H, W, 3], got {list(images.shape)}")
        if min(images.shape[1:3]) < MIN_SIDE:
            raise RunnerError(
                f"images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {images.shape[2]}x{images.shape[1]}"
            )
        if not np.all(np.isfinite(images)):
            raise RunnerError("input image contains NaN or infinite values")
        if np.ndim(weights) == 4:  # per-pixel blends [N, S, h, w] (masks variant)
            weights = np.asarray(weights, np.float32)
            if weights.shape[:2] != (images.shape[0], len(self.style_names)) or not np.isfinite(weights).all():
                raise RunnerError(
                    f"per-pixel blends must be finite [{images.shape[0]}, "
                    f"{len(self.style_names)}, h, w], got {list(weights.shape)}"
                )
        else:
            weights = weight_matrix(weights, self.style_names, images.shape[0], normalize=False)
        return chw_to_hwc(self.run_nchw(hwc_to_chw(np.clip(images, 0, 1)), weights))

    def stylize(self, images, weights, *, normalize: bool = True, batch_size: int = 8, style_scale: float = 1.0):
        """Stylize PIL images or uint8/float [H, W, 3] arrays with one blend (see
        ``cin_style.infer.stylizer.stylize_images``)."""
        return stylize_images(
            self, images, weights, normalize=normalize, batch_size=batch_size, style_scale=style_scale
        )


def available_devices() -> Sequence[str]:
    import onnxruntime as ort

    return ["cuda", "cpu"] if "CUDAExecutionProvider" in ort.get_available_providers() else ["cpu"]


class OrtTileBackend:
    """cin_style.infer.tiles.TileBackend over an exported tiled graph (contract.py), one blend.

    Every piece of the graph has its own inputs; a call feeds real data to the piece
    it fetches and 16-px dummies to all the others (onnxruntime runs every node).
    """

    def __init__(self, session, weights: np.ndarray, residual_convs: int):
        self.session = session
        self.residual_convs = residual_convs
        self.dummies = {}
        for item in session.get_inputs():
            # 16 px at full resolution: 4 at quarter resolution, 6 rows for a padded strip.
            side = (
                16
                if item.name.startswith(("in_head", "in_down", "in_quarter", "size_"))
                else 6
                if item.name.startswith("in_residual")
                else 4
            )
            shape = [d if isinstance(d, int) else side for d in item.shape]
            self.dummies[item.name] = np.zeros(shape, np.float32)
        self.dummies[INPUT_WEIGHTS] = np.asarray(weights, np.float32).reshape(1, -1)
        self._affine = self._run("residual_affine", {})

    def _run(self, fetch: str, feeds: dict) -> np.ndarray:
        return self.session.run([fetch], {**self.dummies, **feeds})[0]

    @staticmethod
    def _stats(stats) -> dict:
        return {f"stats_{k}": np.stack(v).astype(np.float32) for k, v in stats.items()}

    def front(self, crop, stats, fetch):
        return self._run(
            "quarter" if fetch == "quarter" else fetch,
            {f"in_{fetch}": np.ascontiguousarray(crop, np.float32), **self._stats(stats)},
        )

    def residual_conv(self, index, padded):
        return self._run(f"residual_{index}", {f"in_residual_{index}": np.ascontiguousarray(padded, np.float32)})

    def residual_affine(self, index):
        return self._affine[index, 0], self._affine[index, 1]

    def back(self, quarter, half_hw, full_hw, stats, fetch):
        return self._run(
            OUTPUT if fetch == "stylized" else fetch,
            {
                f"in_{fetch}": np.ascontiguousarray(quarter, np.float32),
                f"size_{fetch}": np.zeros((1, 1, *full_hw), np.float32),
                **self._stats(stats),
            },
        )
