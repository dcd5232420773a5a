"""The batch manifest: a Parquet dataset in ``OUTPUT/manifest/``, one part file per
finished batch, each written atomically by the actor that ran it.  A killed job loses
at most its batches in flight; the latest row of an input wins.  Read it with
``pyarrow.parquet.read_table("OUTPUT/manifest")`` or pandas."""

from __future__ import annotations

import io
import time
import uuid

from cin_style.batch.store import Store

FOLDER = "manifest"
DONE, ERROR = "done", "error"


def schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("input", pa.string()),
            ("output", pa.string()),
            ("status", pa.string()),  # done | error
            ("error", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("style_weights", pa.list_(pa.float32())),
            ("blend", pa.string()),
            ("model_sha256", pa.string()),
            ("seconds", pa.float64()),
            ("finished_at", pa.timestamp("ms", tz="UTC")),
        ]
    )


def folder_of(store: Store, output_root: str) -> str:
    return f"{output_root.rstrip('/')}/{FOLDER}"


def write_part(store: Store, folder: str, rows: list[dict]) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema())
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    path = f"{folder}/part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.parquet"
    store.write(path, buffer.getvalue())
    return path


def _parts(store: Store, folder: str) -> list[str]:
    return [p for p in store.files(folder) if p.rsplit("/", 1)[-1].startswith("part-") and p.endswith(".parquet")]


def read_manifest(store: Store, folder: str):
    """The manifest as one table, the latest row per input (None when there is none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = _parts(store, folder)
    if not parts:
        return None
    table = pa.concat_tables([pq.read_table(io.BytesIO(store.read(p)), schema=schema()) for p in parts])
    table = table.sort_by([("input", "ascending"), ("finished_at", "descending")])
    inputs = table.column("input").to_pylist()
    keep = [i for i, name in enumerate(inputs) if i == 0 or inputs[i - 1] != name]
    return table.take(pa.array(keep, pa.int64()))


def done_inputs(store: Store, folder: str) -> set[str]:
    table = read_manifest(store, folder)
    if table is None:
        return set()
    return {row["input"] for row in table.select(["input", "status"]).to_pylist() if row["status"] == DONE}


def compact(store: Store, folder: str) -> None:
    """All parts → one (the latest row per input); the old parts go once it is written."""
    parts = _parts(store, folder)
    if len(parts) <= 1:
        return
    table = read_manifest(store, folder)
    write_part(store, folder, table.to_pylist())
    for part in parts:
        store.delete(part)
