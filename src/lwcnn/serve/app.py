"""``POST /v1/inspect``, ``GET /v1/health``, ``GET /v1/model`` and the web page at ``/``.

Every request is answered: a bad upload or path gets a 4xx JSON ``{"error": "..."}``, anything
unexpected a 500 without a stack trace. Inference runs in a bounded worker pool of threads (ONNX
Runtime releases the GIL), so the event loop keeps serving while images are inspected; images
over :attr:`ServiceSettings.large_pixels` take one lane of their own, so a few huge uploads cannot
occupy every worker. The checks before the body is read live in :mod:`lwcnn.serve.guards`.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from lwcnn import __version__
from lwcnn.data.images import ImageReadError, TooManyPixels, decode_image
from lwcnn.limits import DEFAULT_MAX_PIXELS
from lwcnn.runtime import Inspector
from lwcnn.runtime.overlay import overlay_image, png_bytes
from lwcnn.serve.guards import API_KEY_HEADER, INSPECT_PATHS, Admission, BodyLimit, HostCheck, KeyCheck
from lwcnn.station.outputs import StationOutputs

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("lwcnn.serve")
__all__ = ["API_KEY_HEADER", "APIError", "ServiceSettings", "create_app", "sniff_format"]

#: File signatures of the image formats the service accepts: the content decides, not the name.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
#: The suffix an upload is kept under, by its format.
UPLOAD_SUFFIXES = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "WebP": ".webp"}


def sniff_format(data: bytes) -> str | None:
    """The image format named by ``data``'s first bytes (PNG, JPEG, BMP, TIFF, WebP), or None."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return None


@dataclass(frozen=True)
class ServiceSettings:
    """Limits and options of the service (docs/security.md says what each promises).

    ``max_body_bytes``: largest request body; ``max_pixels``: largest image (width x height),
    checked from the header before decoding; ``workers``: images inspected at once;
    ``max_queue``: inspection requests that may wait for a worker (one more gets 503);
    ``large_pixels``: images above this many pixels are inspected one at a time, whatever the
    workers; ``api_key``: when set, every ``/v1`` request but ``/v1/health`` must carry it in the
    ``X-API-Key`` header (or ``Authorization: Bearer KEY``), checked before the body is read;
    ``allowed_hosts``: Host header names answered (None: any); ``body_timeout_s``: time a request
    body may take to arrive (408 after); ``header_timeout_s``, ``keep_alive_s`` and
    ``max_connections``: the HTTP server's (:mod:`lwcnn.serve.server`)."""

    max_body_bytes: int = 20 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 2
    max_queue: int = 8
    large_pixels: int = 4_000_000
    api_key: str | None = None
    allowed_hosts: frozenset[str] | None = None
    body_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    max_connections: int = 64


