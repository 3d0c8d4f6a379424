"""Load on `lwcnn serve` over loopback: a bounded number of requests from concurrent clients,
512x512 gray images, a lw@0.35 segmenter (random weights, exported with a 512x512 working size).

    python benchmarks/serve_load.py [--requests 2000] [--clients 8] [--workers 2] [--lwcnn CMD]

Prints errors (non-200 answers or failed connections), latency p50/p99, requests/s, and the
server's resident memory (VmRSS) after start-up, after a warm-up of 50 requests and at the end,
plus its high-water mark. The clients run in this process (threads, httpx) on the same 2 cores.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from lwcnn.export import export_onnx
from lwcnn.models import create_model
from lwcnn.tables import format_table


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="lwcnn serve --workers")
    parser.add_argument("--lwcnn", default=shutil.which("lwcnn") or "lwcnn", help="the lwcnn command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = create_model("lw@0.35", task="seg", in_channels=1).eval()
        preprocessing = {"channels": 1, "size": [512, 512], "mean": [0.5], "std": [0.25]}
        weights = Path(tmp) / "seg.onnx"
        export_onnx(
            model,
            weights,
            {"task": "seg", "classes": ["background", "defect"], "preprocessing": preprocessing},
        )
        images = []
        rng = np.random.default_rng(0)
        for _ in range(16):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(40, 220, (512, 512), dtype=np.uint8)).save(buffer, format="PNG")
            images.append(buffer.getvalue())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [
                args.lwcnn,
                "serve",
                "--weights",
                str(weights),
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            rss_start = memory_mb(server.pid, "VmRSS")

            def send(client: httpx.Client, index: int) -> tuple[bool, float]:
                start = time.perf_counter()
                try:
                    files = {"image": (f"{index}.png", images[index % len(images)], "image/png")}
                    ok = client.post(f"{url}/v1/inspect", files=files, timeout=60).status_code == 200
                except httpx.HTTPError:
                    ok = False
                return ok, (time.perf_counter() - start) * 1000.0

            with httpx.Client() as client:
                for index in range(50):
                    send(client, index)
            rss_warm = memory_mb(server.pid, "VmRSS")
            results: list[tuple[bool, float]] = []
            lock = threading.Lock()
            counter = iter(range(args.requests))

            def client_loop() -> None:
                with httpx.Client() as client:
                    while True:
                        with lock:
                            index = next(counter, None)
                        if index is None:
                            return
                        outcome = send(client, index)
                        with lock:
                            results.append(outcome)

            started = time.perf_counter()
            threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - started
            rss_end, rss_peak = memory_mb(server.pid, "VmRSS"), memory_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies = sorted(ms for _, ms in results)
    row = {
        "requests": len(results),
        "clients": args.clients,
        "workers": args.workers,
        "errors": sum(1 for ok, _ in results if not ok),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "rps": len(results) / seconds,
        "rss_start": rss_start,
        "rss_warm": rss_warm,
        "rss_end": rss_end,
        "rss_peak": rss_peak,
    }
    print(f"python {sys.version.split()[0]}, lw@0.35 segmenter, 512x512 PNG uploads, loopback")
    columns = [("requests", "requests"), ("clients", "clients"), ("workers", "workers"), ("errors", "errors"),
               ("p50", "p50 (ms)", ".1f"), ("p99", "p99 (ms)", ".1f"), ("rps", "requests/s", ".1f"),
               ("rss_start", "RSS start (MB)", ".0f"), ("rss_warm", "RSS warm (MB)", ".0f"),
               ("rss_end", "RSS end (MB)", ".0f"), ("rss_peak", "peak (MB)", ".0f")]  # fmt: skip
    print(format_table([row], columns))


if __name__ == "__main__":
    main()
