"""``POST /v1/inspect``, ``GET /v1/health``, ``GET /v1/model`` and the web page at ``/``.

Every request is answered: a bad upload gets a 4xx JSON ``{"error": "..."}``, anything unexpected a
500 without a stack trace. Inference runs in a bounded worker pool of threads (ONNX Runtime releases
the GIL), so the event loop keeps serving while images are inspected.
"""

from __future__ import annotations

import base64
import hmac
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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lwcnn import __version__
from lwcnn.data.images import ImageReadError, TooManyPixels, decode_image
from lwcnn.runtime import Inspector
from lwcnn.runtime.overlay import overlay_image, png_bytes

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_KEY_HEADER = "X-API-Key"
log = logging.getLogger("lwcnn.serve")

#: File signatures of the image formats the service accepts: the content decides, not the name.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


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
    """Limits and options of the service. ``max_body_bytes``: largest request body; ``max_pixels``:
    largest image (width x height), checked from the header before decoding; ``workers``: images
    inspected at once; ``api_key``: when set, every ``/v1`` request but ``/v1/health`` must carry it
    in the ``X-API-Key`` header (or ``Authorization: Bearer KEY``)."""

    max_body_bytes: int = 20 * 2**20
    max_pixels: int = 40_000_000
    workers: int = 2
    api_key: str | None = None


class APIError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BodyLimit:
    """ASGI middleware: refuses a request body larger than ``limit`` bytes with 413, from its
    Content-Length when it has one, else while it streams in (buffered up to the limit, then
    handed to the application unchanged)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = JSONResponse({"error": f"request body over {self.limit} bytes"}, status_code=413)
        if length is not None and length.isdigit() and int(length) > self.limit:
            await too_large(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def create_app(inspector: Inspector, settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI application serving ``inspector``."""
    settings = settings or ServiceSettings()
    limiter = anyio.CapacityLimiter(max(1, settings.workers))
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

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": "expected a multipart/form-data upload with the image in the field 'image'"},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)  # the trace stays in the log
        return JSONResponse({"error": "internal error"}, status_code=500)

    def check_key(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get(API_KEY_HEADER, "")
        bearer = request.headers.get("Authorization", "")
        if not given and bearer.lower().startswith("bearer "):
            given = bearer[7:].strip()
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise APIError(401, "missing or wrong API key")

    @app.get("/v1/health", summary="liveness: the service is up")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/v1/model", summary="the model being served")
    async def model(request: Request) -> dict[str, Any]:
        check_key(request)
        meta = inspector.metadata
        return {
            "name": meta["model"]["name"],
            "weights": inspector.weights,
            "task": inspector.task,
            "classes": inspector.classes,
            "channels": inspector.preprocessing.channels,
            "working_size": list(inspector.preprocessing.size),
            "threshold": inspector.threshold if inspector.task == "seg" else None,
            "min_area": inspector.min_area if inspector.task == "seg" else None,
            "engine": inspector.backend.name,
            "metrics": meta.get("metrics"),
            "api_key_required": settings.api_key is not None,
            "max_body_bytes": settings.max_body_bytes,
            "max_pixels": settings.max_pixels,
        }

    @app.post("/v1/inspect", summary="inspect one uploaded image")
    async def inspect(
        request: Request,
        image: Annotated[UploadFile, File(description="the image file (PNG, JPEG, BMP, TIFF or WebP)")],
        mask: Annotated[bool, Query(description="add the defect mask as a base64 PNG (segmenters)")] = False,
        overlay: Annotated[bool, Query(description="add the overlay picture as a base64 PNG")] = False,
    ) -> dict[str, Any]:
        check_key(request)
        started = time.perf_counter()
        data = await image.read()
        name = image.filename or "upload"
        if not data:
            raise APIError(400, f"{name}: empty file")
        if sniff_format(data) is None:
            raise APIError(415, f"{name}: not a PNG, JPEG, BMP, TIFF or WebP image (by its content)")
        result = await anyio.to_thread.run_sync(
            lambda: _inspect_bytes(inspector, data, name, settings.max_pixels, mask, overlay), limiter=limiter
        )
        result["model"] = inspector.model_name
        result["server_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return result

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app


def _inspect_bytes(
    inspector: Inspector, data: bytes, name: str, max_pixels: int, with_mask: bool, with_overlay: bool
) -> dict[str, Any]:
    try:
        pixels = decode_image(data, inspector.preprocessing.channels, name, max_pixels)
    except TooManyPixels as error:
        raise APIError(413, str(error)) from None
    except ImageReadError as error:
        raise APIError(400, str(error)) from None
    result = inspector.inspect(pixels, name)
    body = result.to_dict()
    if with_mask and result.mask is not None:
        body["mask_png"] = base64.b64encode(png_bytes(result.mask)).decode()
    if with_overlay:
        body["overlay_png"] = base64.b64encode(png_bytes(overlay_image(pixels, result))).decode()
    return body
