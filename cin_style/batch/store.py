"""Files where a batch job reads and writes: local paths, or any filesystem pyarrow
opens from a URI (s3://, gs://, hdfs://, ...).  Writes are atomic: a local file is
written beside its target and renamed; an object store's PUT is atomic by itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def is_uri(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


@dataclass(frozen=True)
class Store:
    """One filesystem: local (``fs`` None) or a pyarrow filesystem."""

    fs: object | None = None

    @classmethod
    def for_location(cls, location: str) -> tuple[Store, str]:
        """The store of ``location`` and the path inside it."""
        if is_uri(location):
            from pyarrow import fs

            filesystem, path = fs.FileSystem.from_uri(location)
            return cls(filesystem), path
        return cls(), str(Path(location.removeprefix("file://")).resolve())

    @property
    def local(self) -> bool:
        return self.fs is None

    def read(self, path: str) -> bytes:
        if self.fs is None:
            return Path(path).read_bytes()
        with self.fs.open_input_stream(path) as stream:  # type: ignore[attr-defined]
            return stream.readall()

    def write(self, path: str, data: bytes) -> None:
        if self.fs is None:
            from cin_style.io.atomic import atomic_write

            atomic_write(path, lambda fh: fh.write(data))
            return
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)  # type: ignore[attr-defined]
        with self.fs.open_output_stream(path) as stream:  # type: ignore[attr-defined]
            stream.write(data)

    def files(self, folder: str) -> list[str]:
        """Every file under ``folder`` (recursive, sorted); [] when it does not exist."""
        if self.fs is None:
            root = Path(folder)
            return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        from pyarrow import fs

        selector = fs.FileSelector(folder, recursive=True, allow_not_found=True)
        infos = self.fs.get_file_info(selector)  # type: ignore[attr-defined]
        return sorted(info.path for info in infos if info.type == fs.FileType.File)

    def delete(self, path: str) -> None:
        if self.fs is None:
            Path(path).unlink(missing_ok=True)
        else:
            self.fs.delete_file(path)  # type: ignore[attr-defined]
