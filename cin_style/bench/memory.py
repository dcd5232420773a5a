"""`cin-style bench memory`: peak resident memory of `cin-style stylize` end to end
(decode, network, encode), each case in a fresh process, against the README's cap.

Cases: an 8K photo mosaic (7680x4320, bench/big.py's) and a pixel bomb (a small JPEG that
decodes to 8000x8000 = 64 MP, the default --max-pixels), at style scale 1 and the default, each
through the .pt model in PyTorch and its .onnx graph (plain, tiling through its tiled
sibling) in onnxruntime and, where installed, OpenVINO.  Numbers only.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CAP_MIB = 1536  # the README's cap: 1.5 GiB
EIGHT_K = (7680, 4320)
BOMB = (8000, 8000)

_CASE = r"""
import json, sys, time
from cin_style.cli.main import cli
from cin_style.io.memory import peak_rss_mib
started = time.perf_counter()
try:
    cli.main(sys.argv[1:], prog_name="cin-style", standalone_mode=False)
    error = None
except BaseException as exc:  # a refusal is a result too: report it with the peak
    error = f"{exc.__class__.__name__}: {exc}"
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mib": peak_rss_mib(), "error": error}))
"""


def write_inputs(folder: Path) -> dict[str, Path]:
    """The 8K mosaic as a JPEG, and the bomb: one flat colour with faint noise at 64 MP
    (a few hundred KB that decode to 192 MB)."""
    import numpy as np
    from PIL import Image

    from cin_style.bench.big import mosaic

    inputs = {"8K photo": folder / "8k.jpg", "64 MP bomb": folder / "bomb.jpg"}
    Image.fromarray(mosaic(*EIGHT_K)).save(inputs["8K photo"], quality=90)
    rng = np.random.default_rng(0)
    bomb = np.full((BOMB[1], BOMB[0], 3), (120, 140, 160), np.uint8)
    bomb[::97, ::89] = rng.integers(0, 255, bomb[::97, ::89].shape, dtype=np.uint8)
    Image.fromarray(bomb).save(inputs["64 MP bomb"], quality=75)
    return inputs


CASES = {
    "8K photo, --style-scale 1": ("8K photo", ("--style-scale", "1")),
    "8K photo (default: --style-scale auto)": ("8K photo", ()),
    "64 MP bomb, --style-scale 1": ("64 MP bomb", ("--style-scale", "1")),
    "64 MP bomb (default: auto)": ("64 MP bomb", ()),
}


def run_memory_bench(model: str | Path | None = None, cases=tuple(CASES)) -> dict:
    """``model``: a bundled name or .pt file with a .onnx graph beside it (default: the
    bundled reference model, whose graph ships with its tiled sibling)."""
    from cin_style.assets.bundled import resolve_model
    from cin_style.errors import UsageError

    checkpoint = resolve_model(model)
    graph = checkpoint.with_suffix(".onnx")  # a bundled model's graph sits beside its checkpoint too
    if checkpoint.suffix != ".pt" or not graph.is_file():
        raise UsageError(f"--memory measures a .pt model and its .onnx graph beside it; {graph} is missing")
    from cin_style.infer.runtimes import openvino_installed

    runs = [(checkpoint, "pytorch"), (graph, "onnxruntime")] + ([(graph, "openvino")] if openvino_installed() else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="cin-style-memory-") as tmp:
        inputs = write_inputs(Path(tmp))
        for label in cases:
            source, extra = CASES[label]
            image = inputs[source]
            for path, runtime in runs:
                out = Path(tmp) / f"out-{runtime}.jpg"
                log.info(f"{label} through {path.name} on {runtime} ...")
                command = [sys.executable, "-c", _CASE, "stylize", str(path), str(image), "-o", str(out), *extra]
                command += ["--runtime", runtime]
                proc = subprocess.run(command, capture_output=True, text=True)
                lines = proc.stdout.strip().splitlines()
                result = json.loads(lines[-1]) if lines else {"error": proc.stderr.strip()[-300:]}
                size, written = image.stat().st_size, out.is_file()
                rows.append(
                    {"input": label, "model": path.name, "runtime": runtime, "file_bytes": size, "written": written}
                    | result
                )
                out.unlink(missing_ok=True)
    return {"cap_mib": CAP_MIB, "rows": rows}


def format_memory_table(report: dict) -> str:
    cap = report["cap_mib"]
    lines = [
        f"peak RSS of `cin-style stylize` (fresh process each, decode to encode); cap {cap:.0f} MiB",
        "| input | model | runtime | seconds | peak RSS | under the cap | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        peak = r.get("peak_rss_mib")
        under = "—" if peak is None else ("yes" if peak <= cap else "NO")
        outcome = "written" if r["written"] else (r.get("error") or "not written")
        lines.append(
            f"| {r['input']} ({r['file_bytes'] / 1e3:.0f} KB) | {r['model']} | {r['runtime']} | "
            f"{r.get('seconds', 0):.0f} | {peak or 0:.0f} MiB | {under} | {outcome} |"
        )
    return "\n".join(lines)