class APIError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_app(
    inspector: Inspector, settings: ServiceSettings | None = None, outputs: StationOutputs | None = None
) -> FastAPI:
    """The FastAPI application serving ``inspector``. With ``outputs`` (``lwcnn serve --db``), every
    inspection is recorded (and sent to its sinks), uploads are kept for review, and the dashboard
    (:mod:`lwcnn.serve.dashboard`) reads the database."""
    settings = settings or ServiceSettings()
    limiter = anyio.CapacityLimiter(max(1, settings.workers))
    large_lane = anyio.CapacityLimiter(1)
    app = FastAPI(
        title="lwcnn inspection service",
        version=__version__,
        description="Surface defect inspection with compact CNNs on the CPU.",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: the line is often offline
        redoc_url=None,
    )

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> JSONResponse:
        headers = {"WWW-Authenticate": API_KEY_HEADER} if error.status == 401 else None
        return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # 404, 405...: the documented {"error": ...} rather than FastAPI's {"detail": ...}
        message = error.detail if isinstance(error.detail, str) else "bad request"
        if error.status_code == 404:
            message = f"no such path: {request.url.path}"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        if request.url.path in INSPECT_PATHS:
            message = "expected a multipart/form-data upload with the image in the field 'image'"
        else:
            first = error.errors()[0] if error.errors() else {}
            where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
            message = f"{where}: {first.get('msg', 'invalid')}"
        return JSONResponse({"error": message}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)  # the trace stays in the log
        return JSONResponse({"error": "internal error"}, status_code=500)

    @app.get("/v1/health", summary="liveness: the service is up")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/model", summary="the model being served")
    async def model(request: Request) -> dict[str, Any]:
        meta = inspector.metadata
        return {
            "name": inspector.card.model_name,
            "weights": inspector.weights,
            "task": inspector.task,
            "classes": inspector.classes,
            "channels": inspector.preprocessing.channels,
            "working_size": list(inspector.preprocessing.size),
            "threshold": inspector.threshold if inspector.task == "seg" else None,
            "min_area": inspector.min_area if inspector.task == "seg" else None,
            "engine": inspector.backend.name,
            "precision": inspector.backend.precision,
            "engine_choice": None if inspector.engine_choice is None else inspector.engine_choice.to_dict(),
            "metrics": meta.get("metrics"),
            "api_key_required": settings.api_key is not None,
            "max_body_bytes": settings.max_body_bytes,
            "max_pixels": settings.max_pixels,
            "workers": settings.workers,
            "max_queue": settings.max_queue,
        }

    @app.post("/v1/inspect", summary="inspect one uploaded image")
    async def inspect(
        request: Request,
        image: Annotated[UploadFile, File(description="the image file (PNG, JPEG, BMP, TIFF or WebP)")],
        mask: Annotated[bool, Query(description="add the defect mask as a base64 PNG (segmenters)")] = False,
        overlay: Annotated[bool, Query(description="add the overlay picture as a base64 PNG")] = False,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        data = await image.read()
        name = image.filename or "upload"
        if not data:
            raise APIError(400, f"{name}: empty file")
        if sniff_format(data) is None:
            raise APIError(415, f"{name}: not a PNG, JPEG, BMP, TIFF or WebP image (by its content)")

        def work() -> dict[str, Any]:
            return _inspect_bytes(inspector, data, name, settings.max_pixels, mask, overlay, outputs)

        if (header_pixels(data) or 0) > settings.large_pixels:
            async with large_lane:  # waits without holding a worker
                result = await anyio.to_thread.run_sync(work, limiter=limiter)
        else:
            result = await anyio.to_thread.run_sync(work, limiter=limiter)
        result.setdefault("model", inspector.model_name)
        result["server_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return result

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    for path, endpoint in (("/v1/health", health), ("/v1/model", model), ("/", page)):
        # HEAD answers as GET does, without the body (uvicorn drops it); not a second API operation
        app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False)

    if outputs is not None:
        from lwcnn.serve.dashboard import add_dashboard

        add_dashboard(app, outputs.ledger, STATIC_DIR, inspector)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # the last added runs first: host, key, admission, then the body
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, timeout_s=settings.body_timeout_s)
    app.add_middleware(Admission, capacity=max(1, settings.workers) + max(0, settings.max_queue))
    app.add_middleware(KeyCheck, key=settings.api_key)
    app.add_middleware(HostCheck, allowed=settings.allowed_hosts)
    return app


def header_pixels(data: bytes) -> int | None:
    """Width x height from an image's header (nothing is decoded), or None if it cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.width * image.height
    except Exception:  # decoding reports the problem properly later
        return None


def _inspect_bytes(
    inspector: Inspector,
    data: bytes,
    name: str,
    max_pixels: int,
    with_mask: bool,
    with_overlay: bool,
    outputs: StationOutputs | None = None,
) -> dict[str, Any]:
    try:
        pixels = decode_image(data, inspector.preprocessing.channels, name, max_pixels)
    except TooManyPixels as error:
        raise APIError(413, str(error)) from None
    except ImageReadError as error:
        raise APIError(400, str(error)) from None
    started = time.perf_counter()
    result = inspector.inspect(pixels, name)
    if outputs is not None:  # recorded, with the upload kept (it exists nowhere else) for reviews
        from lwcnn.station.records import file_digest

        result.pixels = pixels
        suffix = UPLOAD_SUFFIXES.get(sniff_format(data) or "", ".img")
        total_ms = (time.perf_counter() - started) * 1000.0
        body = outputs.recorder.record(result, name, file_digest(data), None, None, total_ms, (data, suffix))
        result.pixels = None
        assert body is not None  # uploads have no ledger key: always recorded
    else:
        body = result.to_dict()
    if with_mask and result.mask is not None:
        body["mask_png"] = base64.b64encode(png_bytes(result.mask)).decode()
    if with_overlay:
        body["overlay_png"] = base64.b64encode(png_bytes(overlay_image(pixels, result))).decode()
    return body
