"""`cin-style api`: the stylization service over HTTP (the `serve` extra)."""

from __future__ import annotations

import click

from cin_style.api.settings import ApiSettings
from cin_style.cli.options import max_pixels_option

DEFAULTS = ApiSettings()


@click.command()
@click.argument("model", required=False)
@click.option("--host", default=DEFAULTS.host, show_default=True, help="Address to bind; keep loopback behind a proxy.")
@click.option("--port", type=int, default=DEFAULTS.port, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=DEFAULTS.workers,
    show_default=True,
    help="Processes sharing the port, each with its own model and batcher.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="onnxruntime threads per process  [default: onnxruntime's choice, all cores].",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0.001),
    default=DEFAULTS.max_upload_bytes / 1e6,
    show_default=True,
    help="Refuse larger uploads (413), counted while they arrive.",
)
@max_pixels_option(DEFAULTS.max_pixels, "images (413)", show_default=True)
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=DEFAULTS.max_batch,
    show_default=True,
    help="Images of one size per onnxruntime call (1: no dynamic batching).",
)
@click.option(
    "--batch-wait-ms",
    type=click.FloatRange(0, 1000),
    default=DEFAULTS.batch_wait_ms,
    show_default=True,
    help="How long a request waits for others of its size.",
)
@click.option(
    "--queue-size",
    type=click.IntRange(min=1),
    default=DEFAULTS.queue_size,
    show_default=True,
    help="Requests waiting at most; beyond it, 503 with Retry-After.",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.001),
    default=DEFAULTS.timeout_s,
    show_default=True,
    help="Seconds a request may wait and run before a 503.",
)
@click.option(
    "--max-memory-mb",
    type=click.IntRange(min=64),
    default=DEFAULTS.max_memory_mb,
    show_default=True,
    help="The process's memory cap: every image in flight counts against what the model leaves of "
    "it; a request that does not fit gets 503 with Retry-After at once (GET /v1/styles shows the budget).",
)
@click.option(
    "--read-timeout",
    "read_timeout_s",
    type=click.FloatRange(min=0.1),
    default=DEFAULTS.read_timeout_s,
    show_default=True,
    help="Seconds a client has to send a whole request (headers and body); slower ones are disconnected.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=8),
    default=DEFAULTS.max_connections,
    show_default=True,
    help="Open connections per process; past it the slowest senders are dropped.",
)
def api(
    model,
    host,
    port,
    workers,
    threads,
    max_upload_mb,
    max_pixels,
    max_batch,
    batch_wait_ms,
    queue_size,
    timeout_s,
    max_memory_mb,
    read_timeout_s,
    max_connections,
):
    """Serve stylization over HTTP: POST an image, get it back stylized.

    \b
    MODEL: an exported .onnx graph or a bundled model's name (default: the
    bundled reference model).  Endpoints: POST /v1/stylize, GET /v1/styles,
    /healthz, /readyz, /metrics (Prometheus), /docs (OpenAPI).
    Example:
      cin-style api lite --port 8000
      curl -sf -F image=@photo.jpg 'http://127.0.0.1:8000/v1/stylize?style=starry_night' -o out.png
      curl -sf --data-binary @photo.jpg -H 'Content-Type: image/jpeg' \\
           'http://127.0.0.1:8000/v1/stylize?style=starry_night=0.7,great_wave=0.3&format=jpeg' -o out.jpg
    """
    from cin_style.api.server import check_installed, check_port, serve
    from cin_style.infer.onnx_runner import StyleRunner
    from cin_style.infer.runtimes import DEFAULT_RUNTIME

    check_installed()
    settings = ApiSettings(
        model=model,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        max_upload_bytes=max(1, round(max_upload_mb * 1e6)),
        max_pixels=max_pixels,
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        queue_size=queue_size,
        timeout_s=timeout_s,
        max_memory_mb=max_memory_mb,
        read_timeout_s=read_timeout_s,
        max_connections=max_connections,
    )
    StyleRunner(settings.graph_path(), device="cpu", runtime=DEFAULT_RUNTIME)  # a bad MODEL: one line, before binding
    check_port(host, port)
    click.echo(f"cin-style api on http://{host}:{port} (docs at /docs); Ctrl-C stops it", err=True)
    serve(settings)
