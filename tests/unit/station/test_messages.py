"""Verdicts out: MQTT against a real mosquitto broker (stopped and restarted mid-run: nothing lost)
and a webhook that fails before it answers; both fed from the ledger."""

from __future__ import annotations

import http.server
import json
import threading
import time
import typing
from pathlib import Path

import pytest

from lwcnn.errors import ConfigError
from lwcnn.station.ledger import open_ledger
from lwcnn.station.messages import Deliverer, MqttSink, WebhookSink
from lwcnn.station.records import Recorder

SAMPLE = Path("samples/neu/crazing_2.jpg")


class Subscriber:
    """A persistent-session MQTT subscriber (QoS 1) that collects the payloads it receives."""

    def __init__(self, broker, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.received: list[dict] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber", clean_session=False
        )
        self.client.on_connect = lambda client, *_: client.subscribe(topic, qos=1)
        self.client.on_message = self._message
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        with self._lock:
            self.received.append(json.loads(message.payload))

    def ids(self) -> set[int]:
        with self._lock:
            return {m["id"] for m in self.received}

    def wait_for(self, count: int, timeout_s: float = 60.0) -> set[int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and len(self.ids()) < count:
            time.sleep(0.05)
        return self.ids()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _record(recorder: Recorder, inspector, count: int) -> list[int]:
    result = inspector.inspect(SAMPLE)
    return [recorder.record(result, f"{time.time_ns()}.jpg")["id"] for _ in range(count)]


def test_mqtt_delivers_every_result_at_qos1_through_a_broker_restart(tmp_path, mosquitto, neu_inspector):
    ledger = open_ledger(tmp_path / "r.db")
    recorder = Recorder(ledger, neu_inspector, "line1", "watch")
    subscriber = Subscriber(mosquitto, "lwcnn/line1/result")
    deliverer = Deliverer(ledger, MqttSink(mosquitto.url, "line1"), "line1")
    recorder.add_listener(deliverer.wake)
    try:
        first = _record(recorder, neu_inspector, 20)
        assert subscriber.wait_for(20) == set(first)
        mosquitto.stop()  # the broker goes down mid-run
        during = _record(recorder, neu_inspector, 20)
        time.sleep(1.0)
        assert {p["id"] for p in ledger.pending(deliverer.sink.name)} == set(during)  # waiting, not lost
        mosquitto.start()
        after = _record(recorder, neu_inspector, 5)
        assert subscriber.wait_for(45, timeout_s=90) == set(first + during + after)
        assert deliverer.flush(30) and ledger.pending(deliverer.sink.name) == []
        message = next(m for m in subscriber.received if m["id"] == during[0])
        api = neu_inspector.inspect(SAMPLE).to_dict()
        assert {k: message[k] for k in ("verdict", "score", "probabilities")} == {
            k: api[k] for k in ("verdict", "score", "probabilities")
        }
        assert message["station"] == "line1" and message["model"] == neu_inspector.model_name
    finally:
        deliverer.stop(flush_s=0)
        subscriber.close()
        ledger.close()


class _Hook(http.server.BaseHTTPRequestHandler):
    failures_left = 3
    bodies: typing.ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.failures_left > 0:
            _Hook.failures_left -= 1
            self.send_response(503)
            self.end_headers()
            return
        _Hook.bodies.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_webhook_that_fails_first_gets_every_result_in_order(tmp_path, neu_inspector):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ledger = open_ledger(tmp_path / "r.db")
    recorder = Recorder(ledger, neu_inspector, "line1", "serve")
    deliverer = Deliverer(ledger, WebhookSink(f"http://127.0.0.1:{server.server_port}/hook"), "line1")
    recorder.add_listener(deliverer.wake)
    try:
        ids = _record(recorder, neu_inspector, 6)
        assert deliverer.flush(60)
        assert [b["id"] for b in _Hook.bodies] == ids and _Hook.failures_left == 0
    finally:
        deliverer.stop(flush_s=0)
        server.shutdown()
        ledger.close()


def test_sink_urls_are_checked():
    pytest.importorskip("paho.mqtt")
    with pytest.raises(ConfigError, match="mqtt://host"):
        MqttSink("http://broker", "s")
    with pytest.raises(ConfigError, match="http:// or https://"):
        WebhookSink("ftp://x")
