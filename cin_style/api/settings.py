"""The service's settings: one frozen dataclass that owns its defaults and checks, and
travels to uvicorn's worker processes as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cin_style.errors import ConfigError

SETTINGS_ENV = "CIN_STYLE_API_SETTINGS"  # how `--workers N` hands the settings to each process


@dataclass(frozen=True)
class ApiSettings:
    """``model``: an .onnx graph or a bundled model's name (None: the bundled reference).

    Limits: ``max_upload_bytes`` is enforced while the body arrives; ``max_pixels`` from
    the image header, before decoding; images above 2048x2048 run in tiles (bounded
    memory, one at a time).  Batching: requests of one size wait up to ``batch_wait_ms``
    for each other and run as one onnxruntime call of up to ``max_batch`` images.  The
    queue holds at most ``queue_size`` requests and ``max_queued_pixels`` decoded pixels;
    beyond either a request gets 503 with Retry-After.  ``max_memory_mb`` caps the process:
    every image in flight (uploaded, decoding, waiting, running, encoding) counts against
    what the model leaves of it (api/budget.py), and one that does not fit gets 503 with
    Retry-After at once.  Each request must arrive whole within ``read_timeout_s``; past
    ``max_connections`` the slowest senders are dropped (api/connections.py).
    ``timeout_s`` bounds a request's
    wait and run.
    """

    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None
    max_upload_bytes: int = 25_000_000
    max_pixels: int = 4096 * 4096
    max_batch: int = 8
    batch_wait_ms: float = 5.0
    queue_size: int = 64
    max_queued_pixels: int = 32_000_000
    timeout_s: float = 60.0
    max_memory_mb: int = 1900
    read_timeout_s: float = 30.0
    max_connections: int = 512

    def __post_init__(self):
        positive = (
            "workers",
            "max_upload_bytes",
            "max_pixels",
            "max_batch",
            "queue_size",
            "max_queued_pixels",
            "max_memory_mb",
            "max_connections",
        )
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {getattr(self, name)!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        if not (math.isfinite(self.batch_wait_ms) and 0 <= self.batch_wait_ms <= 1000):
            raise ConfigError(f"batch_wait_ms must be in [0, 1000], got {self.batch_wait_ms}")
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ConfigError(f"timeout_s must be > 0, got {self.timeout_s}")
        if not (math.isfinite(self.read_timeout_s) and self.read_timeout_s > 0):
            raise ConfigError(f"read_timeout_s must be > 0, got {self.read_timeout_s}")
        if self.model is not None and Path(self.model).suffix.lower() == ".pt":
            raise ConfigError(
                f"{self.model}: the API serves .onnx graphs (torch-free); "
                f"`cin-style export {self.model} -o model.onnx` makes one"
            )

    def graph_path(self) -> Path:
        """The graph to serve: a bundled model's .onnx by name, else the file given."""
        from cin_style.assets.bundled import resolve_model

        path = resolve_model(self.model, graph=True)
        if path.suffix.lower() != ".onnx":
            raise ConfigError(f"{path}: the API serves .onnx graphs or a bundled model's name")
        return path

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ApiSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})
