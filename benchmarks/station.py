"""``lwcnn watch`` on the line: a folder receiving images at a steady rate, with the results database
and MQTT on, for minutes. Prints images/s sustained, the latency from a file closed to its verdict
published on the broker (p50/p95/p99/max, measured by a subscriber on the same clock), the watch
process's memory at the start and the end, and what was lost (written - recorded, recorded -
published).

    python -m benchmarks.station --rate 20 --seconds 600 --weights kolektorsdd

The images are the bundled samples of the model's dataset, written under a partial name and renamed
in (the documented convention), each with new bytes (a counter appended after the image data, which
decoders ignore) so that no two are the same content. Needs Debian's mosquitto and the ``line``
extra.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.services import Mosquitto, Postgres

REPO = Path(__file__).resolve().parents[1]
SAMPLES = {"kolektorsdd": REPO / "samples" / "kolektorsdd", "neu": REPO / "samples" / "neu"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class Listener:
    """Subscribes to every station's results and notes when each id arrived."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.arrived: dict[int, float] = {}
        self.images: dict[int, str] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-listener")
        self.client.on_connect = lambda client, *_: client.subscribe("lwcnn/+/result", qos=1)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        now = time.time()
        body = json.loads(message.payload)
        self.arrived.setdefault(body["id"], now)
        self.images[body["id"]] = body["image"]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def produce(
    folder: Path, sources: list[bytes], rate: float, seconds: float, closed: dict[str, float]
) -> None:
    """Write ``rate`` images a second for ``seconds``, each renamed in after it is closed."""
    start = time.monotonic()
    index = 0
    while True:
        due = start + index / rate
        if due - start >= seconds:
            return
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        name = f"{index:06d}.jpg"
        partial = folder / f"{name}.part"
        with open(partial, "wb") as handle:
            handle.write(sources[index % len(sources)] + index.to_bytes(4, "big"))
        closed[name] = time.time()
        os.replace(partial, folder / name)
        index += 1


def _counts(db: str) -> tuple[tuple[int, int], int]:
    """(results, distinct ledger keys) and deliveries in the database."""
    if db.startswith("postgresql://"):
        import psycopg

        connection = psycopg.connect(db)
    else:
        connection = sqlite3.connect(db)
    try:
        recorded = connection.execute("SELECT COUNT(*), COUNT(DISTINCT ledger_key) FROM results").fetchone()
        published = connection.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    finally:
        connection.close()
    return (int(recorded[0]), int(recorded[1])), int(published)


def _at(memory: list[tuple[float, float]], seconds: float) -> float:
    """The memory sample nearest to ``seconds`` into the run."""
    return min(memory, key=lambda sample: abs(sample[0] - seconds))[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="images per second written (20)")
    parser.add_argument("--seconds", type=float, default=600.0, help="how long images arrive (600)")
    parser.add_argument("--weights", default="kolektorsdd", choices=sorted(SAMPLES), help="bundled model")
    parser.add_argument("--workers", type=int, default=1, help="lwcnn watch --workers (1)")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="record into a PostgreSQL server started here (Debian's postgresql) instead of SQLite",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    sources = [p.read_bytes() for p in sorted(SAMPLES[args.weights].glob("*.jpg"))]
    work = Path(tempfile.mkdtemp(prefix="lwcnn-bench-watch-"))
    folder, db = work / "in", work / "results.db"
    folder.mkdir()
    server = Postgres() if args.postgres else None
    db_url = server.new_database("bench") if server is not None else str(db)
    broker = Mosquitto()
    listener = Listener(broker.port)
    command = [
        sys.executable,
        "-m",
        "lwcnn",
        "watch",
        str(folder),
        "--weights",
        args.weights,
        "--db",
        db_url,
        "--mqtt",
        broker.url,
        "--sort",
        "move",
        "--station",
        "bench",
        "--store",  # the kept pictures in the run's own folder, never beside the working directory
        str(work / "pictures"),
        "--workers",
        str(args.workers),
        "--backend",
        "onnxruntime",
    ]
    watch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(5.0)  # the model loads before the first image arrives
    memory = [(0.0, rss_mb(watch.pid))]
    closed: dict[str, float] = {}
    producer = threading.Thread(target=produce, args=(folder, sources, args.rate, args.seconds, closed))
    began = time.monotonic()
    producer.start()
    while producer.is_alive():
        producer.join(timeout=10.0)
        memory.append((time.monotonic() - began, rss_mb(watch.pid)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(listener.arrived) < len(closed):
        time.sleep(0.2)
    drained = time.monotonic() - began
    memory.append((drained, rss_mb(watch.pid)))
    watch.terminate()
    watch.wait(timeout=60)
    listener.close()
    broker.close()
    recorded, published = _counts(db_url)
    if server is not None:
        server.stop()
    latencies = [
        (listener.arrived[i] - closed[Path(image).name]) * 1000.0
        for i, image in listener.images.items()
        if Path(image).name in closed
    ]
    figures = {
        "weights": args.weights,
        "database": "postgresql" if args.postgres else "sqlite",
        "rate": args.rate,
        "seconds": args.seconds,
        "written": len(closed),
        "recorded": recorded[0],
        "recorded_distinct": recorded[1],
        "published": published,
        "received": len(listener.arrived),
        "lost": len(closed) - len(listener.arrived),
        "images_per_s": round(len(listener.arrived) / drained, 2),
        "latency_ms": {
            k: round(v, 1)
            for k, v in (
                ("p50", statistics.median(latencies)),
                ("p95", percentile(latencies, 0.95)),
                ("p99", percentile(latencies, 0.99)),
                ("max", max(latencies)),
            )
        },
        "rss_mb_start": round(memory[1][1] if len(memory) > 1 else memory[0][1], 1),
        "rss_mb_end": round(memory[-1][1], 1),
        "rss_mb_max": round(max(m for _, m in memory), 1),
        "drained_s": round(drained, 1),
        # the watch's memory through the run: at each quarter of the arrivals, and after the drain
        "rss_mb_quarters": [round(_at(memory, share * args.seconds), 1) for share in (0.25, 0.5, 0.75, 1.0)],
    }
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
        return
    store = "PostgreSQL" if args.postgres else "SQLite"
    print(f"lwcnn watch, {args.weights}, {args.rate:g} images/s for {args.seconds:g} s, {store} + MQTT QoS 1")
    print(
        "| written | recorded | published | received | lost | images/s | p50 ms | p95 ms | p99 ms | max ms "
        "| RSS start MB | RSS end MB | RSS max MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lat = figures["latency_ms"]
    print(
        f"| {figures['written']} | {figures['recorded']} | {published} | {figures['received']} | "
        f"{figures['lost']} | {figures['images_per_s']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
        f"{lat['max']} | {figures['rss_mb_start']} | {figures['rss_mb_end']} | {figures['rss_mb_max']} |"
    )
    print(f"RSS (MB) at 25/50/75/100% of the arrivals: {figures['rss_mb_quarters']}")


if __name__ == "__main__":
    main()
