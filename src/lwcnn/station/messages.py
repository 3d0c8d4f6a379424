"""Verdicts out as messages: MQTT (QoS 1) and webhooks (HTTP POST), each fed from the ledger.

The ledger is the queue: a result is delivered to a sink when the sink acknowledged it (the
broker's PUBACK; a webhook's 2xx), and only then marked so (table ``deliveries``). A broker or
endpoint that is down loses nothing: the results wait in the database, bounded by its disk, not by
memory (at most :data:`BATCH` are read at a time), and go out in order once it is back. Delivery is
at least once: a message whose acknowledgement was lost is sent again, and its ``id`` (and
``station``) lets a consumer drop the repeat.

Topic: ``{prefix}/{station}/result`` (default prefix ``lwcnn``); payload: the JSON that
``POST /v1/inspect`` answers, with ``id``, ``station``, ``time`` (ISO 8601, UTC), ``sha256``,
``engine``, ``precision`` and ``model_commit``.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, Protocol

from lwcnn.errors import ConfigError
from lwcnn.station.ledger import Ledger

log = logging.getLogger("lwcnn.station")
#: Results read from the ledger per delivery round.
BATCH = 100
#: Longest wait between two tries after a failure (seconds); it doubles from one second.
MAX_BACKOFF_S = 10.0


class Sink(Protocol):
    """Where results go. ``send`` delivers payloads in order and returns how many were acknowledged
    (the first ones); it raises nothing for a sink that is down, it returns 0."""

    name: str

    def send(self, payloads: list[tuple[int, str]]) -> int: ...

    def close(self) -> None: ...


class MqttSink:
    """Publishes each result to an MQTT broker at QoS 1. ``url``: ``mqtt://[user:password@]host[:port]``
    (``mqtts://`` for TLS); the client reconnects by itself."""

    def __init__(self, url: str, station: str, prefix: str = "lwcnn", ack_timeout_s: float = 10.0) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise ConfigError("--mqtt needs paho-mqtt: pip install 'lwcnn[line]'") from None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"--mqtt takes mqtt://host[:port] or mqtts://host[:port], got {url!r}")
        self.name = f"mqtt:{parts.hostname}:{parts.port or 1883}/{prefix}"
        self.topic = f"{prefix}/{station}/result"
        self.ack_timeout_s = ack_timeout_s
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"lwcnn-{station}-{uuid.uuid4().hex[:8]}"
        )
        if parts.username:
            client.username_pw_set(
                urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
            )
        if parts.scheme == "mqtts":
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=int(MAX_BACKOFF_S))
        client.max_inflight_messages_set(BATCH)
        client.connect_async(parts.hostname, parts.port or (8883 if parts.scheme == "mqtts" else 1883))
        client.loop_start()
        self._client = client

    def send(self, payloads: list[tuple[int, str]]) -> int:
        if not self._client.is_connected():
            return 0
        infos = [self._client.publish(self.topic, payload, qos=1) for _, payload in payloads]
        done = 0
        deadline = time.monotonic() + self.ack_timeout_s
        for info in infos:  # acknowledged in order; stop at the first that is not
            try:
                info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError):  # lost the connection while waiting
                break
            if not info.is_published():
                break
            done += 1
        return done

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class WebhookSink:
    """POSTs each result's JSON to a URL (``http://`` or ``https://``); a 2xx answer delivers it."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"--webhook takes an http:// or https:// URL, got {url!r}")
        self.name = f"webhook:{url}"
        self.url = url
        self.timeout_s = timeout_s

    def send(self, payloads: list[tuple[int, str]]) -> int:
        done = 0
        for _, payload in payloads:
            request = urllib.request.Request(
                self.url, data=payload.encode(), method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                    if not 200 <= answer.status < 300:
                        break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
                log.warning("webhook %s: %s; will retry", self.url, getattr(error, "reason", error))
                break
            done += 1
        return done

    def close(self) -> None:
        pass


class Deliverer:
    """A thread that drains one station's results from the ledger into one sink, in order.
    ``wake()`` (after a new result) makes it look at once; otherwise it looks every second."""

    def __init__(self, ledger: Ledger, sink: Sink, station: str | None) -> None:
        self.ledger, self.sink, self.station = ledger, sink, station
        self.ledger.start_sink(sink.name)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.delivered = 0
        self._thread = threading.Thread(target=self._run, name=f"deliver {sink.name}", daemon=True)
        self._thread.start()

    def wake(self, _result_id: int | None = None) -> None:
        self._wake.set()

    def _round(self) -> tuple[int, int]:
        """One batch: (pending, delivered)."""
        pending = self.ledger.pending(self.sink.name, self.station, limit=BATCH)
        if not pending:
            return 0, 0
        done = self.sink.send([(p["id"], p["payload"]) for p in pending])
        if done:
            self.ledger.delivered(self.sink.name, [p["id"] for p in pending[:done]])
            self.delivered += done
        return len(pending), done

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                pending, done = self._round()
            except Exception:  # a database hiccup must not end the deliveries
                log.exception("delivering to %s", self.sink.name)
                pending, done = 1, 0
            if pending and done < pending:
                self._stop.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            backoff = 1.0
            if done == BATCH:
                continue  # more waiting
            self._wake.wait(1.0)
            self._wake.clear()

    def flush(self, timeout_s: float) -> bool:
        """Wait until nothing is pending (True) or ``timeout_s`` passed (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.ledger.pending(self.sink.name, self.station, limit=1):
                return True
            self.wake()
            time.sleep(0.1)
        return False

    def stop(self, flush_s: float = 5.0) -> None:
        """Deliver what is pending (up to ``flush_s``), then stop; what is left stays in the ledger."""
        if flush_s > 0:
            self.flush(flush_s)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self.sink.close()


def open_sinks(mqtt: str | None, webhook: str | None, station: str, prefix: str = "lwcnn") -> list[Any]:
    """The sinks named by ``--mqtt`` and ``--webhook``."""
    sinks: list[Any] = []
    if mqtt:
        sinks.append(MqttSink(mqtt, station, prefix))
    if webhook:
        sinks.append(WebhookSink(webhook))
    return sinks
