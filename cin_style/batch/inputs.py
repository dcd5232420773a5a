"""What a batch job stylizes: INPUT (a folder, a glob, or a .txt/.csv/.parquet list of
paths or URIs) → (input, output) pairs.  A folder's images keep their relative paths
under OUTPUT; a list's get ``STEM-HASH8.FMT`` (lists may repeat stems)."""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cin_style.batch.store import Store, is_uri
from cin_style.errors import UsageError
from cin_style.io.image import IMAGE_SUFFIXES

LIST_SUFFIXES = (".txt", ".csv", ".parquet")
PATH_COLUMNS = ("path", "input", "uri", "url", "file")


@dataclass(frozen=True)
class Item:
    input: str
    output: str


def resolve_items(source: str, output: str, fmt: str = "png") -> list[Item]:
    """The pairs to stylize, in a stable order, each input once."""
    out_store, out_root = Store.for_location(output)
    join = _joiner(out_store)
    suffix = PurePosixPath(source).suffix.lower()
    if suffix in LIST_SUFFIXES and not _is_folder(source):
        inputs = _read_list(source)
        items = [Item(i, join(out_root, f"{_stem(i)}-{_short_hash(i)}.{fmt}")) for i in inputs]
    elif any(ch in source for ch in "*?[") and not is_uri(source):
        matches = sorted(p for p in glob.glob(source, recursive=True) if Path(p).is_file())
        inputs = [str(Path(p).resolve()) for p in matches if Path(p).suffix.lower() in IMAGE_SUFFIXES]
        items = [Item(i, join(out_root, f"{_stem(i)}-{_short_hash(i)}.{fmt}")) for i in inputs]
    else:
        store, root = Store.for_location(source)
        files = [f for f in store.files(root) if PurePosixPath(f).suffix.lower() in IMAGE_SUFFIXES]
        files = [f for f in files if not any(part.startswith(".") for part in PurePosixPath(f[len(root) :]).parts)]
        if store.local and out_store.local:  # an output folder inside the input: its images are not inputs
            outputs = Path(out_root).resolve()
            files = [f for f in files if outputs not in Path(f).resolve().parents]
        if not files and not _is_folder(source):
            raise UsageError(f"input not found, or not a folder, glob or list: {source}")
        prefix = "" if store.local else source[: len(source) - len(root)]  # the URI's scheme and host
        items = []
        for f in files:
            relative = PurePosixPath(f[len(root) :].lstrip("/"))
            items.append(Item(prefix + f, join(out_root, str(relative.with_suffix(f".{fmt}")))))
    if not items:
        raise UsageError(f"no images in {source} (looked for {', '.join(IMAGE_SUFFIXES)})")
    return list({item.input: item for item in items}.values())


def _joiner(store: Store):
    if store.local:
        return lambda root, name: str(Path(root) / name)
    return lambda root, name: f"{root.rstrip('/')}/{name}"


def _is_folder(source: str) -> bool:
    return not is_uri(source) and Path(source).is_dir()


def _stem(location: str) -> str:
    return PurePosixPath(location.split("?", 1)[0]).stem or "image"


def _short_hash(location: str) -> str:
    return hashlib.sha1(location.encode()).hexdigest()[:8]


def _read_list(source: str) -> list[str]:
    """Paths or URIs from a list file; relative paths are relative to the list's folder."""
    store, path = Store.for_location(source)
    suffix = PurePosixPath(path).suffix.lower()
    if suffix == ".txt":
        text = store.read(path).decode("utf-8")
        entries = [line.split("#", 1)[0].strip() for line in text.splitlines()]
        entries = [e for e in entries if e]
    else:
        entries = _table_column(store, path, suffix)
    base = PurePosixPath(path).parent
    resolved = []
    for entry in entries:
        if is_uri(entry) or PurePosixPath(entry).is_absolute():
            resolved.append(entry)
        elif store.local:
            resolved.append(str((Path(base) / entry).resolve()))
        else:
            resolved.append(source[: len(source) - len(path)] + str(base / entry))
    return resolved


def _table_column(store: Store, path: str, suffix: str) -> list[str]:
    import io

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    data = io.BytesIO(store.read(path))
    try:
        table = pq.read_table(data) if suffix == ".parquet" else pacsv.read_csv(data)
    except Exception as exc:  # pyarrow's parse errors
        raise UsageError(f"{path}: cannot read the list ({str(exc).splitlines()[0][:200]})") from None
    names = [n for n in table.column_names if n.lower() in PATH_COLUMNS]
    if not names:
        raise UsageError(f"{path}: no column named {' or '.join(PATH_COLUMNS)}; columns are {table.column_names}")
    return [str(v) for v in table.column(names[0]).to_pylist() if v]
