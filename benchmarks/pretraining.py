"""Scratch against the bundled pretrained backbone, in the form of the paper's fine-tuning study
(Section 4.2.3, Table 3 and Figure 8; issue 19 benchmark).

On every dataset of the generality benchmark, the one command (``lwcnn train DATA --budget B``,
only the protocol's split and ``--task`` given) runs with ``model.init=scratch`` and with
``model.init=pretrained`` (the default), at 25%, 50% and 100% of the budget (``--fractions``): the
figures at a quarter and half of the budget show the convergence gain, the full budget the final
one. The runs of one dataset and fraction run back to back. Every test figure comes from the test
part of the protocol; the pretext sources are formula-driven (no development dataset), so no row is
one the backbone has seen. ``learning_curves_NAME.png``: training loss and validation figure against
time for both full-budget runs (the training accuracy where the protocol has no validation part).
``--replot`` draws them again from the run folders of ``--out``.

    python -m benchmarks.pretraining --budget 15m --out runs/pretraining --json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.generality import DATASETS, train_one

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: The figure each dataset is judged by (NEU-DET: every image defective, so its IoU against the boxes).
HEADLINE = {
    "neu": "accuracy", "elpv": "accuracy", "elpv-levels": "accuracy", "kolektorsdd": "ap",
    "deeppcb": "ap", "neu-det": "iou", "dagm-synth": "ap",
}  # fmt: skip
INITS = ("scratch", "pretrained")


def _budget_text(budget: str, fraction: float) -> str:
    from lwcnn.training.plan import parse_budget

    return f"{parse_budget(budget) * fraction:.0f}s"


def run_folder(out: Path, name: str, init: str, fraction: float) -> Path:
    """Where the run of dataset ``name`` from ``init`` at ``fraction`` of the budget is kept."""
    return out / name / f"{init}-{fraction:g}"


def run_dataset(name: str, budget: str, fractions: Sequence[float], out: Path, cache: Path) -> dict[str, Any]:
    dataset = DATASETS[name]
    results: dict[str, dict[str, Any]] = {init: {} for init in INITS}
    for fraction in sorted(fractions):
        for init in INITS:
            run = run_folder(out, name, init, fraction)
            trained = train_one(
                dataset, _budget_text(budget, fraction), out, cache, [f"model.init={init}"], run
            )
            results[init][f"{fraction:g}"] = {
                "minutes": trained["minutes"], "figures": trained["figures"],
                "validation": trained["validation"],
                "runs": [str(r) for r in trained["runs"]],
            }  # fmt: skip
            figure = trained["figures"].get(HEADLINE[name])
            print(
                f"  {name} {init} {fraction:g}: {HEADLINE[name]} {figure} ({trained['minutes']:.1f} min)",
                flush=True,
            )
    full = f"{max(fractions):g}"
    curves = out / f"learning_curves_{name}.png"
    plot_side_by_side([Path(results[i][full]["runs"][0]) for i in INITS], INITS, curves, name)
    return {"dataset": name, "headline": HEADLINE[name], "results": results, "curves": str(curves)}


def plot_side_by_side(runs: Sequence[Path], labels: Sequence[str], path: Path, title: str) -> None:
    """Training loss and the validation figures of ``runs`` against their elapsed minutes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_axis, val_axis) = plt.subplots(1, 2, figsize=(11, 4))
    # one colour a run in both panels; a figure's kind by its line style
    styles = {"val_acc": "-", "val_ap": "-", "val_iou": ":"}
    for index, (run, label) in enumerate(zip(runs, labels, strict=True)):
        color = f"C{index}"
        with open(run / "metrics.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        minutes, elapsed = [], 0.0
        for row in rows:
            elapsed += float(row["seconds"]) / 60
            minutes.append(elapsed)
        loss = [float(r["train_loss"]) for r in rows]
        loss_axis.plot(minutes, loss, marker=".", color=color, label=label)
        plotted = False
        for column, style in styles.items():
            points = [(m, float(r[column])) for m, r in zip(minutes, rows, strict=True) if r.get(column)]
            if points:
                xs, ys = zip(*points, strict=True)
                val_axis.plot(xs, ys, marker=".", color=color, linestyle=style, label=f"{label} {column}")
                plotted = True
        if not plotted and rows and rows[0].get("train_acc"):  # a protocol without a validation part (NEU)
            train_acc = [float(r["train_acc"]) for r in rows]
            val_axis.plot(
                minutes, train_acc, marker=".", color=color, linestyle="--", label=f"{label} train_acc"
            )
    loss_axis.set(xlabel="minutes of training", ylabel="training loss", title=f"{title}: training loss")
    val_axis.set(xlabel="minutes of training", ylabel="figure", title=f"{title}: validation (or training)")
    for axis in (loss_axis, val_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="15m", help="the full budget (default 15m)")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS))
    parser.add_argument("--out", type=Path, default=Path("runs/pretraining"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lwcnn-bench")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--replot", action="store_true", help="only draw the curves of finished runs again")
    args = parser.parse_args(argv)
    if args.replot:
        for name in args.only or list(DATASETS):
            runs = [run_folder(args.out, name, init, max(args.fractions)) for init in INITS]
            if all((run / "metrics.csv").exists() for run in runs):
                plot_side_by_side(runs, INITS, args.out / f"learning_curves_{name}.png", name)
        return 0
    rows = []
    for name in args.only or list(DATASETS):
        row = run_dataset(name, args.budget, args.fractions, args.out, args.cache)
        rows.append(row)
        print(_line(row, args.fractions), flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


def _line(row: dict[str, Any], fractions: Sequence[float]) -> str:
    key = row["headline"]

    def figure(init: str, fraction: float) -> str:
        value = row["results"][init][f"{fraction:g}"]["figures"].get(key)
        return "-" if value is None else f"{value:.4f}"

    cells = "  ".join(f"{init} " + " / ".join(figure(init, f) for f in sorted(fractions)) for init in INITS)
    at = " / ".join(f"{f:g}" for f in sorted(fractions))
    return f"{row['dataset']:<12} {key:<9} {cells}   (at {at} of the budget)"


if __name__ == "__main__":
    raise SystemExit(main())
