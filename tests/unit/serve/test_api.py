"""The HTTP API: answers, the API key, and every kind of bad upload answered with a 4xx while the
service keeps serving."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lwcnn.runtime import Inspector
from lwcnn.serve import ServiceSettings, create_app
from tests.synthetic import exported


def png(size: tuple[int, int] = (200, 200), seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(60, 200, size, dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def neu_client():
    return TestClient(create_app(Inspector("neu", threads=1)), raise_server_exceptions=False)


def upload(client, data: bytes, name: str = "steel.png", query: str = "", **headers):
    return client.post(f"/v1/inspect{query}", files={"image": (name, data, "image/png")}, headers=headers)


def test_inspect_health_model_and_schema(neu_client):
    answer = upload(neu_client, png())
    assert answer.status_code == 200
    body = answer.json()
    reference = Inspector("neu", threads=1).inspect(np.asarray(Image.open(io.BytesIO(png()))))
    assert (
        body["verdict"] == body["class"] == reference.verdict and abs(body["score"] - reference.score) < 1e-5
    )
    assert body["model"] == "lw@0.35 (neu)" and body["image"] == "steel.png" and body["server_ms"] > 0
    assert neu_client.get("/v1/health").json()["status"] == "ok"
    model = neu_client.get("/v1/model").json()
    assert model["task"] == "cls" and len(model["classes"]) == 6 and model["engine"] == "onnxruntime"
    schema = neu_client.get("/openapi.json").json()
    assert {"/v1/inspect", "/v1/health", "/v1/model"} <= set(schema["paths"])
    page = neu_client.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
    assert neu_client.get("/static/app.js").status_code == 200


def test_overlay_and_mask_for_a_segmenter(tmp_path):
    path, _ = exported(tmp_path, "seg", 1, (64, 64), threshold=0.5)
    client = TestClient(create_app(Inspector(path, threads=1)))
    body = upload(client, png((90, 70)), query="?mask=1&overlay=1").json()
    assert {"area", "boxes", "mask_png", "overlay_png"} <= set(body)
    mask = Image.open(io.BytesIO(base64.b64decode(body["mask_png"])))
    assert mask.size == (70, 90) and (np.asarray(mask) > 0).sum() == body["area"]
    overlay = Image.open(io.BytesIO(base64.b64decode(body["overlay_png"])))
    assert overlay.mode == "RGB" and overlay.width > 2 * 70


def truncated_png() -> bytes:
    return png()[:100]


def huge_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # 400 M pixels, a few KB compressed
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda: b"", 400, "empty"),
        (truncated_png, 400, "truncated"),
        (huge_png, 413, "pixels"),
        (lambda: b"just some text, named .png\n" * 10, 415, "not a PNG"),
        (lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * (50 * 2**20), 413, "bytes"),
    ],
    ids=["empty", "truncated", "20000x20000", "text-named-png", "50MB"],
)
def test_bad_uploads_get_4xx_and_the_service_keeps_serving(neu_client, make, status, words):
    answer = upload(neu_client, make())
    assert answer.status_code == status
    assert words in answer.json()["error"] and "Traceback" not in answer.text
    assert upload(neu_client, png()).status_code == 200  # still serving


def test_requests_without_a_file_field_or_body(neu_client):
    assert neu_client.post("/v1/inspect").status_code == 422
    assert (
        neu_client.post("/v1/inspect", content=png(), headers={"Content-Type": "image/png"}).status_code
        == 422
    )
    assert neu_client.get("/v1/nothing").status_code == 404


def test_api_key(monkeypatch):
    client = TestClient(create_app(Inspector("neu", threads=1), ServiceSettings(api_key="s3cret")))
    assert upload(client, png()).status_code == 401
    wrong = upload(client, png(), **{"X-API-Key": "guess"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "missing or wrong API key"
    assert client.get("/v1/model").status_code == 401
    assert upload(client, png(), **{"X-API-Key": "s3cret"}).status_code == 200
    assert upload(client, png(), Authorization="Bearer s3cret").status_code == 200
    assert client.get("/v1/health").status_code == 200  # liveness needs no key
    assert client.get("/").status_code == 200  # the page asks for the key itself


def test_an_unexpected_failure_is_a_500_without_a_trace(monkeypatch):
    inspector = Inspector("neu", threads=1)
    client = TestClient(create_app(inspector), raise_server_exceptions=False)
    monkeypatch.setattr(inspector, "inspect", lambda *a, **k: 1 / 0)
    answer = upload(client, png())
    assert answer.status_code == 500 and answer.json() == {"error": "internal error"}
    monkeypatch.undo()
    assert upload(client, png()).status_code == 200


def test_serve_command_takes_the_key_from_the_environment(monkeypatch, capsys):
    import uvicorn

    from lwcnn.cli import main

    served = {}
    monkeypatch.setattr(
        uvicorn, "run", lambda app, host, port, **kw: served.update(app=app, host=host, port=port)
    )
    monkeypatch.setenv("LWCNN_API_KEY", "from-env")
    assert main(["serve", "--port", "8123"]) == 0
    assert served["host"] == "127.0.0.1" and served["port"] == 8123  # this machine only, by default
    assert "an API key is required" in capsys.readouterr().out
    client = TestClient(served["app"])
    assert upload(client, png()).status_code == 401
    assert upload(client, png(), **{"X-API-Key": "from-env"}).status_code == 200
    assert main(["serve", "--port", "0"]) == 2  # a bad port is a one-line error
