"""Headless Chromium driving the page (driver.mjs, through Node and puppeteer-core):
shared by the browser tests and `cin-style bench browser`.

Nothing here is needed to write or serve a site; it needs Node.js, a Chromium
and a node_modules folder holding puppeteer-core and onnxruntime-web
(`npm ci --prefix tests/browser` installs both).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from cin_style.errors import CinStyleError
from cin_style.web.server import make_server, site_url

CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
)
DEFAULT_NODE_MODULES = Path("tests/browser/node_modules")


class BrowserMissing(CinStyleError):
    """Node, Chromium or the npm packages are not installed; the message says which."""


def find_chromium() -> Path:
    """$CIN_STYLE_CHROMIUM, else Debian's chromium-headless-shell or chromium."""
    explicit = os.environ.get("CIN_STYLE_CHROMIUM")
    for candidate in [explicit] if explicit else list(CHROMIUM_CANDIDATES):
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise BrowserMissing(
        "no Chromium found (apt-get install --no-install-recommends chromium-headless-shell, or set CIN_STYLE_CHROMIUM)"
    )


def find_node_modules(folder: str | os.PathLike | None = None) -> Path:
    """A node_modules folder with puppeteer-core and onnxruntime-web:
    ``folder``, else $CIN_STYLE_NODE_MODULES, else ./tests/browser/node_modules."""
    path = Path(folder or os.environ.get("CIN_STYLE_NODE_MODULES") or DEFAULT_NODE_MODULES)
    missing = [name for name in ("puppeteer-core", "onnxruntime-web") if not (path / name).is_dir()]
    if missing:
        raise BrowserMissing(f"{path}: no {' or '.join(missing)} there (npm ci --prefix tests/browser)")
    return path.resolve()


def ort_web_dist(node_modules: Path) -> Path:
    return node_modules / "onnxruntime-web" / "dist"


def find_node() -> str:
    node = shutil.which("node")
    if node is None:
        raise BrowserMissing("Node.js (node) is not on PATH")
    return node


@contextmanager
def serving(folder: str | os.PathLike) -> Iterator[str]:
    """Serve ``folder`` on a free 127.0.0.1 port for the duration; yields its URL."""
    server = make_server(folder, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site_url(server)
    finally:
        server.shutdown()
        server.server_close()


class DriverError(CinStyleError):
    """The page or the driver failed; carries what the browser's console said."""


def drive(
    steps: list[dict],
    *,
    node_modules: Path,
    chromium: Path | None = None,
    timeout_s: float = 300,
    chromium_args: Sequence[str] = (),
) -> list:
    """Run ``steps`` (see driver.mjs) in one headless Chromium, started with the extra
    ``chromium_args`` (e.g. a fake camera); one result per step."""
    chromium = chromium or find_chromium()
    driver = resources.files("cin_style.web") / "driver.mjs"
    with tempfile.TemporaryDirectory(prefix="cin-style-driver-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(
            json.dumps(
                {
                    "chromium": str(chromium),
                    "node_modules": str(node_modules),
                    "timeout_ms": int(timeout_s * 1000),
                    "args": list(chromium_args),
                    "steps": steps,
                }
            )
        )
        with resources.as_file(driver) as driver_path:
            done = subprocess.run(
                [find_node(), str(driver_path), str(job)], capture_output=True, text=True, timeout=timeout_s + 60
            )
    if done.returncode != 0:
        raise DriverError(f"driver.mjs exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    results = report["results"]
    if results and isinstance(results[-1], dict) and "driver_error" in results[-1]:
        console = "\n".join(report["console"][-20:])
        raise DriverError(f"{results[-1]['driver_error']}\nbrowser console:\n{console}")
    return results
