"""NEU classification benchmark: lw@0.35 over three seeds (grayscale), one seed with 3-channel
input, and mobilenetv2@0.35 with the same recipe and split, one after the other on this machine.

    python benchmarks/neu_classification.py [--data ../shared/datasets/neu] [--out runs/bench-neu]
        [--seeds 0 1 2] [--json] [extra key=value overrides for every run]

Each run is ``lwcnn train --config configs/neu.yaml`` with ``train.seed`` and ``data.split_seed``
set to the seed (the split is part of the result, as the NEU protocol says); the table gives its
test accuracy on its own held-out 150 images per class and its wall-clock time, start-up included.
Learning curves are in each run folder (``learning_curves.png``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lwcnn.tables import format_table

ROOT = Path(__file__).resolve().parents[1]


def train(name: str, out: Path, data: str, overrides: list[str]) -> dict:
    command = [sys.executable, "-m", "lwcnn", "train", "--config", str(ROOT / "configs" / "neu.yaml"),
               f"data.root={data}", f"out={out / name}", *overrides, "--json"]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    minutes = (time.perf_counter() - started) / 60
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return {**result, "run": name, "folder": result["run"], "minutes": minutes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "neu"))
    parser.add_argument("--out", default="runs/bench-neu")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run")
    args = parser.parse_args()
    out = Path(args.out)

    def run(model: str, channels: int, seed: int) -> list[str]:
        return [
            f"model.name={model}",
            f"data.channels={channels}",
            f"train.seed={seed}",
            f"data.split_seed={seed}",
        ]

    first = args.seeds[0]
    plan = [(f"lw-gray-seed{s}", run("lw@0.35", 1, s)) for s in args.seeds]
    plan.append((f"lw-rgb-seed{first}", run("lw@0.35", 3, first)))
    plan.append((f"mobilenetv2-gray-seed{first}", run("mobilenetv2@0.35", 1, first)))
    rows = []
    for name, overrides in plan:
        rows.append(train(name, out, args.data, [*overrides, *args.overrides]))
        print(
            f"{name}: test accuracy {rows[-1]['test_accuracy']:.4f}, {rows[-1]['minutes']:.1f} min",
            file=sys.stderr,
        )
    gray = [r["test_accuracy"] for r in rows if r["run"].startswith("lw-gray")]
    summary = {"lw_gray_mean_accuracy": statistics.mean(gray), "lw_gray_runs": len(gray)}
    if args.json:
        print(json.dumps({"runs": rows, **summary}, indent=2))
        return
    print(format_table(rows, [("run", "run"), ("test_accuracy", "test accuracy", ".4f"), ("test_n", "n"),
                              ("best_epoch", "best epoch"), ("minutes", "minutes", ".1f")]))  # fmt: skip
    mean = summary["lw_gray_mean_accuracy"]
    print(f"\nlw@0.35 grayscale, mean test accuracy over {len(gray)} seeds: {mean:.4f}")


if __name__ == "__main__":
    main()
