"""Run the service under uvicorn: one process, or ``workers`` processes sharing the port."""

from __future__ import annotations

import os
from typing import Any

from cin_style.api.settings import SETTINGS_ENV, ApiSettings
from cin_style.errors import CinStyleError


def check_installed() -> None:
    """Import the `serve` extra's packages now, so that a missing one is said (in one line,
    by the CLI) before anything else happens."""
    import fastapi  # noqa: F401
    import prometheus_client  # noqa: F401
    import python_multipart  # noqa: F401
    import uvicorn  # noqa: F401


class PortTaken(CinStyleError, OSError):
    """The address to serve on is taken or not ours to bind."""


def check_port(host: str, port: int) -> None:
    """Bind (host, port) once and let go, as uvicorn will (SO_REUSEADDR): a taken port is
    one line before anything says the service is up."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PortTaken(f"cannot serve on {host}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortTaken(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


def serve(settings: ApiSettings) -> None:
    """Blocks until interrupted.  Each worker process loads its own model and batches
    its own requests; onnxruntime uses ``settings.threads`` threads in each."""
    import logging

    import uvicorn

    from cin_style.api.connections import AcceptErrorFilter, bounded_protocol

    logging.getLogger("asyncio").addFilter(AcceptErrorFilter())
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "backlog": 2048,
        "timeout_keep_alive": 5,
        "log_level": "warning",
        "server_header": False,
        "http": bounded_protocol(settings.read_timeout_s, settings.max_connections),
    }
    if settings.workers == 1:
        from cin_style.api.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run("cin_style.api.app:app_from_environment", factory=True, workers=settings.workers, **common)
