"""Run exported cin-style graphs with onnxruntime — no torch needed.

``StyleRunner`` picks execution providers from what this onnxruntime build
offers, then reads back what the session really uses: onnxruntime falls back
to the CPU silently, so ``device="cuda"`` that did not become active is an
error that says why.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from cin_style.blend.weights import weight_matrix
from cin_style.errors import CinStyleError, first_line
from cin_style.infer.contract import (
    INPUT_IMAGE,
    INPUT_WEIGHTS,
    MAX_STYLES,
    META_PREFIX,
    MIN_SIDE,
    OUTPUT,
    VARIANT_MASKS,
    VARIANT_TILED,
    tiled_names,
    tiled_sibling_path,
)
from cin_style.infer.runtimes import AUTO_RUNTIME, DEFAULT_RUNTIME, GRAPH_RUNTIMES, fastest_graph_runtime, graph_session
from cin_style.infer.stylizer import Capabilities, image_batch, unit_float
from cin_style.infer.tiles import UP, network_layers
from cin_style.io.image import chw_to_hwc, hwc_to_chw, to_uint8

# Untiled CPU runs up to this many pixels use onnxruntime's CPU arena (StyleRunner._session_for).
ARENA_MAX_PIXELS = 1024 * 1024
DEVICES = ("auto", "cpu", "cuda")
# The CUDA provider's options: heuristic algorithm choice, as exhaustive search would
# re-benchmark cuDNN for every new image size.
CUDA_PROVIDER_OPTIONS = {
    "cudnn_conv_algo_search": "HEURISTIC",
    "arena_extend_strategy": "kSameAsRequested",
    "do_copy_in_default_stream": "1",
}


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


def execution_providers(device: str, runtime: str) -> list:
    """The onnxruntime providers to ask for: CUDA first where ``device`` allows it and this
    build and machine have it, then the CPU."""
    import onnxruntime as ort

    providers: list = ["CPUExecutionProvider"]
    wants_cuda = device in ("auto", "cuda") and runtime == "onnxruntime"
    if wants_cuda and cuda_usable():
        _preload_cuda_libraries(ort)
        providers.insert(0, ("CUDAExecutionProvider", CUDA_PROVIDER_OPTIONS))
    return providers


def cuda_usable() -> bool:
    """Whether this onnxruntime build and machine can run graphs on CUDA."""
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers() and cuda_driver_present()


def _checked_runtime(runtime: str, device: str) -> str:
    """``runtime`` as asked; "auto": the fastest installed for ``device`` (fastest_graph_runtime)."""
    if device not in DEVICES:
        raise RunnerError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if runtime == AUTO_RUNTIME:
        return fastest_graph_runtime(device == "cuda" or (device == "auto" and cuda_usable()))
    if runtime not in GRAPH_RUNTIMES:
        raise RunnerError(f"runtime must be one of {', '.join(GRAPH_RUNTIMES)}, got {runtime!r}")
    if runtime != DEFAULT_RUNTIME and device == "cuda":
        raise RunnerError(f"{runtime} runs on the CPU here; onnxruntime runs graphs on CUDA")
    return runtime


def _active_device(providers: list[str], asked: str) -> str:
    """What the session really runs on; CUDA asked for but not active is an error that says why."""
    device = "cuda" if "CUDAExecutionProvider" in providers else "cpu"
    if asked == "cuda" and device != "cuda":
        import onnxruntime as ort

        raise RunnerError(f"CUDA was requested but onnxruntime runs on the CPU: {cuda_unavailable_reason(ort)}")
    return device


def graph_metadata(session) -> dict[str, str]:
    """A graph's cin_style.* metadata, without the prefix."""
    meta = session.get_modelmeta().custom_metadata_map
    return {k[len(META_PREFIX) :]: v for k, v in meta.items() if k.startswith(META_PREFIX)}


def _style_names(metadata: dict[str, str], path: Path) -> list[str]:
    if "style_names" not in metadata:
        raise RunnerError(f"{path}: not a cin-style graph (no {META_PREFIX}style_names metadata)")
    try:
        names = json.loads(metadata["style_names"])
    except ValueError:
        names = None
    if (
        not isinstance(names, list)
        or not 1 <= len(names) <= MAX_STYLES
        or not all(isinstance(name, str) and name for name in names)
        or len(set(names)) != len(names)
    ):
        raise RunnerError(
            f"{path}: its {META_PREFIX}style_names metadata must be a JSON list of 1 to {MAX_STYLES} distinct names"
        )
    return names


