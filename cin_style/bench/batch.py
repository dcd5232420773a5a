"""`cin-style bench batch`: images/s of `cin-style batch` (Ray Data, a local cluster)
against `cin-style stylize` of the same folder, one process after the other in one run,
and the per-image cost that the README's cluster estimate starts from.  Numbers only."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _photos(folder: Path, count: int, side: int) -> None:
    """``count`` crops of the bundled sample photos, ``side`` px square, as JPEGs."""
    from PIL import Image

    from cin_style.assets.bundled import bundled_samples

    samples = [Image.open(p).convert("RGB") for p in sorted(bundled_samples().glob("*.jpg"))]
    for i in range(count):
        photo = samples[i % len(samples)]
        scale = side * (1 + (i // len(samples)) % 3 * 0.25) / min(photo.size)
        resized = photo.resize((round(photo.width * scale), round(photo.height * scale)))
        x, y = (i * 37) % (resized.width - side + 1), (i * 53) % (resized.height - side + 1)
        resized.crop((x, y, x + side, y + side)).save(folder / f"photo{i:04d}.jpg", quality=90)


def _timed(command: list[str]) -> float:
    """Wall seconds of a command.  (Its CPU time is not measurable from here: Ray's
    workers are children of its raylet, not of the command.)"""
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed: {proc.stderr.strip()[-400:]}")
    return time.perf_counter() - started


def run_batch_bench(model: str | None = None, count: int = 120, side: int = 512, actors: int = 2) -> dict:
    model = str(model or "reference")
    cli = [sys.executable, "-m", "cin_style.cli.main"]
    cores = os.cpu_count() or 1
    rows = {}
    with tempfile.TemporaryDirectory(prefix="cin-style-bench-batch-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        _photos(folder, count, side)
        wall = _timed([*cli, "stylize", model, str(folder), "-o", str(Path(tmp) / "stylize"), "-q"])
        rows["stylize (one process, onnxruntime on all cores)"] = {"seconds": wall}
        wall = _timed(
            [
                *cli,
                "batch",
                str(folder),
                model,
                "-o",
                str(Path(tmp) / "batch"),
                "-q",
                "--actors",
                f"{actors},{actors}",
                "--threads",
                str(max(1, cores // actors)),
                "--batch-size",
                "8",
            ]
        )
        rows[f"batch (Ray Data, {actors} actors x {max(1, cores // actors)} threads)"] = {"seconds": wall}
    for row in rows.values():
        row["images_per_s"] = count / row["seconds"]
        row["core_seconds_per_image"] = row["seconds"] * cores / count  # what a cluster estimate scales
    return {"model": model, "images": count, "side": side, "cores": cores, "rows": rows}


def format_batch_table(report: dict) -> str:
    lines = [
        f"{report['images']} photos of {report['side']}² through the {report['model']} model, "
        f"{report['cores']} cores; wall time includes start-up (Ray's local cluster: a few seconds)",
        "| path | seconds | images/s | core-seconds per image (wall x cores) |",
        "|---|---|---|---|",
    ]
    for label, r in report["rows"].items():
        lines.append(f"| {label} | {r['seconds']:.1f} | {r['images_per_s']:.2f} | {r['core_seconds_per_image']:.2f} |")
    return "\n".join(lines)
