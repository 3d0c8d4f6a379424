"""Choosing how to pretrain and fine-tune (issue 19) on the development datasets' *validation*
parts, never their test parts: which pretext objective, and which fine-tuning details (a lower
learning rate for the pretrained backbone, a warm-up).

For each dataset the one command plans and trains a scratch run with a short budget (``--budget``);
its ``config.yaml`` (the epochs fitted, budget 0) is then trained again for every variant with
only ``model.init`` and the variant's keys changed. ``--base KEY=VALUE...`` plans the first run
with other keys instead of ``model.init=scratch`` (``--base model.init=pretrained``: the default
start, to compare other choices against the default recipe); that run is then called "base".
Every variant of a dataset runs the very same epochs, so the comparison does not depend on how
busy the machine was. The table holds the chosen epoch's validation figures (``val_*``), and the
mean of each dataset's headline figure.

    python -m benchmarks.pretraining_recipe --budget 3m --out runs/recipe \\
        --variant defects "model.init=runs/pt-defects/backbone-c1.json" \\
        --variant classify "model.init=runs/pt-classify/backbone-c1.json"

One seed moves a short run by 1-3 points (docs/results.md, "How far a 4-minute comparison can be
trusted"), as much as most recipe changes. ``--seeds 0 1 2`` trains every variant, the first run
included, once per seed (``train.seed``; the planned run is its own seed's) and reports each
variant's median over the seeds, the figure of every seed, and on how many seeds it beat the first
run (paired: same seed, same epochs). ``--jobs 2`` trains that many runs at a time after the
planned ones, each on ``train.threads=1``: on two cores two one-thread trainings get through about
1.6 times the images of one two-thread training (docs/results.md, "Distributed training"). The
planned runs always train alone: their probe times the machine. Thread count changes only the
order of floating-point sums, so it moves a run as a seed does, the same for every variant.

Run again with the same ``--out``, the command reuses the finished runs and continues the
interrupted ones (``lwcnn train --resume``); only a finished run's figures enter the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks.generality import DATASETS as GENERALITY

ROOT = Path(__file__).resolve().parents[1]
LWCNN = Path(sys.executable).parent / "lwcnn"

#: The datasets a recipe is chosen on, each with its protocol's arguments for the planned run
#: (a validation part is always there) and the validation figure that heads it.
DATASETS: dict[str, tuple[tuple[str, ...], str]] = {
    "neu": (("--task", "cls"), "val_accuracy"),  # the plan's 60/20/20: the NEU protocol has no validation
    "elpv": ((), "val_accuracy"),
    "elpv-levels": ((), "val_accuracy"),
    "kolektorsdd": (("data.split={folds: configs/splits/kolektorsdd-3fold.json, test_fold: 0, val: 0.2}",),
                    "val_ap"),
    "deeppcb": ((), "val_iou"),  # validation AP is 0.99+ for every recipe: the boxes' IoU tells them apart
    "neu-det": (("--task", "seg"), "val_iou"),  # every image defective: AP is undefined
    "dagm-synth": ((), "val_ap"),  # lwcnn data synth; its own train/test, 20% of train validates
}  # fmt: skip


def _command(command: list[str]) -> list[str]:
    return [str(LWCNN), *command, "--json"]


def _summary(returncode: int, stdout: str, stderr: str, command: list[str]) -> dict[str, Any]:
    """The validation figures a finished ``lwcnn train --json`` printed (its last line)."""
    if returncode:
        raise SystemExit(f"lwcnn {' '.join(command)} failed:\n{stderr[-2000:]}")
    summary = json.loads(stdout.strip().splitlines()[-1])
    # validation only: the test figures of these runs are not looked at
    return {k: v for k, v in summary.items() if k.startswith("val_")} | {"epochs": summary.get("epochs")}


def _run(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(_command(command), cwd=ROOT, capture_output=True, text=True)
    return _summary(done.returncode, done.stdout, done.stderr, command)


def _run_all(commands: dict[Any, list[str]], jobs: int) -> dict[Any, dict[str, Any]]:
    """Every command's summary, ``jobs`` of them training at a time."""
    pending, running, done = list(commands.items()), {}, {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                key, command = pending.pop(0)
                process = subprocess.Popen(
                    _command(command), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
                running[key] = (process, command)
            finished = next((k for k, (p, _) in running.items() if p.poll() is not None), None)
            if finished is None:
                time.sleep(1.0)
                continue
            process, command = running.pop(finished)
            stdout, stderr = process.communicate()
            done[finished] = _summary(process.returncode, stdout, stderr, command)
            print(f"  done: {' '.join(map(str, finished))}", flush=True)
    finally:  # a failed or interrupted run stops the others: their figures would not be compared
        for process, _ in running.values():
            process.kill()
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="3m", help="the planned scratch run's budget (default 3m)")
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS))
    parser.add_argument(
        "--base",
        nargs="+",
        default=["model.init=scratch"],
        metavar="KEY=VALUE",
        help="the keys of the planned first run (default model.init=scratch)",
    )
    parser.add_argument(
        "--variant", nargs="+", action="append", default=[], metavar=("NAME", "KEY=VALUE"),
        help="a variant: its name and the config keys it changes (repeat the option for more)",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=None, metavar="SEED",
        help="train every variant once per seed and report medians (default: the planned run's seed only)",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at a time after the planned ones")
    parser.add_argument("--out", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lwcnn-bench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    first = "scratch" if args.base == ["model.init=scratch"] else "base"  # the first run's name
    names = args.only or list(DATASETS)
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    planned_seed: dict[str, int] = {}
    for name in names:  # alone, one after the other: each plan's probe times the machine
        protocol = DATASETS[name][0]
        base = args.out / name / first
        if _finished(base):
            summary = _summary_of(base)
        elif _interrupted(base):
            summary = _run(["train", "--resume", str(base)])
        else:
            summary = _run(
                ["train", str(GENERALITY[name].data(args.cache)), "--budget", args.budget, "--out", str(base),
                 *args.base, *protocol]
            )  # fmt: skip
        planned_seed[name] = int(yaml.safe_load((base / "config.yaml").read_text())["train"]["seed"])
        runs[name, first, planned_seed[name]] = summary
    todo: dict[tuple[str, str, int], list[str]] = {}
    threads = ["train.threads=1"] if args.jobs > 1 else []
    for name in names:
        base = args.out / name / first
        for seed in args.seeds if args.seeds is not None else [planned_seed[name]]:
            for variant, *keys in [(first,), *args.variant]:
                if (name, variant, seed) in runs:
                    continue
                out = _run_folder(args.out / name, variant, seed, planned_seed[name])
                if _finished(out):
                    runs[name, variant, seed] = _summary_of(out)
                elif _interrupted(out):
                    todo[name, variant, seed] = ["train", "--resume", str(out)]
                else:
                    todo[name, variant, seed] = [
                        "train", "--config", str(base / "config.yaml"), f"out={out}", f"train.seed={seed}",
                        *threads, *keys,
                    ]  # fmt: skip
    runs |= _run_all(todo, max(1, args.jobs))
    for (name, variant, seed), summary in runs.items():
        summary["train_s"] = _train_seconds(_run_folder(args.out / name, variant, seed, planned_seed[name]))
    variants = [first, *(v for v, *_ in args.variant)]
    rows: dict[str, dict[str, dict[int, dict[str, Any]]]] = {n: {v: {} for v in variants} for n in names}
    for (name, variant, seed), summary in sorted(runs.items()):
        rows[name][variant][seed] = summary
    for name in names:
        print(_line(name, DATASETS[name][1], rows[name], first), flush=True)
    means = _means({name: {v: _median(by_seed, DATASETS[name][1]) for v, by_seed in row.items()}
                    for name, row in rows.items()})  # fmt: skip
    print("mean of the headline validation figures" + (" (medians over seeds)" if args.seeds else "")
          + ": " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))  # fmt: skip
    if args.json:
        print(json.dumps({"rows": rows, "means": means}))
    return 0


def _finished(run: Path) -> bool:
    """Whether a run folder holds a finished training: ``best.json`` is written from the first
    epoch on, so an interrupted run has one too (its validation figures may be missing); the
    learning curves are drawn only once the epochs are over (``lwcnn.training.loop``)."""
    return all((run / name).is_file() for name in ("config.yaml", "best.json", "learning_curves.png"))


def _interrupted(run: Path) -> bool:
    """Whether a run folder holds an unfinished training that ``lwcnn train --resume`` continues."""
    return (run / "resume.pt").is_file() and not _finished(run)


def _run_folder(dataset_out: Path, variant: str, seed: int, planned_seed: int) -> Path:
    """A variant's run folder for a seed: the planned seed's keeps the plain name (as before --seeds)."""
    return dataset_out / (variant if seed == planned_seed else f"{variant}-seed{seed}")


def _median(by_seed: dict[int, dict[str, Any]], headline: str) -> float | None:
    values = [r.get(headline) for r in by_seed.values()]
    return statistics.median(values) if values and all(v is not None for v in values) else None


def _train_seconds(run: Path) -> float | None:
    """The seconds a run's epochs took (metrics.csv), validation included; not comparable between
    runs trained alone and runs trained beside another (``--jobs``)."""
    try:
        with (run / "metrics.csv").open() as rows:
            return round(sum(float(row["seconds"]) for row in csv.DictReader(rows)), 1)
    except (OSError, KeyError, ValueError):
        return None


def _summary_of(run: Path) -> dict[str, Any]:
    """The validation figures of a finished run (its best epoch's)."""
    best = json.loads((run / "best.json").read_text())
    found = {f"val_{k.removeprefix('val_')}": v for k, v in best["metrics"].items() if k.startswith("val_")}
    if "val_acc" in found:
        found["val_accuracy"] = found.pop("val_acc")
    return found | {"epochs": best["config"]["train"]["epochs"]}


def _line(name: str, headline: str, variants: dict[str, dict[int, dict[str, Any]]], first: str) -> str:
    """A dataset's headline per variant: the median over seeds, each seed's figure, and (for more
    than one seed) on how many seeds the variant beat the first run."""
    cells = []
    for variant, by_seed in variants.items():
        median = _median(by_seed, headline)
        cell = f"{variant} {'None' if median is None else f'{median:.4f}'}"
        seconds = [r["train_s"] for r in by_seed.values() if r.get("train_s") is not None]
        if seconds:
            cell += f" ({statistics.median(seconds):.0f} s)"
        if len(by_seed) > 1:
            figures = [by_seed[s].get(headline) for s in sorted(by_seed)]
            cell += " [" + " ".join("None" if f is None else f"{f:.4f}" for f in figures) + "]"
            if variant != first:
                pairs = [
                    (r.get(headline), variants[first].get(s, {}).get(headline)) for s, r in by_seed.items()
                ]
                better = sum(1 for v, b in pairs if v is not None and b is not None and v > b)
                cell += f" beats {first} on {better}/{len(pairs)} seeds"
        cells.append(cell)
    return f"{name:<12} {headline:<13} " + "  ".join(cells)


def _means(rows: dict[str, dict[str, float | None]]) -> dict[str, float]:
    """Each variant's mean over the datasets of its (median) headline figure."""
    variants = {v for row in rows.values() for v in row}
    means = {}
    for variant in sorted(variants):
        values = [row[variant] for row in rows.values() if variant in row]
        if values and all(v is not None for v in values):
            means[variant] = statistics.fmean(values)
    return means


if __name__ == "__main__":
    raise SystemExit(main())
