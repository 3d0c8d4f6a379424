"""What forking the loading workers afresh every epoch costs a training epoch, against workers kept
for the run (``persistent_workers``, what ``lwcnn train`` does), and what the budget probe predicts.

    python -m benchmarks.training_epoch_workers [--images 768] [--side 256] [--batch 64]
        [--epochs 3] [--rounds 2] [--json]

A generated class-folder dataset (two classes of 300 x 300 gray noise textures, written to a
temporary folder) is trained with ``configs/folders.yaml`` at ``--side``, ``--batch``, one loading
worker, freed memory kept (as ``lwcnn train`` runs), in a child process per run: the loop's own
``build_parts`` and ``train_step``, the budget probe's ``time_steps`` first, then ``--epochs``
epochs. Workers "fresh" are forked anew at every epoch (lwcnn before this benchmark); "kept" are
forked once. The two alternate over ``--rounds`` rounds. Per run: the probe's median step, the
median epoch's seconds per step, the slowest first step of an epoch and the median other step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from lwcnn.tables import format_table

CHILD = """
import json, statistics, sys, time
from pathlib import Path
import torch
from torch.utils.data import DataLoader
from lwcnn.config import load_config
from lwcnn.data.datasets import seed_worker
from lwcnn.training.budget import time_steps
from lwcnn.training.classification import ClassificationTask
from lwcnn.training.loop import _StepTotals, build_parts, init_distributed, train_step
from lwcnn.training.memory import keep_freed_memory
root, side, batch, epochs, mode, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \
    sys.argv[5], sys.argv[6]
keep_freed_memory()
config = load_config(Path("configs/folders.yaml"), [
    f"data.root={root}", f"out={out}", f"data.input_size=[{side},{side}]", f"train.batch_size={batch}",
    "train.workers=1", "train.threads=0", "augment.per_class=0", "model.init=scratch"])
task = ClassificationTask.from_config(config)
context = init_distributed()
data = task.prepare(config, Path(out), False)
torch.set_num_threads(torch.get_num_threads())
parts = build_parts(task, config, data, context)
if mode == "fresh":
    parts.loader = DataLoader(data.train, batch_size=batch, sampler=parts.sampler, num_workers=1,
                              worker_init_fn=seed_worker, drop_last=True)
def step(images, targets):
    train_step(task, config["train"], parts, 0, images, targets, context, _StepTotals())
probe = time_steps(step, parts.loader)[0]
per_step, first, other = [], [], []
for epoch in range(epochs):
    parts.sampler.set_epoch(epoch)
    data.train.set_epoch(0, epoch, 0)
    started = time.perf_counter()
    last, times = started, []
    for images, targets in parts.loader:
        step(images, targets)
        now = time.perf_counter()
        times.append(now - last)
        last = now
    per_step.append((last - started) / len(times))
    first.append(times[0])
    other.extend(times[1:])
print(json.dumps({"probe_s": probe, "epoch_step_s": statistics.median(per_step), "first_step_s": max(first),
                  "other_step_s": statistics.median(other), "steps": len(times)}))
"""


def write_dataset(root: Path, images: int, seed: int = 0) -> None:
    """Two class folders of 300 x 300 gray textures (smoothed noise; one class with a dark streak)."""
    import cv2

    rng = np.random.default_rng(seed)
    for index in range(images):
        label = index % 2
        noise = cv2.GaussianBlur(rng.normal(128, 40, (300, 300)).astype(np.float32), (0, 0), 2)
        if label:
            row = int(rng.integers(20, 280))
            noise[row : row + 3] -= 60
        folder = root / ("streak" if label else "plain")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.clip(noise, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=768)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"fresh": [], "kept": []}
    with tempfile.TemporaryDirectory(prefix="lwcnn-epochs-") as scratch:
        root = Path(scratch) / "data"
        write_dataset(root, args.images)
        for round_ in range(args.rounds):
            for mode in runs:
                out = Path(scratch) / f"run-{mode}-{round_}"
                command = [sys.executable, "-c", CHILD, str(root), str(args.side), str(args.batch),
                           str(args.epochs), mode, str(out)]  # fmt: skip
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
    rows = [
        {"workers": f"{mode}: forked {'every epoch' if mode == 'fresh' else 'once'}",
         **{key: float(np.median([m[key] for m in measured])) for key in measured[0]}}
        for mode, measured in runs.items()
    ]  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"lw@0.35, 1 channel, {args.side} x {args.side}, batch {args.batch}, 1 loading worker, "
        f"{args.epochs} epochs of {rows[0]['steps']:.0f} steps a run, "
        f"medians of {args.rounds} alternating runs"
    )
    print(format_table(rows, [
        ("workers", "loading workers"), ("probe_s", "probe s/step", ".3f"),
        ("epoch_step_s", "epoch s/step", ".3f"), ("first_step_s", "first step s", ".2f"),
        ("other_step_s", "other steps s", ".3f"),
    ]))  # fmt: skip
    fresh, kept = rows
    print(f"epoch time: fresh / kept = {fresh['epoch_step_s'] / kept['epoch_step_s']:.2f}x; "
          f"epoch / probe: fresh {fresh['epoch_step_s'] / fresh['probe_s']:.2f}, "
          f"kept {kept['epoch_step_s'] / kept['probe_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
