"""Run the service under uvicorn: one process, or ``workers`` processes sharing the port."""

from __future__ import annotations

import os
from typing import Any

from cin_style.api.settings import SETTINGS_ENV, ApiSettings


def check_installed() -> None:
    """Import the `serve` extra's packages now, so that a missing one is said (in one line,
    by the CLI) before anything else happens."""
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import python_multipart  # noqa: F401
    import uvicorn  # noqa: F401


def serve(settings: ApiSettings) -> None:
    """Blocks until interrupted.  Each worker process loads its own model and batches
    its own requests; onnxruntime uses ``settings.threads`` threads in each."""
    import uvicorn

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "backlog": 2048,
        "timeout_keep_alive": 5,
        "log_level": "warning",
        "server_header": False,
    }
    if settings.workers == 1:
        from cin_style.api.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run("cin_style.api.app:app_from_environment", factory=True, workers=settings.workers, **common)
