"""Training throughput of one process against two (torchrun, gloo) on this machine: NEU, lw@0.35,
the NEU config, a short epoch, the same global batch.

    python benchmarks/ddp_throughput.py [--data ../shared/datasets/neu] [--per-class 128] [--epochs 2]

One process uses all cores for its torch threads; each of two processes uses half of them. Reported:
training images per second of the last epoch (the first one warms up), from the run's metrics.csv
(its seconds include the validation pass, which rank 0 does alone).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lwcnn.tables import format_table

REPO = Path(__file__).resolve().parents[1]


def run(label: str, launcher: list[str], threads: int, args: argparse.Namespace, out: Path) -> dict:
    overrides = [
        f"data.root={args.data}",
        f"out={out}",
        f"train.epochs={args.epochs}",
        f"augment.per_class={args.per_class}",
        f"train.threads={threads}",
        "train.workers=0",
    ]
    started = time.perf_counter()
    subprocess.run([*launcher, "train", "--config", str(REPO / "configs" / "neu.yaml"), *overrides, "--json"],
                   check=True, cwd=REPO, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - started
    with open(out / "metrics.csv", newline="") as file:
        last = list(csv.DictReader(file))[-1]
    images = args.per_class * 6
    return {"setup": label, "threads_each": threads, "epoch_s": float(last["seconds"]),
            "images_per_s": images / float(last["seconds"]), "wall_s": wall}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "datasets" / "neu"))
    parser.add_argument("--per-class", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    single = [sys.executable, "-m", "lwcnn"]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "lwcnn",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            run("1 process", single, cores, args, Path(tmp) / "one"),
            run("2 processes (torchrun, gloo)", torchrun, max(1, cores // 2), args, Path(tmp) / "two"),
        ]
    rows[1]["speedup"] = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    rows[0]["speedup"] = 1.0
    print(f"{cores} cores, NEU lw@0.35 (configs/neu.yaml), {args.per_class * 6} training images per epoch, "
          f"global batch 64; last of {args.epochs} epochs")  # fmt: skip
    columns = [("setup", "setup"), ("threads_each", "torch threads each"), ("epoch_s", "epoch (s)", ".1f"),
               ("images_per_s", "images/s", ".1f"), ("speedup", "vs 1 process", ".2f"),
               ("wall_s", "whole run (s)", ".1f")]  # fmt: skip
    print(format_table(rows, columns))


if __name__ == "__main__":
    main()
