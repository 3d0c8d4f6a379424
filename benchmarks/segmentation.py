"""Segmentation benchmarks (issue 4), each through the commands a user runs (``lwcnn train``,
``lwcnn calibrate``, ``lwcnn evaluate``); a table on stdout and ``summary-*.json`` in ``--out``.

KolektorSDD, 3-fold cross-validation by item (``configs/kolektorsdd.yaml``): train on two folds,
calibrate the threshold on the validation items (no escapes), evaluate the held-out fold. "small
TPR" is the TPR on the smallest third of the fold's defects by area (the tiny-defect figure of the
paper's Table 6):

    python benchmarks/segmentation.py kolektorsdd --out runs/bench-ksdd
    python benchmarks/segmentation.py kolektorsdd --out runs/bench-ksdd --folds 0 --model mobilenetv2@0.35
    python benchmarks/segmentation.py kolektorsdd --out runs/bench-ksdd --folds 0 --no-gradual

NEU-DET's boxes as coarse masks (the paper's Wood-set protocol, ``configs/neu-det-boxes.yaml``):
train on half the images, accuracy (Eq. 10), error escape rate, TPR per defect class and pixel IoU
against the boxes on the other half:

    python benchmarks/segmentation.py neu-det --out runs/bench-neu-det

A run folder that already holds a finished run is evaluated again, not retrained; an interrupted
one is resumed. "train min" sums the epochs' times (training and validation) from metrics.csv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from lwcnn.tables import format_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def lwcnn(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "lwcnn", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lwcnn {args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def train(run: Path, config: str, overrides: list[str]) -> float:
    """Train (or resume, or keep) the run; returns the minutes its epochs took."""
    finished = (run / "best.json").is_file() and "test_ap" in json.loads((run / "best.json").read_text())[
        "metrics"
    ]
    if not finished:
        if (run / "resume.pt").is_file():
            lwcnn("train", "--resume", str(run), "--json")
        else:
            lwcnn("train", "--config", config, f"out={run}", *overrides, "--json")
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    return sum(float(r.split(",")[-1]) for r in rows) / 60


def small_defect_tpr(images: list[dict]) -> float | None:
    defective = sorted((i for i in images if i["defective"]), key=lambda i: i["true_area"])
    third = defective[: max(1, len(defective) // 3)]
    return float(np.mean([i["predicted"] for i in third])) if third else None


def kolektorsdd(args: argparse.Namespace) -> list[dict]:
    data = args.data or str(SHARED / "kolektorsdd")
    rows = []
    for fold in args.folds:
        tag = f"{args.model.replace('@', '')}-{'plain' if args.no_gradual else 'gradual'}-fold{fold}"
        run = Path(args.out) / tag
        overrides = [f"data.root={data}", f"model.name={args.model}", f"data.split.test_fold={fold}"]
        overrides += ["gradual.enabled=false"] if args.no_gradual else []
        minutes = train(run, "configs/kolektorsdd.yaml", overrides + args.set)
        calibration = json.loads(lwcnn("calibrate", "--weights", str(run), "--data", data, "--json"))
        report = json.loads(
            lwcnn("evaluate", "--weights", str(run), "--data", data, "--split", "test", "--json")
        )
        rows.append(
            {
                "fold": fold,
                "model": args.model,
                "gradual": "yes" if not args.no_gradual else "no",
                "n": report["n"],
                "defective": report["tp"] + report["fn"],
                **{k: report[k] for k in ("ap", "macc", "tpr", "tnr", "iou", "dice", "escape_rate")},
                "small_tpr": small_defect_tpr(report["images"]),
                "threshold": calibration["threshold"],
                "train_minutes": minutes,
                "run": str(run),
            }
        )
    columns = [
        ("fold", "fold", "d"),
        ("model", "model"),
        ("gradual", "gradual"),
        ("n", "n", "d"),
        ("defective", "defective", "d"),
        ("ap", "AP", ".4f"),
        ("macc", "mAcc", ".4f"),
        ("tpr", "TPR", ".4f"),
        ("tnr", "TNR", ".4f"),
        ("small_tpr", "small TPR", ".4f"),
        ("iou", "IoU", ".4f"),
        ("threshold", "threshold", ".4f"),
        ("train_minutes", "train min", ".1f"),
    ]
    print(format_table(rows, columns))
    if len(rows) > 1:
        mean_ap, mean_macc = np.mean([r["ap"] for r in rows]), np.mean([r["macc"] for r in rows])
        print(f"mean AP {mean_ap:.4f}, mean mAcc {mean_macc:.4f}")
    return rows


def neu_det(args: argparse.Namespace) -> list[dict]:
    data = args.data or str(SHARED / "neu")
    run = Path(args.out) / args.model.replace("@", "")
    minutes = train(
        run, "configs/neu-det-boxes.yaml", [f"data.root={data}", f"model.name={args.model}", *args.set]
    )
    report = json.loads(lwcnn("evaluate", "--weights", str(run), "--data", data, "--split", "test", "--json"))
    row = {
        "model": args.model,
        **{k: report[k] for k in ("n", "accuracy", "escape_rate", "iou", "dice")},
        **{f"tpr {name}": tpr for name, tpr in report["tpr_per_group"].items()},
        "train_minutes": minutes,
    }
    columns = [
        ("model", "model"),
        ("n", "n", "d"),
        ("accuracy", "accuracy (Eq. 10)", ".4f"),
        ("escape_rate", "escape rate", ".4f"),
        ("iou", "IoU vs boxes", ".4f"),
        ("dice", "Dice", ".4f"),
        ("train_minutes", "train min", ".1f"),
    ]
    print(format_table([row], columns))
    print(
        format_table(
            [{"class": k[4:], "tpr": v} for k, v in row.items() if k.startswith("tpr ")],
            [("class", "defect class"), ("tpr", "TPR", ".4f")],
        )
    )
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="benchmark", required=True)
    for name in ("kolektorsdd", "neu-det"):
        sub = commands.add_parser(name)
        sub.add_argument("--out", default=f"runs/bench-{name}")
        sub.add_argument("--data", help="dataset folder (default: ../shared/datasets/...)")
        sub.add_argument("--model", default="lw@0.35")
        sub.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra config overrides")
        if name == "kolektorsdd":
            sub.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
            sub.add_argument("--no-gradual", action="store_true", help="without gradual training (ablation)")
    args = parser.parse_args()
    rows = kolektorsdd(args) if args.benchmark == "kolektorsdd" else neu_det(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.model.replace("@", "") + ("-plain" if getattr(args, "no_gradual", False) else "")
    (out / f"summary-{args.benchmark}-{tag}.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
