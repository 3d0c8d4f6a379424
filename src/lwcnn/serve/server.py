"""Running the service: uvicorn on h11 with the timeouts and limits that the HTTP server itself
must enforce (a client that never finishes its request header, too many open connections), and
the host names a service bound to an address answers to."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-header timeout: a connection that has not sent a whole
    request header within :attr:`header_timeout_s` of connecting (or of the previous response)
    is closed. uvicorn has none, so half-sent headers held connections open for ever."""

    header_timeout_s = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_header():
            self._arm_header_timer()
        super().data_received(data)
        if not self._waiting_for_header():  # a request has started: its body has its own deadline
            self._disarm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _waiting_for_header(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._waiting_for_header() and not self.transport.is_closing():
            self.transport.close()


def protocol_with_header_timeout(seconds: float) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` class with its own header timeout (uvicorn takes a class)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout_s": float(seconds)})


def bound_host_names(host: str) -> frozenset[str]:
    """The host names a service bound to ``host`` is reached by without a DNS name of someone
    else's: the address itself, and for loopback or every-interface binds the loopback names, this
    machine's name and its addresses."""
    names = {host.lower().strip("[]")}
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a host name: it, and what it resolves to
        address = None
    if address is None or address.is_loopback or address.is_unspecified:
        names |= LOOPBACK_NAMES
    if address is None or address.is_unspecified:
        hostname = socket.gethostname().lower()
        names |= {hostname, socket.getfqdn().lower()}
        try:
            names |= {info[4][0] for info in socket.getaddrinfo(hostname, None)}
        except OSError:
            pass
    return frozenset(names)


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """The options :func:`uvicorn.run` gets for ``settings`` (a :class:`~lwcnn.serve.ServiceSettings`)."""
    return {
        "http": protocol_with_header_timeout(settings.header_timeout_s),
        "timeout_keep_alive": settings.keep_alive_s,
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": 16 * 1024,  # a request header larger than this is refused
    }
