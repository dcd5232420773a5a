"""The HTTP service: ``create_app(settings)`` → a FastAPI app.

    POST /v1/stylize   an image (multipart field ``image``, or the raw body) → the stylized image
    GET  /v1/styles    style names, model facts, limits
    GET  /healthz      the process answers          GET /readyz   the model is loaded
    GET  /metrics      Prometheus text              GET /docs     the OpenAPI page

Every refusal is a JSON body ``{"error": "...", "status": N}``; the server keeps serving.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose
# names are imported inside create_app.
import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np

from cin_style import __version__
from cin_style.api.batcher import Batcher, Job, QueueFull
from cin_style.api.budget import CostModel, MemoryBudget, OverBudget
from cin_style.api.metrics import Metrics
from cin_style.api.params import (
    OPTION_NAMES,
    OUTPUT_FORMATS,
    ApiError,
    StylizeOptions,
    StylizeParams,
    merge_options,
    resolve_options,
    validation_error,
)
from cin_style.api.settings import SETTINGS_ENV, ApiSettings
from cin_style.errors import CinStyleError, first_line
from cin_style.infer import tiles
from cin_style.infer.finish import Finish
from cin_style.infer.onnx_runner import ARENA_MAX_PIXELS, StyleRunner
from cin_style.infer.pipeline import WHOLE, Pipeline
from cin_style.io.image import MIN_SIDE, ImageError, decode_image, encoded_size, fitted_size
from cin_style.io.memory import rss_mib

ROUTES = ("/v1/stylize", "/v1/styles", "/healthz", "/readyz", "/metrics")
MAX_OPTIONS_CHARS = 16_384  # the JSON options: a blend of every style fits many times over


class UploadTooLarge(Exception):
    """Raised inside ``receive`` once a body passes the limit, mid-read."""


class _Service:
    """What the routes share: the settings, the runner and its batcher, the metrics."""

    def __init__(self, settings: ApiSettings):
        self.settings, self.metrics = settings, Metrics()
        self.runner: StyleRunner | None = None
        self.batcher: Batcher | None = None
        self.budget = MemoryBudget(0)
        self.costs = CostModel(base_width=32)

    def start(self) -> None:
        self.runner = StyleRunner(self.settings.graph_path(), threads=self.settings.threads)
        self.costs = CostModel(base_width=_base_width(self.runner))
        # What the model, the runtime and the CPU arena (which only grows, up to its largest
        # batch) keep for good is not the images' to use.
        arena = self.costs.bytes_for(WHOLE, 0, ARENA_MAX_PIXELS, 0)
        left = self.settings.max_memory_mb * 2**20 - int(rss_mib() * 2**20) - arena
        self.budget = MemoryBudget(max(left, 64 * 2**20))
        metrics = self.metrics
        self.batcher = Batcher(
            self.runner,
            max_batch=self.settings.max_batch,
            wait_s=self.settings.batch_wait_ms / 1000,
            queue_size=self.settings.queue_size,
            max_queued_pixels=self.settings.max_queued_pixels,
            on_batch=metrics.batch_size.observe,
            on_depth=metrics.queue_depth.set,
        )

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


def _base_width(runner: StyleRunner) -> int:
    """The width of the graph's first layer, from its model_config (the reference model's
    when the graph does not say)."""
    try:
        return int(json.loads(runner.metadata.get("model_config", "{}")).get("base_width", 32))
    except (ValueError, TypeError, AttributeError):
        return 32


def error_response(status: int, message: str, headers=None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


class _Guard:
    """Pure ASGI middleware: the upload limit while the body arrives (Content-Length
    first, then every chunk), and the request metrics."""

    def __init__(self, app, service: _Service):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        metrics, limit = self.service.metrics, self.service.settings.max_upload_bytes
        route = scope["path"] if scope["path"] in ROUTES else "other"
        started, status = time.perf_counter(), [500]
        metrics.in_flight.inc()

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > limit:
                response = error_response(413, f"the upload is {int(length):,} bytes; the limit is {limit:,}")
                return await response(scope, receive, counted_send)
            received = 0

            async def limited_receive():
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise UploadTooLarge(f"the upload passed the limit of {limit:,} bytes")
                return message

            await self.app(scope, limited_receive, counted_send)
        finally:
            metrics.in_flight.dec()
            metrics.requests.labels(route, str(status[0])).inc()
            metrics.latency.labels(route).observe(time.perf_counter() - started)


def create_app(settings: ApiSettings | None = None):
    from fastapi import FastAPI, Query, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import Response
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    settings = settings or ApiSettings()
    service = _Service(settings)

    @asynccontextmanager
    async def lifespan(app):
        await run_in_threadpool(service.start)
        yield
        await run_in_threadpool(service.stop)

    app = FastAPI(
        title="cin-style",
        version=__version__,
        summary="Multi-style neural style transfer: blend any of the model's styles per request.",
        lifespan=lifespan,
    )
    app.add_middleware(_Guard, service=service)

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(UploadTooLarge)
    async def too_large(request, exc):
        return error_response(413, str(exc))

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request, exc):
        return error_response(400, "the client went away before the body arrived")

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        error = validation_error(exc.errors())
        return error_response(error.status, error.message)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: the model is loaded and warm")
    async def readyz():
        if service.runner is None:
            return error_response(503, "the model is still loading", {"Retry-After": "1"})
        return {"status": "ready"}

    @app.get("/metrics", summary="Prometheus metrics of this process")
    async def metrics():
        body, content_type = service.metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/styles", summary="The model's styles, facts and the service's limits")
    async def styles():
        runner = _ready(service)
        meta = runner.metadata
        return {
            "styles": runner.style_names,
            "model": {
                "file": runner.path.name,
                "precision": meta.get("precision"),
                "config": json.loads(meta["model_config"]) if meta.get("model_config", "").startswith("{") else None,
                "baked_blend": meta.get("baked_blend") or None,
                "tiles_large_images": runner.capabilities.tiles,
                "device": runner.device,
                "runtime": runner.runtime,
                "runtime_precision": runner.runtime_precision,
            },
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "tiled_above_pixels": tiles.tiles_above(runner.runtime, runner.device),
                "max_batch": settings.max_batch,
                "timeout_s": settings.timeout_s,
                "max_memory_mb": settings.max_memory_mb,
                "memory_for_images_mb": round(service.budget.limit / 2**20),
            },
            "version": __version__,
        }

    body_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["image"],
                        "properties": {
                            "image": {"type": "string", "format": "binary"},
                            "options": {"type": "string", "description": "a JSON object of the parameters"},
                        },
                    }
                },
                "image/*": {"schema": {"type": "string", "format": "binary"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }

    @app.post(
        "/v1/stylize",
        summary="Stylize one image",
        response_class=Response,
        responses={200: {"content": {media: {} for _, media in OUTPUT_FORMATS.values()}}},
        openapi_extra=body_doc,
    )
    async def stylize(request: Request, params: Annotated[StylizeParams, Query()]):
        runner = _ready(service)
        data, json_options, fields = await _read_body(request)
        merged = merge_options(params, request.query_params.multi_items(), fields, json_options)
        options = resolve_options(merged, runner)
        header, size, route, scale = _plan(data, options, settings, runner)
        cost = service.costs.bytes_for(route, header[0] * header[1], size[0] * size[1], len(data))
        try:
            reservation = service.budget.reserve(cost)
        except OverBudget as exc:
            raise ApiError(503, f"{exc}; retry shortly", {"Retry-After": "1"}) from None
        release_here = True
        try:
            image = await run_in_threadpool(_decode, data, options, settings, route)
            del data
            finish = Finish(options.strength, options.preserve_color)
            future = _submit(service, Job(image, options.weights, finish, route, scale, options.grain))
            del image
            try:
                result = await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
            except TimeoutError:
                if not future.cancel():  # it runs on: its memory is held until it ends
                    future.add_done_callback(lambda _: reservation.release())
                    release_here = False
                raise ApiError(
                    503, f"not done within {settings.timeout_s:g} s; retry later", {"Retry-After": "5"}
                ) from None
            encoded = await run_in_threadpool(_encode, result, options)
            answered = f"{result.shape[1]}x{result.shape[0]}"
            del result
        finally:
            if release_here:
                reservation.release()
        headers = {"X-Style-Blend": options.blend, "X-Image-Size": answered, "X-Style-Scale": f"{scale:g}"}
        return Response(encoded, media_type=OUTPUT_FORMATS[options.format][1], headers=headers)

    return app


def _submit(service: _Service, job: Job):
    try:
        return service.batcher.submit(job)  # type: ignore[union-attr]
    except QueueFull as exc:
        raise ApiError(503, f"{exc}; retry shortly", {"Retry-After": "1"}) from None


def _ready(service: _Service) -> StyleRunner:
    if service.runner is None:
        raise ApiError(503, "the model is still loading", {"Retry-After": "1"})
    return service.runner


async def _read_body(request) -> tuple[bytes, dict | None, list[tuple[str, str]]]:
    """(image bytes, JSON options, other form fields) from a multipart or raw body."""
    from starlette.datastructures import UploadFile

    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fields: list[tuple[str, str]] = []
    json_text = None
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=len(OPTION_NAMES) + 2)
        except UploadTooLarge:
            raise
        except Exception as exc:  # python-multipart's parse errors, too many parts
            raise ApiError(400, f"malformed multipart body: {getattr(exc, 'detail', exc)}") from None
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "the multipart body needs the image as a file field named 'image'")
        data = await upload.read()
        for name, value in form.multi_items():
            if name == "options":
                json_text = value if isinstance(value, str) else None
            elif name != "image":
                if not isinstance(value, str):
                    raise ApiError(400, f"unexpected file field {name!r}; send one file, named 'image'")
                fields.append((name, value))
    elif content_type.startswith("image/") or content_type == "application/octet-stream":
        data = await request.body()
    else:
        raise ApiError(
            415,
            f"content type {content_type or '(none)'!r}: send multipart/form-data with an 'image' "
            f"file, or the image itself as image/* or application/octet-stream",
        )
    if not data:
        raise ApiError(400, "the image is empty")
    json_options = None
    if json_text is not None:
        if len(json_text) > MAX_OPTIONS_CHARS:
            raise ApiError(400, f"options is {len(json_text):,} characters; the limit is {MAX_OPTIONS_CHARS:,}")
        try:
            json_options = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"options is not valid JSON ({exc.msg} at {exc.pos})") from None
        except (ValueError, RecursionError) as exc:  # a 5,000-digit integer; nesting past the stack
            raise ApiError(400, f"options cannot be read ({type(exc).__name__}: {first_line(exc)[:120]})") from None
        if not isinstance(json_options, dict):
            raise ApiError(400, "options must be a JSON object")
    return data, json_options, fields


def _plan(data: bytes, options: StylizeOptions, settings: ApiSettings, runner: StyleRunner):
    """From the header alone, before any decoding: (header size, size after max_side,
    route through infer/pipeline.py, the style scale it runs at), or the request's refusal."""
    try:
        header = encoded_size(data, "image", settings.max_pixels)
    except ImageError as exc:
        raise ApiError(413 if "exceeds the limit" in str(exc) else 400, str(exc)) from None
    size = fitted_size(*header, options.max_side)
    if min(size) < MIN_SIDE:
        raise ApiError(422, f"image: {size[0]}x{size[1]} is too small (min {MIN_SIDE} px a side)")
    try:
        route, scale = Pipeline(runner, style_scale=options.style_scale).plan(size[1], size[0])
    except ImageError as exc:  # too large for a graph that cannot tile
        raise ApiError(413, f"image: {exc}; send max_side or a smaller image") from None
    except CinStyleError as exc:
        raise ApiError(422, f"image: {exc}") from None
    return header, size, route, scale


def _decode(data: bytes, options: StylizeOptions, settings: ApiSettings, route: str):
    """float32 for a batch, uint8 for an image that runs alone."""
    try:
        return decode_image(data, "image", settings.max_pixels, options.max_side, as_uint8=route != WHOLE)
    except ImageError as exc:
        raise ApiError(400, str(exc)) from None


def _encode(result: np.ndarray, options: StylizeOptions) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    kind = OUTPUT_FORMATS[options.format][0]
    extra = {"quality": options.quality} if kind in ("JPEG", "WEBP") else {}
    Image.fromarray(result).save(buffer, kind, **extra)
    return buffer.getvalue()


def app_from_environment():
    """The factory `--workers N` gives uvicorn: each worker process reads the settings
    that `cin-style api` put in the environment."""
    return create_app(ApiSettings.from_json(os.environ[SETTINGS_ENV]))
