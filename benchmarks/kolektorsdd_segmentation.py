"""KolektorSDD, 3-fold cross-validation by item: train, calibrate on the fold's validation items,
evaluate on the held-out fold; print a table (and write summary.json in --out).

    python benchmarks/kolektorsdd_segmentation.py --out runs/bench-ksdd
    python benchmarks/kolektorsdd_segmentation.py --out runs/bench-ksdd --folds 0 --model mobilenetv2@0.35
    python benchmarks/kolektorsdd_segmentation.py --out runs/bench-ksdd --folds 0 --no-gradual

Each fold runs ``lwcnn train --config configs/kolektorsdd.yaml``, ``lwcnn calibrate`` (threshold for
no escapes on the validation items) and ``lwcnn evaluate --split test --json``: the commands a user
runs. A fold whose run folder already holds a finished run is evaluated again, not retrained; an
interrupted one is resumed. "small TPR" is the TPR on the smallest third of the fold's defects by
area (the tiny-defect figure of the paper's Table 6).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def lwcnn(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "lwcnn", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lwcnn {args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def small_defect_tpr(images: list[dict]) -> float | None:
    defective = sorted((i for i in images if i["defective"]), key=lambda i: i["true_area"])
    third = defective[: max(1, len(defective) // 3)]
    return float(np.mean([i["predicted"] for i in third])) if third else None


def run_fold(args: argparse.Namespace, fold: int) -> dict:
    tag = f"{args.model.replace('@', '')}-{'gradual' if not args.no_gradual else 'plain'}-fold{fold}"
    run = Path(args.out) / tag
    overrides = [
        f"out={run}",
        f"data.root={args.data}",
        f"model.name={args.model}",
        f"data.split.test_fold={fold}",
    ]
    if args.no_gradual:
        overrides.append("gradual.enabled=false")
    overrides += args.set
    started = time.perf_counter()
    finished = (run / "best.json").is_file() and "test_ap" in json.loads((run / "best.json").read_text())[
        "metrics"
    ]
    if not finished:
        if (run / "resume.pt").is_file():
            lwcnn("train", "--resume", str(run), "--json")
        else:
            lwcnn("train", "--config", "configs/kolektorsdd.yaml", *overrides, "--json")
    train_seconds = sum(float(r.split(",")[-1]) for r in (run / "metrics.csv").read_text().splitlines()[1:])
    wall = time.perf_counter() - started
    calibration = json.loads(lwcnn("calibrate", "--weights", str(run), "--data", args.data, "--json"))
    report = json.loads(
        lwcnn("evaluate", "--weights", str(run), "--data", args.data, "--split", "test", "--json")
    )
    return {
        "fold": fold,
        "model": args.model,
        "gradual": not args.no_gradual,
        "run": str(run),
        "n": report["n"],
        "defective": report["tp"] + report["fn"],
        "ap": report["ap"],
        "macc": report["macc"],
        "tpr": report["tpr"],
        "tnr": report["tnr"],
        "small_tpr": small_defect_tpr(report["images"]),
        "iou": report["iou"],
        "dice": report["dice"],
        "escape_rate": report["escape_rate"],
        "threshold": calibration["threshold"],
        "train_minutes": train_seconds / 60,
        "wall_minutes": wall / 60 if not finished else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-ksdd")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "kolektorsdd"))
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="lw@0.35")
    parser.add_argument("--no-gradual", action="store_true", help="train without gradual training (ablation)")
    parser.add_argument("--set", nargs="*", default=[], metavar="key=value", help="extra config overrides")
    args = parser.parse_args()
    rows = [run_fold(args, fold) for fold in args.folds]
    header = (
        "fold model             gradual   n  def     AP   mAcc    TPR    TNR  smallTPR   IoU  thresh"
        "  train min"
    )
    print(header)
    for r in rows:
        print(
            f"{r['fold']:4d} {r['model']:17s} {r['gradual']!s:7s} {r['n']:3d} {r['defective']:4d} "
            f"{r['ap']:.4f} {r['macc']:.4f} {r['tpr']:.4f} {r['tnr']:.4f} {r['small_tpr']:9.4f} "
            f"{r['iou']:.4f} {r['threshold']:.4f} {r['train_minutes']:9.1f}"
        )
    if len(rows) > 1:
        print(
            f"mean {'':17s} {'':7s} {'':3s} {'':4s} {np.mean([r['ap'] for r in rows]):.4f} "
            f"{np.mean([r['macc'] for r in rows]):.4f}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"summary-{args.model.replace('@', '')}-{'plain' if args.no_gradual else 'gradual'}.json"
    (out / name).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
