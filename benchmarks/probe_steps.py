"""How well the budget probe's few timed steps predict a run's later steps: from a run folder's
``config.yaml``, build the training parts afresh (as the probe does), train ``--steps`` steps
and print each one's time, the median of the steps the probe times (after its warm-up) and of the
later ones, ``--repeats`` times.

    python -m benchmarks.probe_steps runs/x/fold-2 --steps 45 --repeats 2 [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lwcnn.config import load_config
from lwcnn.training.budget import TIMED_STEPS, WARMUP_STEPS
from lwcnn.training.classification import ClassificationTask
from lwcnn.training.distributed import DistContext
from lwcnn.training.loop import _StepTotals, build_parts, train_step
from lwcnn.training.memory import keep_freed_memory
from lwcnn.training.segmentation import SegmentationTask

LATER = 15  # steps from here on count as "later"


def step_times(run: Path, steps: int, repeats: int) -> list[dict]:
    """Each repeat's step times (a fresh model, optimiser and loader each time)."""
    keep_freed_memory()
    config = load_config(run / "config.yaml", ["out=/tmp/lwcnn-probe-steps"])
    task = (SegmentationTask if config["task"] == "seg" else ClassificationTask).from_config(config)
    torch.set_num_threads(config["train"]["threads"] or 2)
    data = task.prepare(config, Path("/tmp/lwcnn-probe-steps"), False)
    context = DistContext()
    results = []
    for repeat in range(repeats):
        parts = build_parts(task, config, data, context)
        parts.sampler.set_epoch(0)  # type: ignore[attr-defined]
        data.train.set_epoch(config["train"]["seed"], 0, 0)  # type: ignore[attr-defined]
        times, batches = [], iter(parts.loader)
        last = time.perf_counter()
        for index in range(steps):
            try:
                images, targets = next(batches)
            except StopIteration:
                batches = iter(parts.loader)
                images, targets = next(batches)
            train_step(task, config["train"], parts, index, images, targets, context, _StepTotals())
            if parts.average:
                parts.average.update(parts.model, index)
            now = time.perf_counter()
            times.append(now - last)
            last = now
        probed = statistics.median(times[WARMUP_STEPS : WARMUP_STEPS + TIMED_STEPS])
        later = statistics.median(times[LATER:])
        results.append({"repeat": repeat, "probe_s": probed, "later_s": later, "times": times})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (its config.yaml)")
    parser.add_argument("--steps", type=int, default=45)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = step_times(args.run, args.steps, args.repeats)
    print(f"{'repeat':>6} {'probe s':>8} {'later s':>8} {'ratio':>6}  step times (s)")
    for row in results:
        shown = " ".join(f"{t:.2f}" for t in row["times"][:20])
        ratio = row["probe_s"] / row["later_s"]
        print(f"{row['repeat']:>6} {row['probe_s']:8.3f} {row['later_s']:8.3f} {ratio:6.2f}  {shown} ...")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
