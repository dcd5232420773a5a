"""`cin-style bench api`: the HTTP service under load, with and without dynamic
batching, beside the runner called directly in one process (the ceiling: no HTTP, no
decoding or encoding).  Each server is a real `cin-style api` subprocess on a loopback
port; the clients are threads here.  Numbers only."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from cin_style.io.memory import peak_rss_mib

MODES = {"dynamic batching": ("--max-batch", "8", "--batch-wait-ms", "5"), "no batching": ("--max-batch", "1")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _load(url: str, body: bytes, requests: int, clients: int) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock, counter = threading.Lock(), iter(range(requests))

    def client():
        for _ in counter:
            started = time.perf_counter()
            status = _post(url, body)
            with lock:
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return {"requests_per_s": requests / seconds, "p50_ms": p50, "p99_ms": p99, "statuses": statuses}


def _serve(graph: Path, threads: int, options: tuple[str, ...]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "cin_style.cli.main", "api", str(graph), "--port", str(port)]
    proc = subprocess.Popen([*command, "--threads", str(threads), *options], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"`cin-style api` did not start: {proc.stderr.read()[-500:] if proc.stderr else ''}")


def run_api_bench(
    model: str | Path | None = None, side: int = 256, requests: int = 200, clients: int = 16, threads: int = 2
) -> dict:
    from PIL import Image

    from cin_style.assets.bundled import bundled_samples, resolve_model
    from cin_style.infer.onnx_runner import StyleRunner
    from cin_style.io.image import fit_long_side

    graph = resolve_model(model or "lite", graph=True)
    photo = fit_long_side(Image.open(sorted(bundled_samples().glob("*.jpg"))[0]).convert("RGB"), side)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    body = buffer.getvalue()
    rows = {}
    runner = StyleRunner(graph, device="cpu", threads=threads)
    image = np.asarray(photo, np.float32)[None] / 255
    weights = np.full((1, len(runner.style_names)), 1 / len(runner.style_names), np.float32)
    for batch in (1, 8):
        images, rows_w = np.repeat(image, batch, 0), np.repeat(weights, batch, 0)
        runner.run(images, rows_w)
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < 5:
            runner.run(images, rows_w)
            count += batch
        rows[f"runner directly, batch {batch}"] = {"requests_per_s": count / (time.perf_counter() - started)}
    del runner
    for label, options in MODES.items():
        proc, url = _serve(graph, threads, options)
        try:
            _load(url + "/v1/stylize", body, 16, 4)  # warm up the sessions for this size
            rows[label] = {
                **_load(url + "/v1/stylize", body, requests, clients),
                "peak_rss_mib": peak_rss_mib(proc.pid),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "graph": graph.name,
        "image": list(photo.size),
        "requests": requests,
        "clients": clients,
        "threads": threads,
        "rows": rows,
    }


def format_api_table(report: dict) -> str:
    w, h = report["image"]
    lines = [
        f"{report['graph']}, {w}x{h} JPEG in and PNG out, {report['requests']} requests from "
        f"{report['clients']} clients, onnxruntime {report['threads']} threads",
        "| path | requests/s | p50 | p99 | server peak RSS | statuses |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in report["rows"].items():
        if "p50_ms" not in r:
            lines.append(f"| {label} (no HTTP) | {r['requests_per_s']:.1f} | — | — | — | — |")
            continue
        lines.append(
            f"| {label} | {r['requests_per_s']:.1f} | {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms | "
            f"{r['peak_rss_mib']:.0f} MiB | {json.dumps(r['statuses'])} |"
        )
    return "\n".join(lines)
