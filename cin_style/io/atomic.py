"""Atomic file writes: a temp file beside the target, fsync, rename.

Readers see either the old file or the complete new one, never a partial
write — also when the process is killed mid-write.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from cin_style.errors import UsageError

# Temp files older than this process are left over from a run that was killed mid-write.
PROCESS_STARTED = time.time()


def temp_pattern(path: Path) -> str:
    """The glob of the temp files our writers make beside ``path`` (see ``atomic_write``
    and io.video's ``_temp_beside``)."""
    return f".{path.stem}.*.tmp*" if path.suffix else f".{path.name}.*.tmp"


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files a killed run of ours left beside ``path``: only our own name
    pattern (``.NAME.XXXX.tmp``), only those last written before this process started.
    Returns what was removed."""
    path = Path(path)
    return _remove_older_than_this_run(
        c for pattern in {f".{path.name}.*.tmp", temp_pattern(path)} for c in path.parent.glob(pattern)
    )


def remove_stale_temps_under(folder: str | os.PathLike) -> list[Path]:
    """``remove_stale_temps`` for every file under ``folder`` (an output tree of a batch job)."""
    folder = Path(folder)
    return _remove_older_than_this_run(folder.rglob(".*.tmp")) if folder.is_dir() else []


def _remove_older_than_this_run(candidates: Iterable[Path]) -> list[Path]:
    removed = []
    for candidate in candidates:
        try:
            if candidate.is_file() and candidate.stat().st_mtime < PROCESS_STARTED:
                candidate.unlink()
                removed.append(candidate)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def refuse_overwriting_inputs(outputs: Iterable[str | os.PathLike], inputs: Iterable[str | os.PathLike]) -> None:
    """A UsageError when any output would replace one of the inputs (by resolved path, or
    by inode for hard links); linear in the number of files."""

    def identity(path: Path) -> tuple[int, int] | None:
        try:
            info = path.stat()
        except OSError:
            return None
        return info.st_dev, info.st_ino

    by_path: dict[Path, Path] = {}
    by_inode: dict[tuple[int, int], Path] = {}
    for path in map(Path, inputs):
        by_path[path.resolve()] = path
        inode = identity(path)
        if inode is not None:
            by_inode[inode] = path
    for output in map(Path, outputs):
        inode = identity(output)
        source = by_path.get(output.resolve()) or (by_inode.get(inode) if inode is not None else None)
        if source is not None:
            raise UsageError(
                f"{output} is the input {source}: writing it would replace the input; choose another output"
            )


def default_file_mode() -> int:
    """The mode a plain open() would give a new file (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], keep_previous: bool = False) -> Path:
    """Call ``write(fileobj)`` on a temp file, then move it to ``path``.

    With ``keep_previous`` an existing ``path`` survives as ``path.prev``: it
    is hard linked there (atomically replacing an older .prev) before the new
    file is renamed over ``path``, so ``path`` itself never goes missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files
        if keep_previous and path.is_file():
            prev_tmp = path.with_name(f".{path.name}.prev.tmp")
            if prev_tmp.exists():
                prev_tmp.unlink()
            try:
                os.link(path, prev_tmp)
            except OSError:  # file systems without hard links
                shutil.copy2(path, prev_tmp)
            os.replace(prev_tmp, path.with_name(path.name + ".prev"))
            # rename() between two links of one file does nothing (a run killed between
            # keeping .prev and renaming the new file leaves path and .prev one file)
            prev_tmp.unlink(missing_ok=True)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_folder(path: str | os.PathLike, build: Callable[[Path], None]) -> Path:
    """Call ``build(folder)`` on a temp folder beside ``path``, then swap it in.

    A build that fails leaves ``path`` as it was; an existing ``path`` is
    replaced only once the new folder is complete (two renames: a reader may
    briefly find no folder, never a half-written one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        build(tmp)
        os.chmod(tmp, default_file_mode() | 0o111)  # mkdtemp makes 0700 folders
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