def _check_signature(session, metadata: dict[str, str], style_count: int, path: Path) -> None:
    """The graph's inputs and outputs are the contract's (contract.py), else one line."""
    inputs = {item.name: item.shape for item in session.get_inputs()}
    outputs = [item.name for item in session.get_outputs()]
    if metadata.get("variant") == VARIANT_TILED:
        convs, kernel = metadata.get("residual_convs", ""), metadata.get("outer_kernel", "")
        if not (convs.isdigit() and kernel.isdigit() and int(convs) <= 256 and int(convs) % 2 == 0 and int(kernel) % 2):
            raise RunnerError(
                f"{path}: a tiled graph from an older cin-style, or not a cin-style graph (no residual_convs "
                f"and outer_kernel); export it again from its checkpoint"
            )
        expected_inputs, expected_outputs = tiled_names(network_layers(int(convs), int(kernel)))
        if set(inputs) != set(expected_inputs) or not set(expected_outputs) <= set(outputs):
            raise RunnerError(
                f"{path}: a tiled graph from an older cin-style, or not a cin-style graph (it takes "
                f"{sorted(inputs)[:4]}...); export it again from its checkpoint"
            )
        return
    image, weights = inputs.get(INPUT_IMAGE), inputs.get(INPUT_WEIGHTS)
    masks = metadata.get("variant") == VARIANT_MASKS
    if (
        image is None
        or len(image) != 4
        or set(inputs) - {INPUT_IMAGE, INPUT_WEIGHTS}
        or (weights is not None and len(weights) != (4 if masks else 2))
        or OUTPUT not in outputs
    ):
        raise RunnerError(
            f"{path}: not a cin-style graph: it takes {sorted(inputs)} and gives {outputs}; a cin-style graph "
            f"takes {INPUT_IMAGE} [N,3,H,W] (and {INPUT_WEIGHTS} [N,S]) and gives {OUTPUT}"
        )
    if weights is not None and isinstance(weights[1], int) and weights[1] != style_count:
        raise RunnerError(f"{path}: its {INPUT_WEIGHTS} take {weights[1]} styles, its metadata names {style_count}")


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
        runtime: str = AUTO_RUNTIME,
    ):
        self.path, self.runtime, self._threads = Path(path), _checked_runtime(runtime, device), threads
        if not self.path.is_file():
            raise RunnerError(f"{self.path}: no such file")
        self.session = self._open_session(execution_providers(device, self.runtime), arena=True)
        self._lean_session = None  # made when a large image first needs it (CPU only)
        self.providers = self.session.get_providers()
        # OpenVINO's own choice (bf16 where the CPU has it); onnxruntime computes as the graph says.
        self.runtime_precision: str | None = getattr(self.session, "precision", None)
        self.device = _active_device(self.providers, device)
        self.metadata = graph_metadata(self.session)
        self.style_names: list[str] = _style_names(self.metadata, self.path)
        _check_signature(self.session, self.metadata, len(self.style_names), self.path)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.capabilities, self._sibling_path = self._capabilities()
        self._sibling: StyleRunner | None = None
        if warmup and not self.capabilities.tiles_only:
            self._warmup()

    def _capabilities(self) -> tuple[Capabilities, Path | None]:
        """What the graph can do (contract.py), and its tiled sibling's path if it has one:
        the tiled variant runs only through run_tiled, for any image size; the masks
        variant takes per-pixel blends [N, S, h, w]; a baked graph has no weights input."""
        tiled = self.metadata.get("variant") == VARIANT_TILED
        baked, masks = INPUT_WEIGHTS not in self.input_names, self.metadata.get("variant") == VARIANT_MASKS
        sibling = tiled_sibling_path(self.path)
        sibling_path = sibling if not (tiled or baked or masks) and sibling.is_file() else None
        return Capabilities(baked, masks, tiled or sibling_path is not None, tiled), sibling_path

    def _open_session(self, providers: list, arena: bool):
        try:
            return graph_session(self.path, self.runtime, threads=self._threads, providers=providers, arena=arena)
        except Exception as exc:
            raise RunnerError(f"{self.path}: {self.runtime} cannot load it ({first_line(exc)[:200]})") from None

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
            self._lean_session = self._open_session(["CPUExecutionProvider"], arena=False)
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
        self, images: np.ndarray, weights, *, tile: int | None = None, finish=None, progress=None, grain: int = 0
    ) -> np.ndarray:
        """Images + blends (``image_batch``) → uint8, in tiles, in bounded memory, as the
        untiled network gives them (infer/tiles.py); needs the tiled variant or a sibling.
        ``grain``: the network sees the photos with it (grain.py)."""
        from cin_style.infer.tiles import kept_bytes, stylize_tiled_each

        if not self.capabilities.tiles:
            raise RunnerError(
                f"{self.path} is not the tiled variant and has no tiled sibling "
                f"({tiled_sibling_path(self.path).name}); export the model again: that writes both"
            )
        batch, rows, single = image_batch(images, weights)
        rows = weight_matrix(rows, self.style_names, len(batch), normalize=False)
        if not self.capabilities.tiles_only:
            out = self._tiled_sibling().run_tiled(batch, rows, tile=tile, finish=finish, progress=progress, grain=grain)
            return out[0] if single else out
        convs, kernel = int(self.metadata["residual_convs"]), int(self.metadata["outer_kernel"])
        out = stylize_tiled_each(
            lambda row: OrtTileBackend(self._session_for(None), row, convs, kernel),
            batch,
            rows,
            tile=tile,
            finish=finish,
            progress=progress,
            grain=grain,
            kept=kept_bytes(self.runtime),
        )
        return out[0] if single else out

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
                    f"weights); export the model again: that writes both together"
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
        out = self._session_for(pixels).run([OUTPUT], feeds)[0]
        if out.shape != images.shape:
            raise RunnerError(
                f"{self.path}: gave {list(out.shape)} for images of {list(images.shape)}: not a cin-style graph"
            )
        return out

    def run(self, images: np.ndarray, weights) -> np.ndarray:
        """Images + blends (``image_batch``: uint8, or float in [0, 1]) → float32 in [0, 1],
        one image or a batch as given.  For a baked graph ``weights`` is ignored."""
        batch, rows, single = image_batch(images, weights)
        batch = unit_float(batch)
        if batch.ndim != 4 or batch.shape[3] != 3:
            raise RunnerError(f"images must be [N, H, W, 3] or [H, W, 3], got {list(np.shape(images))}")
        if min(batch.shape[1:3]) < MIN_SIDE:
            raise RunnerError(
                f"images must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {batch.shape[2]}x{batch.shape[1]}"
            )
        if not np.all(np.isfinite(batch)):
            raise RunnerError("input image contains NaN or infinite values")
        if np.ndim(rows) == 4:  # per-pixel blends [N, S, h, w] (masks variant)
            rows = np.asarray(rows, np.float32)
            if rows.shape[:2] != (batch.shape[0], len(self.style_names)) or not np.isfinite(rows).all():
                raise RunnerError(
                    f"per-pixel blends must be finite [{batch.shape[0]}, "
                    f"{len(self.style_names)}, h, w], got {list(rows.shape)}"
                )
        else:
            rows = weight_matrix(rows, self.style_names, batch.shape[0], normalize=False)
        out = chw_to_hwc(self.run_nchw(hwc_to_chw(np.clip(batch, 0, 1)), rows))
        return out[0] if single else out

    def stylize(self, images, weights, **options):
        """Stylize PIL images or uint8/float [H, W, 3] arrays (``cin_style.stylize``)."""
        from cin_style.infer.pipeline import stylize_images

        return stylize_images(self, images, weights, **options)


