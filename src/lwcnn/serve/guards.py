"""What stands between a connection and the inspection: plain ASGI middleware, each answering with
the service's ``{"error": ...}`` JSON before any request body is read, where it can.

From the outside in: :class:`HostCheck` (DNS rebinding: only the host names the service answers
to), :class:`KeyCheck` (the API key, from the headers alone: a keyless upload is refused before
its body is read), :class:`Admission` (at most so many inspections at once or waiting, then 503),
:class:`BodyLimit` (the body's size and the time it may take to arrive).
"""

from __future__ import annotations

import hmac
import ipaddress
import json

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
#: Paths that never need the key (liveness checks from a load balancer).
OPEN_PATHS = frozenset({"/v1/health"})
#: Paths whose requests do the heavy work (admission counts them).
INSPECT_PATHS = frozenset({"/v1/inspect"})


async def send_error(send: Send, status: int, message: str, headers: dict[str, str] | None = None) -> None:
    """Answer ``{"error": message}`` with ``status`` (and close the connection: the request's body,
    if any, is not read)."""
    body = json.dumps({"error": message}, separators=(",", ":")).encode()  # as JSONResponse writes it
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def host_of(scope: Scope) -> str:
    """The Host header's name, lower-case, without the port (``[::1]:8000`` -> ``::1``)."""
    for name, value in scope.get("headers") or []:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[1 : host.find("]")] if "]" in host else host
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return ""


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class HostCheck:
    """Refuse requests whose Host header is a name not among ``allowed`` (400): a web page on
    another origin cannot reach the service by rebinding its DNS name to this machine. An address
    (``192.168.1.20``) is always accepted: a browser sends one only when its user typed it, and
    rebinding needs a name. ``allowed`` None: every host."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            host = host_of(scope)
            if host not in self.allowed and not is_ip_literal(host):
                shown = host or "(none)"
                message = f"host {shown!r} is not one this service answers to"
                await send_error(send, 400, f"{message}; start it with --allowed-hosts {shown}")
                return
        await self.app(scope, receive, send)


class KeyCheck:
    """With an API key set, every ``/v1`` request but :data:`OPEN_PATHS` needs it in the
    ``X-API-Key`` header or as ``Authorization: Bearer KEY``; checked from the headers, before the
    body is read (401)."""

    def __init__(self, app: ASGIApp, key: str | None) -> None:
        self.app = app
        self.key = key.encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.key is not None
            and scope["path"].startswith("/v1/")
            and scope["path"] not in OPEN_PATHS
            and not hmac.compare_digest(self._given(scope), self.key)
        ):
            await send_error(send, 401, "missing or wrong API key", {"WWW-Authenticate": API_KEY_HEADER})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _given(scope: Scope) -> bytes:
        headers = dict(scope.get("headers") or [])
        given = headers.get(API_KEY_HEADER.lower().encode(), b"")
        bearer = headers.get(b"authorization", b"")
        if not given and bearer.lower().startswith(b"bearer "):
            given = bearer[7:].strip()
        return given


class Admission:
    """At most ``capacity`` inspection requests in the service at once (being inspected or waiting
    for a worker); one more is answered 503 with ``Retry-After`` at once, before its body is read,
    so a burst queues up to a bound and then fails fast instead of stalling everyone."""

    def __init__(self, app: ASGIApp, capacity: int, paths: frozenset[str] = INSPECT_PATHS) -> None:
        self.app = app
        self.capacity = capacity
        self.paths = paths
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.capacity:
            await send_error(
                send, 503, f"busy: {self.in_flight} images in hand; try again shortly", {"Retry-After": "1"}
            )
            return
        self.in_flight += 1  # one event loop: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class BodyLimit:
    """Refuse a request body larger than ``limit`` bytes with 413, from its Content-Length when it
    has one, else while it streams in (buffered up to the limit, then handed to the application
    unchanged); and one that takes longer than ``timeout_s`` to arrive with 408 (a client that
    sends a header and then trickles or stops would otherwise hold its connection for ever)."""

    def __init__(self, app: ASGIApp, limit: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = f"request body over {self.limit} bytes"
        if length is not None and length.isdigit() and int(length) > self.limit:
            await send_error(send, 413, too_large)
            return
        chunks, size = [], 0
        with anyio.move_on_after(self.timeout_s) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body = message.get("body", b"")
                size += len(body)
                if size > self.limit:
                    await send_error(send, 413, too_large)
                    return
                chunks.append(body)
                if not message.get("more_body", False):
                    break
        if deadline.cancelled_caught:
            await send_error(send, 408, f"request body not received within {self.timeout_s:g} s")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
