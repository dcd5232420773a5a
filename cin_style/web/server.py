"""`cin-style serve`: a static file server for a site folder, on 127.0.0.1 only.

It sends the cross-origin-isolation headers (COOP/COEP): without them the
browser withholds SharedArrayBuffer and onnxruntime-web's wasm backend runs on
one thread.
"""

from __future__ import annotations

import functools
import logging
import os
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cin_style.errors import CinStyleError

log = logging.getLogger(__name__)

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class SiteHandler(SimpleHTTPRequestHandler):
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


def make_server(folder: str | os.PathLike, port: int = 8000, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``folder`` (not yet serving); ``port`` 0 picks a free one."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise CinStyleError(f"{folder}: no index.html here; write a site with `cin-style web -o {folder}`")
    handler = functools.partial(SiteHandler, directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def site_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"
