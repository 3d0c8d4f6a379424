"""NEU-DET boxes as coarse masks (the paper's Wood-set protocol, Section 4.5): train on half the
images, evaluate accuracy (Eq. 10), error escape rate, per-class TPR and pixel IoU against the
boxes on the other half. Prints a table; writes summary.json in the run folder.

    python benchmarks/neu_det_boxes.py --out runs/bench-neu-det
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lwcnn(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "lwcnn", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lwcnn {args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-neu-det")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "neu"))
    parser.add_argument("--model", default="lw@0.35")
    args = parser.parse_args()
    run = Path(args.out) / args.model.replace("@", "")
    started = time.perf_counter()
    if not (run / "best.json").is_file():
        overrides = [f"out={run}", f"data.root={args.data}", f"model.name={args.model}"]
        lwcnn("train", "--config", "configs/neu-det-boxes.yaml", *overrides, "--json")
    minutes = (time.perf_counter() - started) / 60
    report = json.loads(
        lwcnn("evaluate", "--weights", str(run), "--data", args.data, "--split", "test", "--json")
    )
    row = {
        "model": args.model,
        "n": report["n"],
        "accuracy": report["accuracy"],
        "escape_rate": report["escape_rate"],
        "iou": report["iou"],
        "dice": report["dice"],
        "tpr_per_class": report["tpr_per_group"],
        "train_minutes": minutes,
    }
    print(f"model {row['model']}: {row['n']} test images")
    print(f"accuracy (Eq. 10) {row['accuracy']:.4f}   error escape rate {row['escape_rate']:.4f}")
    print(f"pixel IoU vs boxes {row['iou']:.4f}   Dice {row['dice']:.4f}   training {minutes:.1f} min")
    for name, tpr in row["tpr_per_class"].items():
        print(f"  TPR {name:16s} {tpr:.4f}")
    (run / "summary.json").write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
