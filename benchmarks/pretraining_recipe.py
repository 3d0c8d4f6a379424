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
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _run(command: list[str]) -> dict[str, Any]:
    done = subprocess.run([str(LWCNN), *command, "--json"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lwcnn {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    # validation only: the test figures of these runs are not looked at
    return {k: v for k, v in summary.items() if k.startswith("val_")} | {"epochs": summary.get("epochs")}


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
    parser.add_argument("--out", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lwcnn-bench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows: dict[str, dict[str, Any]] = {}
    first = "scratch" if args.base == ["model.init=scratch"] else "base"  # the first run's name
    for name in args.only or list(DATASETS):
        protocol, headline = DATASETS[name]
        data = GENERALITY[name].data(args.cache)
        base = args.out / name / first
        if not (base / "config.yaml").exists() or not (base / "best.json").exists():
            rows.setdefault(name, {})[first] = _run(
                ["train", str(data), "--budget", args.budget, "--out", str(base), *args.base, *protocol]
            )
        else:
            rows.setdefault(name, {})[first] = _summary_of(base)
        for variant, *keys in args.variant:
            out = args.out / name / variant
            rows[name][variant] = _summary_of(out) if (out / "best.json").exists() else _run(
                ["train", "--config", str(base / "config.yaml"), f"out={out}", *keys]
            )  # fmt: skip
        print(_line(name, headline, rows[name]), flush=True)
    means = _means(rows)
    print("mean of the headline validation figures: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
    if args.json:
        print(json.dumps({"rows": rows, "means": means}))
    return 0


def _summary_of(run: Path) -> dict[str, Any]:
    """The validation figures of a finished run (its best epoch's)."""
    best = json.loads((run / "best.json").read_text())["metrics"]
    found = {f"val_{k.removeprefix('val_')}": v for k, v in best.items() if k.startswith("val_")}
    if "val_acc" in found:
        found["val_accuracy"] = found.pop("val_acc")
    return found | {"epochs": json.loads((run / "best.json").read_text())["config"]["train"]["epochs"]}


def _line(name: str, headline: str, variants: dict[str, dict[str, Any]]) -> str:
    cells = "  ".join(f"{v} {r.get(headline) if r.get(headline) is None else f'{r[headline]:.4f}'}"
                      for v, r in variants.items())  # fmt: skip
    return f"{name:<12} {headline:<13} {cells}"


def _means(rows: dict[str, dict[str, dict[str, Any]]]) -> dict[str, float]:
    variants = {v for row in rows.values() for v in row}
    means = {}
    for variant in sorted(variants):
        values = [row[variant].get(DATASETS[name][1]) for name, row in rows.items() if variant in row]
        if all(v is not None for v in values):
            means[variant] = statistics.fmean(values)
    return means


if __name__ == "__main__":
    raise SystemExit(main())
