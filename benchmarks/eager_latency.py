"""PyTorch eager CPU latency of lw@0.35 against mobilenetv2@0.35, side by side in one run.

    python benchmarks/eager_latency.py [--runs-cls 200] [--runs-seg 60] [--threads 1 2] [--json]

NEU-size classification (3x200x200, 6 classes) and 512x512 segmentation (2 classes, the same
decoder), batch 1, median of many runs after warm-up, for each thread count. The two models are
timed alternately, a slice of runs at a time, so that drifts of the machine hit both alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import torch

from lwcnn.models import create_model
from lwcnn.tables import format_table
from lwcnn.timing import time_alternately

CASES = (("cls", 6, (3, 200, 200)), ("seg", 2, (3, 512, 512)))
MODELS = ("lw@0.35", "mobilenetv2@0.35")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs-cls", type=int, default=200)
    parser.add_argument("--runs-seg", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows = []
    for task, classes, shape in CASES:
        runs = args.runs_cls if task == "cls" else args.runs_seg
        models = {name: create_model(name, task=task, num_classes=classes).eval() for name in MODELS}
        x = torch.randn(1, *shape)
        for threads in args.threads:
            torch.set_num_threads(threads)
            runners = {name: (lambda m=model, x=x: m(x)) for name, model in models.items()}
            with torch.inference_mode():
                times = time_alternately(runners, runs, args.warmup)
            medians = {name: statistics.median(t) for name, t in times.items()}
            for name in MODELS:
                rows.append(
                    {
                        "model": name,
                        "task": task,
                        "input": "x".join(map(str, shape)),
                        "threads": threads,
                        "runs": len(times[name]),
                        "median_ms": medians[name],
                        "p90_ms": statistics.quantiles(times[name], n=10)[-1],
                        "mobilenet_over_lw": medians["mobilenetv2@0.35"] / medians["lw@0.35"],
                    }
                )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, eager, batch 1")
    print(
        format_table(
            rows,
            [
                ("model", "model"),
                ("task", "task"),
                ("input", "input"),
                ("threads", "threads"),
                ("runs", "runs"),
                ("median_ms", "median (ms)", ".2f"),
                ("p90_ms", "p90 (ms)", ".2f"),
                ("mobilenet_over_lw", "mobilenetv2 / lw", ".2f"),
            ],
        )
    )


if __name__ == "__main__":
    main()
