"""Bombs, floods and slow connections against `lwcnn inspect` and `lwcnn serve`, on loopback.

    python benchmarks/robustness.py [--src PATH] [--cases bomb,flood,slow] [--json]

``--src`` runs another checkout's package (its ``src`` folder on PYTHONPATH; default: the installed
one), so the same script measures the code before and after a change side by side. Every server
is started here on 127.0.0.1 with a free port and stopped at the end; every loop is bounded.

Cases (bundled models; the images are generated here):
- ``inspect``: ``lwcnn inspect`` on one 6000 x 6000 PNG (36 M pixels, a few dozen KB), with the
  NEU classifier and the KolektorSDD segmenter: wall time and the process's peak RSS.
- ``bomb``: ``lwcnn serve --weights kolektorsdd``; the same PNG posted with ``mask=1&overlay=1``:
  latency and the server's peak RSS (VmHWM); then four such posts at once and one good 500 x 1260
  image after them: the good request's latency and the answers the bombs got.
- ``flood``: a server with an API key; 8 clients each post a 19 MB body without the key, 4 rounds:
  the answers, the server's RSS and peak RSS, a good (keyed) request's latency during it.
- ``slow``: 9 connections that send half a request header and then nothing, 4 that send a header
  and a body that never ends: how many the server still holds open after 20 s and 40 s, and a good
  request's latency meanwhile.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

KEY = "benchmark-key"


def bomb_png(side: int = 6000) -> bytes:
    """A ``side`` x ``side`` gray PNG that compresses to a few dozen KB: flat with a few strokes."""
    image = Image.new("L", (side, side), 128)
    draw = ImageDraw.Draw(image)
    for i in range(12):
        draw.line((i * side // 12, 0, side - i * side // 12, side), fill=40 + 15 * i, width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def good_png() -> bytes:
    rng = np.random.default_rng(0)
    array = (110 + 20 * rng.standard_normal((1260, 500))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def environment(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def lwcnn(*args: str) -> list[str]:
    return [sys.executable, "-m", "lwcnn", *args]


def peak_rss_of_command(command: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit status) of a child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, process.returncode


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``lwcnn serve`` in a child process on a free loopback port."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            lwcnn("serve", "--port", str(self.port), *args),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request("GET", self.port, "/v1/health", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start")

    def rss(self) -> float:
        return memory_mb(self.process.pid, "VmRSS")

    def peak(self) -> float:
        return memory_mb(self.process.pid, "VmHWM")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def multipart(data: bytes, name: str = "part.png") -> tuple[bytes, str]:
    boundary = "lwcnnbenchmarkboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(
    method: str, port: int, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, float, bytes]:  # fmt: skip
    """(status, seconds, body) of one HTTP/1.1 request over a fresh connection."""
    import http.client

    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            connection.request(method, path, body=body or None, headers=headers or {})
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the body was sent whole: the answer may be there to read
        response = connection.getresponse()
        content = response.read()
        return response.status, time.perf_counter() - started, content
    finally:
        connection.close()


def post_image(port: int, data: bytes, query: str = "", key: str | None = None) -> tuple[int, float]:
    body, content_type = multipart(data)
    headers = {"Content-Type": content_type}
    if key:
        headers["X-API-Key"] = key
    try:
        status, seconds, _ = request("POST", port, f"/v1/inspect{query}", body, headers)
    except OSError:  # a refused or reset connection is an answer too
        return -1, float("nan")
    return status, seconds


def case_inspect(env: dict[str, str], tmp: Path) -> list[dict]:
    folder = tmp / "bomb"
    folder.mkdir(exist_ok=True)
    (folder / "bomb.png").write_bytes(bomb_png())
    rows = []
    for weights in ("neu", "kolektorsdd"):
        seconds, peak, status = peak_rss_of_command(
            lwcnn(
                "inspect",
                str(folder / "bomb.png"),
                "--weights",
                weights,
                "--out",
                str(tmp / f"out-{weights}"),
            ),
            env,
        )
        rows.append({"case": f"inspect 6000x6000 PNG, {weights}", "seconds": round(seconds, 2),
                     "peak_rss_mb": round(peak), "exit": status})  # fmt: skip
    return rows


def case_bomb(env: dict[str, str]) -> list[dict]:
    bomb, good = bomb_png(), good_png()
    server = Server(env, "--weights", "kolektorsdd")
    try:
        base = server.rss()
        status, seconds = post_image(server.port, bomb, "?mask=1&overlay=1")
        rows = [{"case": "serve: one 6000x6000 PNG, mask+overlay", "status": status,
                 "seconds": round(seconds, 2), "rss_before_mb": round(base),
                 "peak_rss_mb": round(server.peak())}]  # fmt: skip
        with ThreadPoolExecutor(5) as pool:
            bombs = [pool.submit(post_image, server.port, bomb, "?mask=1&overlay=1") for _ in range(4)]
            time.sleep(0.5)  # the bombs arrive first
            good_status, good_seconds = pool.submit(post_image, server.port, good).result()
            answers = sorted(str(f.result()[0]) for f in bombs)
        rows.append({"case": "serve: 4 such at once, then a good image", "status": good_status,
                     "seconds": round(good_seconds, 2), "bomb_answers": " ".join(answers),
                     "peak_rss_mb": round(server.peak())})  # fmt: skip
        return rows
    finally:
        server.stop()


def case_flood(env: dict[str, str]) -> list[dict]:
    good = good_png()
    server = Server(env, "--weights", "kolektorsdd", "--api-key", KEY)
    try:
        base = server.rss()
        junk = b"\0" * (19 * 2**20)
        answers: list[str] = []
        good_latencies: list[float] = []
        rss_during: list[float] = []
        stop = threading.Event()

        def good_client() -> None:
            while not stop.is_set() and len(good_latencies) < 40:
                status, seconds = post_image(server.port, good, key=KEY)
                if status == 200:
                    good_latencies.append(seconds)

        checker = threading.Thread(target=good_client)
        checker.start()
        with ThreadPoolExecutor(8) as pool:
            for _ in range(4):
                for status, _ in pool.map(lambda _: post_image(server.port, junk), range(8)):
                    answers.append(str(status))
                rss_during.append(server.rss())
        stop.set()
        checker.join()
        statuses = " ".join(sorted(set(answers)))
        return [{"case": "serve: 32 keyless 19 MB posts from 8 clients", "status": statuses,
                 "rss_before_mb": round(base), "rss_during_max_mb": round(max(rss_during)),
                 "peak_rss_mb": round(server.peak()),
                 "good_p50_s": round(float(np.median(good_latencies)), 3) if good_latencies else None,
                 "good_max_s": round(max(good_latencies), 3) if good_latencies else None}]  # fmt: skip
    finally:
        server.stop()


def still_open(sockets: list[socket.socket]) -> int:
    """How many of ``sockets`` the server has not closed: each is read to its end (an error answer
    then EOF means closed; nothing to read yet means still open)."""
    count = 0
    for s in sockets:
        s.setblocking(False)
        try:
            while s.recv(65536):
                pass
        except BlockingIOError:
            count += 1  # no EOF: still open
        except OSError:
            pass  # reset: closed
    return count


def case_slow(env: dict[str, str]) -> list[dict]:
    good = good_png()
    server = Server(env, "--weights", "kolektorsdd")
    sockets: list[socket.socket] = []
    try:
        for _ in range(9):  # half a request header, then silence
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
            sockets.append(s)
        for _ in range(4):  # a whole header, then a body that never ends
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"POST /v1/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                      b"boundary=x\r\nContent-Length: 1000000\r\n\r\n--x\r\n")  # fmt: skip
            sockets.append(s)
        time.sleep(1)
        status, seconds = post_image(server.port, good)
        time.sleep(19)
        open_20 = still_open(sockets)
        time.sleep(20)
        open_40 = still_open(sockets)
        return [{"case": "serve: 13 stalled connections", "status": status, "seconds": round(seconds, 3),
                 "open_after_20s": open_20, "open_after_40s": open_40,
                 "peak_rss_mb": round(server.peak())}]  # fmt: skip
    finally:
        for s in sockets:
            s.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--src", default=None, help="a checkout's src folder to run instead of the installed lwcnn"
    )
    parser.add_argument("--cases", default="inspect,bomb,flood,slow")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = environment(args.src)
    cases = {"inspect": None, "bomb": case_bomb, "flood": case_flood, "slow": case_slow}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            if name not in cases:
                raise SystemExit(f"unknown case {name!r} (known: {', '.join(cases)})")
            rows.extend(case_inspect(env, Path(tmp)) if name == "inspect" else cases[name](env))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows))
        return
    for row in rows:
        print(" | ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
