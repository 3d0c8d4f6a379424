"""Throughput on more cores: images per second of `lwcnn inspect` (file to verdict) as
the cores it may use grow, with one worker (the read-ahead thread and one session) and with a pool
of workers (whole images in parallel through one session).

    python -m benchmarks.inspect_throughput --weights kolektorsdd --images ../shared/datasets/kolektorsdd \
        [--exclude _label] [--limit 120] [--cores 1 2] [--rounds 5] [--backend onnxruntime] \
        [--pictures none|defective|all] [--json]

Each measurement runs in a child process pinned to the first N cores (``sched_setaffinity``, set
before any engine starts its threads), which warms up on a few images and then times
``inspect_to_folder`` over all of them; configurations and core counts are interleaved round by
round, and the table gives the median per configuration with its speed-up over one worker on one
core. Configurations per core count N: ``1 x (N-1 or 1)`` (one worker, as ``lwcnn inspect --workers
1``), ``N x 1`` (one worker per core: the default).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lwcnn.tables import format_table


def child(request: dict) -> dict:
    """One timing, in this (pinned) process."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: request["cores"]]))
    from lwcnn.runtime import Inspector
    from lwcnn.runtime.results import inspect_to_folder

    inspector = Inspector(request["weights"], backend=request["backend"], threads=request["threads"],
                          workers=request["workers"])  # fmt: skip
    paths = [Path(p) for p in request["paths"]]
    with tempfile.TemporaryDirectory() as out:
        inspect_to_folder(inspector, paths[:8], Path(out) / "warm", pictures=request["pictures"])
        start = time.perf_counter()
        report = inspect_to_folder(inspector, paths, Path(out) / "run", pictures=request["pictures"])
        seconds = time.perf_counter() - start
    return {"ms_per_image": 1000.0 * seconds / len(paths), "images": report["summary"]["images"],
            "engine": inspector.engine}  # fmt: skip


def configurations(cores: list[int]) -> list[dict]:
    found = []
    for n in cores:
        found.append({"cores": n, "workers": 1, "threads": max(1, n - 1)})
        if n > 1:
            found.append({"cores": n, "workers": n, "threads": 1})
    return found


def measure(args: argparse.Namespace, paths: list[Path]) -> list[dict]:
    configs = configurations(args.cores)
    samples: dict[int, list[float]] = {i: [] for i in range(len(configs))}
    engines: dict[int, str] = {}
    for _ in range(args.rounds):
        for index, config in enumerate(configs):
            request = {**config, "weights": args.weights, "backend": args.backend,
                       "pictures": args.pictures, "paths": [str(p) for p in paths]}  # fmt: skip
            done = subprocess.run(
                [sys.executable, "-m", "benchmarks.inspect_throughput", "--child", json.dumps(request)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            result = json.loads(done.stdout.strip().splitlines()[-1])
            samples[index].append(result["ms_per_image"])
            engines[index] = result["engine"]
    base = statistics.median(samples[0])
    rows = []
    for index, config in enumerate(configs):
        ms = statistics.median(samples[index])
        rows.append({**config, "engine": engines[index], "ms_per_image": round(ms, 3),
                     "images_per_s": round(1000.0 / ms, 1), "speedup": round(base / ms, 2),
                     "rounds": [round(v, 3) for v in samples[index]]})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--weights", default="kolektorsdd")
    parser.add_argument("--images", help="folder of images (searched recursively)")
    parser.add_argument("--exclude", default=None, help="skip files whose name contains this")
    parser.add_argument("--limit", type=int, default=120)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--pictures", choices=("none", "defective", "all"), default="none")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from lwcnn.data.images import find_images

    if not args.images:
        parser.error("--images is required")
    paths = [p for p in find_images(Path(args.images)) if not (args.exclude and args.exclude in p.name)]
    paths = paths[: args.limit]
    available = len(os.sched_getaffinity(0))
    if max(args.cores) > available:
        parser.error(f"--cores {max(args.cores)}: this process may use {available}")
    rows = measure(args, paths)
    if args.json:
        print(json.dumps({"weights": args.weights, "images": len(paths), "rows": rows}))
        return
    print(f"{args.weights}: {len(paths)} images, file to verdict, pictures {args.pictures}, "
          f"{args.rounds} rounds")  # fmt: skip
    for row in rows:
        row["layout"] = f"{row['workers']} x {row['threads']}"
    print(format_table(rows, [
        ("cores", "cores"), ("layout", "workers x threads"), ("engine", "engine"),
        ("ms_per_image", "ms/image", ".2f"), ("images_per_s", "images/s", ".1f"),
        ("speedup", "x 1 core", ".2f"),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
