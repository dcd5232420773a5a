"""The Ray actor of a batch job: one onnxruntime session, images one at a time through
the same code as `cin-style stylize` (so each result equals its output), outputs
written atomically, and the batch's manifest rows as one part file at the end.

Images go one at a time: on a CPU a call of several same-size images was no faster than
as many single calls (docs/batch.md has the numbers), and one at a time needs no size
grouping.
A file that cannot be read or stylized is an error row, never a failed batch."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import numpy as np

from cin_style.batch.manifest import DONE, ERROR, write_part
from cin_style.batch.store import Store, is_uri
from cin_style.errors import CinStyleError, first_line


class StylizeActor:
    def __init__(
        self,
        graph: bytes,
        tiled_sibling: bytes | None,
        weights: list[float],
        blend: str,
        model_sha256: str,
        strength: float,
        preserve_color: bool,
        max_pixels: int | None,
        output_location: str,
        manifest_folder: str,
        device: str = "cpu",
        threads: int | None = None,
    ):
        from cin_style.infer.finish import Finish
        from cin_style.infer.onnx_runner import StyleRunner

        Finish(strength, preserve_color)  # checked here too: an actor fails before any file
        self._scratch = Path(tempfile.mkdtemp(prefix="cin-style-batch-"))
        (self._scratch / "model.onnx").write_bytes(graph)
        if tiled_sibling is not None:
            (self._scratch / "model.tiled.onnx").write_bytes(tiled_sibling)
        self.runner = StyleRunner(self._scratch / "model.onnx", device=device, threads=threads)
        self.weights = np.asarray(weights, np.float32)
        self.blend, self.model_sha256 = blend, model_sha256
        self.strength, self.preserve_color, self.max_pixels = strength, preserve_color, max_pixels
        self.out_store, _ = Store.for_location(output_location)
        self.manifest_folder = manifest_folder

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self._one(str(source), str(target)) for source, target in zip(batch["input"], batch["output"])]
        write_part(self.out_store, self.manifest_folder, rows)
        return {"input": np.array([r["input"] for r in rows]), "status": np.array([r["status"] for r in rows])}

    def _one(self, source: str, target: str) -> dict:
        from cin_style.infer.files import stylize_files

        started = time.perf_counter()
        row = {
            "input": source,
            "output": target,
            "style_weights": self.weights.tolist(),
            "blend": self.blend,
            "model_sha256": self.model_sha256,
        }
        local_in, local_out = Path(source), Path(target)
        try:
            if is_uri(source):
                store, path = Store.for_location(source)
                local_in = self._scratch / f"in{PurePosixPath(path).suffix}"
                local_in.write_bytes(store.read(path))
            if not self.out_store.local:
                local_out = self._scratch / f"out{PurePosixPath(target).suffix}"
            (result,) = stylize_files(
                self.runner,
                [local_in],
                [local_out],
                self.weights,
                strength=self.strength,
                preserve_color=self.preserve_color,
                max_pixels=self.max_pixels,
            )
            if result.error is None and not self.out_store.local:
                self.out_store.write(Store.for_location(target)[1], local_out.read_bytes())
            error = None if result.error is None else result.error.replace(str(local_in), source)
            size = result.size or (None, None)
        except (CinStyleError, OSError) as exc:
            error, size = f"{source}: {first_line(exc)}", (None, None)
        return {
            **row,
            "status": DONE if error is None else ERROR,
            "error": error,
            "width": size[0],
            "height": size[1],
            "seconds": round(time.perf_counter() - started, 4),
            "finished_at": datetime.now(UTC),
        }
