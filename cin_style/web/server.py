"""`cin-style serve`: a static file server for a site folder, on 127.0.0.1 only.

It sends the cross-origin-isolation headers (COOP/COEP): without them the
browser withholds SharedArrayBuffer and onnxruntime-web's wasm backend runs on
one thread.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import sys
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cin_style.errors import CinStyleError

log = logging.getLogger(__name__)

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# A request that sends nothing for this long is dropped: idle or half-sent connections
# must not pin a thread each.
REQUEST_TIMEOUT = 15.0
# Connections the kernel may queue while every thread is busy (the standard library's 5
# refuses bursts a page's parallel module and wasm fetches make).
BACKLOG = 128


class SiteHandler(SimpleHTTPRequestHandler):
    timeout = REQUEST_TIMEOUT

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".onnx": "application/octet-stream",
        ".md": "text/markdown",
    }

    def end_headers(self):
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("Cache-Control", "no-cache")  # a rewritten site shows at the next reload
        super().end_headers()

    def log_message(self, format, *args):
        log.debug("%s %s", self.address_string(), format % args)

    def translate_path(self, path: str) -> str:
        """The file for a URL path, or "" when it is not inside the site folder: ``..``
        is already dropped by the base class; symlinks out of the folder and paths the OS
        cannot take (a NUL byte) are refused here."""
        try:
            local = Path(super().translate_path(path))
            root = Path(self.directory).resolve()
            resolved = local.resolve()
        except (ValueError, OSError):
            return ""
        return str(resolved) if resolved == root or root in resolved.parents else ""

    def send_head(self):
        path = self.translate_path(self.path)
        if not path or not (os.path.isdir(path) or _regular_file(path)):
            # a FIFO or device would pin this thread on open() forever
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):  # no listings: the site serves its files, nothing else
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None


def _regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG

    def handle_error(self, request, client_address):
        """A client that went away (or timed out) is routine, not a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("%s disconnected", client_address[0])
            return
        super().handle_error(request, client_address)


def make_server(
    folder: str | os.PathLike, port: int = 8000, host: str = "127.0.0.1", timeout: float = REQUEST_TIMEOUT
) -> ThreadingHTTPServer:
    """A server for ``folder`` (not yet serving); ``port`` 0 picks a free one; a connection
    silent for ``timeout`` seconds is dropped."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise CinStyleError(f"{folder}: no index.html here; write a site with `cin-style web -o {folder}`")
    handler = type("Handler", (SiteHandler,), {"timeout": timeout})
    return SiteServer((host, port), functools.partial(handler, directory=str(folder)))


def site_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