class OrtTileBackend:
    """cin_style.infer.tiles.LayerBackend over an exported tiled graph (contract.py), one blend.

    Every piece of the graph has its own inputs; a call feeds real data to the piece
    it fetches and 16-px dummies to all the others (onnxruntime runs every node).
    """

    def __init__(self, session, weights: np.ndarray, residual_convs: int, outer_kernel: int):
        self.session = session
        self.layers = network_layers(residual_convs, outer_kernel)
        # The smallest input each piece takes (its kernel's size), so the pieces not fetched cost nothing.
        side = {
            f"{kind}_{layer.name}": 2 if layer.kind == UP else layer.kernel
            for layer in self.layers
            for kind in ("in", "stream")
        }
        self.dummies = {}
        for item in session.get_inputs():
            shape = [d if isinstance(d, int) else side.get(item.name, 16) for d in item.shape]
            dtype = np.float16 if "float16" in item.type else np.float32
            self.dummies[item.name] = (np.ones if item.name.startswith("norm_") else np.zeros)(shape, dtype)
        self.dummies[INPUT_WEIGHTS] = np.asarray(weights, np.float32).reshape(1, -1)
        names = [f"affine_{layer.name}" for layer in self.layers]
        self._affine = dict(zip(names, self.session.run(names, self.dummies)))

    def conv(self, layer, rows, norm, stream, shift):
        name = layer.name
        feeds = {f"in_{name}": rows, f"shift_{name}": shift}
        if norm is not None:
            feeds[f"norm_{name}"] = np.stack(norm).astype(np.float32)
        if stream is not None:
            feeds[f"stream_{name}"] = stream
        fetch = [name, f"sums_{name}"] + ([f"stream_out_{name}"] if layer.keeps_stream else [])
        out = self.session.run(fetch, {**self.dummies, **feeds})
        return out[0], out[1], (out[2] if layer.keeps_stream else None)

    def affine(self, layer):
        gamma, beta = self._affine[f"affine_{layer.name}"]
        return gamma, beta
