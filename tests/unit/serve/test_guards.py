"""The service under hostile and careless clients, on a real server on loopback: the key before the
body, timeouts for stalled headers and bodies, a bounded queue with 503, a lane for huge images,
host names, and the documented error shape everywhere."""

from __future__ import annotations

import base64
import io
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

from lwcnn.cli import main
from lwcnn.runtime import Inspector
from lwcnn.serve import ServiceSettings, create_app
from lwcnn.serve.server import bound_host_names, uvicorn_options
from tests.services import serving

from .test_api import png, upload


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    return Inspector("neu", threads=1)


@contextmanager
def served(inspector: Inspector, settings: ServiceSettings) -> Iterator[int]:
    """A real uvicorn server (the CLI's options) on a free loopback port, in a thread."""
    with serving(create_app(inspector, settings), **uvicorn_options(settings)) as port:
        yield port


def raw(port: int, data: bytes, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    return s


def read_answer(s: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "testboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_a_keyless_upload_is_refused_before_its_body_is_read(inspector):
    with served(inspector, ServiceSettings(api_key="s3cret")) as port:
        # 19 MB announced, not one byte of it sent: the answer must come from the headers alone
        s = raw(port, b"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                      b"boundary=x\r\nContent-Length: 19922944\r\n\r\n")  # fmt: skip
        started = time.monotonic()
        answer = read_answer(s)
        s.close()
        assert answer.startswith(b"HTTP/1.1 401") and b'"error":"missing or wrong API key"' in answer
        assert time.monotonic() - started < 2


def test_a_stalled_header_is_closed_after_the_header_timeout(inspector):
    with served(inspector, ServiceSettings(header_timeout_s=0.5)) as port:
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)  # says nothing at all
        half = raw(port, b"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
        started = time.monotonic()
        assert read_answer(half) == b"" and read_answer(idle) == b""  # closed by the server
        assert time.monotonic() - started < 3
        body, content_type = multipart(png())
        head = (f"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
        good = raw(port, head.encode() + body)
        assert read_answer(good).startswith(b"HTTP/1.1 200")  # a whole request is not cut off


def test_a_body_that_never_ends_gets_408(inspector):
    with served(inspector, ServiceSettings(body_timeout_s=0.5)) as port:
        s = raw(port, b"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                      b"boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n")  # fmt: skip
        answer = read_answer(s)
        assert answer.startswith(b"HTTP/1.1 408") and b"not received within 0.5 s" in answer


def test_connections_over_the_limit_get_503(inspector):
    with served(inspector, ServiceSettings(max_connections=3, header_timeout_s=5)) as port:
        held = [raw(port, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n") for _ in range(3)]
        time.sleep(0.2)
        s = raw(port, b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert read_answer(s).startswith(b"HTTP/1.1 503")
        for h in held:
            h.close()


def test_a_full_queue_answers_503_at_once_and_the_service_recovers(inspector, monkeypatch):
    original = inspector.inspect

    def slow(*args, **kwargs):
        time.sleep(0.6)
        return original(*args, **kwargs)

    monkeypatch.setattr(inspector, "inspect", slow)
    with served(inspector, ServiceSettings(workers=1, max_queue=1)) as port:
        import httpx

        def post() -> httpx.Response:
            return httpx.post(
                f"http://127.0.0.1:{port}/v1/inspect", files={"image": ("p.png", png())}, timeout=30
            )

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: post(), range(4)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 200, 503, 503]
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["Retry-After"] == "1" and "busy" in busy.json()["error"]
        assert post().status_code == 200


def test_huge_images_wait_in_their_own_lane_and_leave_a_worker_free(inspector, monkeypatch):
    original = inspector.inspect
    spans: dict[str, tuple[float, float]] = {}

    def timed(pixels, name=None):
        started = time.monotonic()
        if pixels.shape[0] > 1000:
            time.sleep(1.0)
        result = original(pixels, name)
        spans[f"{name}-{started}"] = (started, time.monotonic())
        return result

    monkeypatch.setattr(inspector, "inspect", timed)
    large = io.BytesIO()
    Image.new("L", (2000, 2000), 100).save(large, format="PNG")
    with served(inspector, ServiceSettings(workers=2, large_pixels=1_000_000)) as port:
        import httpx

        def post(data: bytes) -> float:
            started = time.monotonic()
            answer = httpx.post(
                f"http://127.0.0.1:{port}/v1/inspect", files={"image": ("p.png", data)}, timeout=60
            )
            assert answer.status_code == 200
            return time.monotonic() - started

        with ThreadPoolExecutor(4) as pool:
            bombs = [pool.submit(post, large.getvalue()) for _ in range(3)]
            time.sleep(0.3)
            small = pool.submit(post, png()).result()
            assert small < 0.9  # not behind the 3 s of huge images: they hold one worker, not both
            assert sorted(b.result() for b in bombs)[-1] > 2.5  # the huge ones went one at a time


def test_host_names_outside_the_allowed_set_are_refused(inspector):
    client = TestClient(create_app(inspector, ServiceSettings(allowed_hosts=frozenset({"127.0.0.1"}))))
    answer = client.get("/v1/health", headers={"Host": "rebound.example:8000"})
    assert answer.status_code == 400 and "rebound.example" in answer.json()["error"]
    assert client.get("/v1/health", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    for address in ("192.168.1.20:8000", "[fe80::1]:8000"):  # typed by a user, never a rebound name
        assert client.get("/v1/health", headers={"Host": address}).status_code == 200
    assert {"localhost", "127.0.0.1", "::1"} <= bound_host_names("127.0.0.1")
    assert "rebound.example" not in bound_host_names("0.0.0.0")


def test_the_serve_command_limits_hosts_without_a_key_and_refuses_an_empty_key(monkeypatch, capsys):
    served_apps = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: served_apps.update(app=app, kw=kw))
    monkeypatch.delenv("LWCNN_API_KEY", raising=False)
    assert main(["serve", "--port", "8123"]) == 0
    client = TestClient(served_apps["app"], base_url="http://evil.example")
    assert client.get("/v1/health").status_code == 400  # DNS rebinding: not our name
    assert (
        TestClient(served_apps["app"], base_url="http://localhost:8123").get("/v1/health").status_code == 200
    )
    assert served_apps["kw"]["limit_concurrency"] == 64 and served_apps["kw"]["timeout_keep_alive"] == 5.0
    assert main(["serve", "--allowed-hosts", "*"]) == 0
    assert TestClient(served_apps["app"], base_url="http://evil.example").get("/v1/health").status_code == 200
    capsys.readouterr()
    assert main(["serve", "--api-key", ""]) == 2
    assert "--api-key is empty" in capsys.readouterr().err
    monkeypatch.setenv("LWCNN_API_KEY", "")
    assert main(["serve"]) == 2
    assert "LWCNN_API_KEY is set but empty" in capsys.readouterr().err


def test_every_error_has_the_documented_shape_and_head_works(inspector):
    client = TestClient(create_app(inspector))
    for answer, status in (
        (client.get("/v1/nothing"), 404),
        (client.delete("/v1/inspect"), 405),
        (client.post("/v1/inspect"), 422),
        (client.put("/v1/health"), 405),
    ):
        assert answer.status_code == status and set(answer.json()) == {"error"}, answer.text
    for path in ("/v1/health", "/v1/model", "/"):
        answer = client.head(path)
        assert answer.status_code == 200 and answer.content == b""
    assert "head" not in client.get("/openapi.json").json()["paths"]["/v1/health"]


def test_a_huge_upload_with_mask_and_overlay_gets_a_bounded_overlay():
    segmenter = Inspector("kolektorsdd", threads=1)
    client = TestClient(create_app(segmenter))
    data = io.BytesIO()
    Image.new("L", (3000, 5000), 128).save(data, format="PNG")
    answer = client.post("/v1/inspect?mask=1&overlay=1", files={"image": ("big.png", data.getvalue())})
    assert answer.status_code == 200
    body = answer.json()
    with Image.open(io.BytesIO(base64.b64decode(body["overlay_png"]))) as overlay:
        assert max(overlay.size) <= 2 * 2048 + 4
    with Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))) as mask:
        assert mask.size == (3000, 5000)  # the mask keeps the image's own size
    assert np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"])))).shape == (5000, 3000)


def test_the_existing_key_check_still_covers_the_model_route(inspector):
    client = TestClient(create_app(inspector, ServiceSettings(api_key="k")))
    assert client.get("/v1/model").status_code == 401
    assert upload(client, png(), **{"X-API-Key": "k"}).status_code == 200
