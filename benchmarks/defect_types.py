"""Which defect, where (issue 20): a segmenter with one output per defect type against the one-type
model, each trained by the one command with the same budget on the same split.

For each dataset (DeepPCB's six types; NEU-DET's six classes as types, boxes as coarse masks):
``lwcnn train DATA --budget B`` with ``data.types=typed`` (one output per type) and with
``data.types=merged`` (one type, the default), then ``lwcnn evaluate`` of each on its test part:
the image-level figures side by side (types must not cost image-level accuracy), and for the
typed model per-type image TPR and pixel IoU against the boxes, and the type confusion matrix.
``--type-weights 1 0.25`` adds a typed arm per weight of the "which type" term
(``train.type_weight``); the validation figures of each run's chosen epoch stand beside the test
figures, since a default is chosen on them.

    python -m benchmarks.defect_types --budget 15m --out runs/defect-types
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
LWCNN = Path(sys.executable).parent / "lwcnn"
DATASETS = {"deeppcb": (SHARED / "deeppcb", ()), "neu-det": (SHARED / "neu", ("--task", "seg"))}
ARMS = {"types": ("data.types=typed",), "merged": ("data.types=merged",)}


def run(command: list[str]) -> dict[str, Any]:
    done = subprocess.run([str(LWCNN), *command], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"lwcnn {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_arm(
    name: str, arm: str, budget: str, out: Path, reuse: bool = False, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    data, args = DATASETS[name]
    folder = out / f"{name}-{arm}"
    overrides = tuple(overrides) or ARMS[arm]
    command = ["train", str(data), "--budget", budget, "--out", str(folder), *args, *overrides, "--json"]
    if reuse and (folder / "best.json").is_file():  # trained already: its epochs and minutes from its files
        rows = (folder / "metrics.csv").read_text().splitlines()
        trained = {"epochs": int(rows[-1].split(",")[0]), "reused": True}
        minutes = ((folder / "best.json").stat().st_mtime - (folder / "split.json").stat().st_mtime) / 60
    else:
        started = time.monotonic()
        trained = run(command)
        minutes = (time.monotonic() - started) / 60
    report = run(["evaluate", "--weights", str(folder / "best"), "--data", str(data), "--json"])
    report.pop("images", None)
    chosen = json.loads((folder / "best.json").read_text())["metrics"]
    return {
        "dataset": name,
        "arm": arm,
        "command": "lwcnn " + " ".join(command),
        "minutes": minutes,
        "train": trained,
        "val": {k: chosen.get(f"val_{k}") for k in ("ap", "macc", "tpr", "tnr", "iou")},
        "test": report,
    }


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [
        "| dataset | model | epochs | minutes | val AP | val mAcc | val IoU | image AP | mAcc | TPR | TNR "
        "| pixel IoU | type accuracy |"
    ]
    lines.append("|---" * 13 + "|")
    for row in results.values():
        test, types, val = row["test"], row["test"].get("defect_types") or {}, row.get("val", {})
        lines.append(
            f"| {row['dataset']} | {row['arm']} | {row['train']['epochs']} | {row['minutes']:.1f} | "
            f"{fmt(val.get('ap'))} | {fmt(val.get('macc'))} | {fmt(val.get('iou'))} | "
            f"{fmt(test['ap'])} | {fmt(test['macc'])} | {fmt(test['tpr'])} | "
            f"{fmt(test['tnr'])} | {fmt(test['iou'])} | {fmt(types.get('type_accuracy'))} |"
        )
    for key, row in results.items():
        types = row["test"].get("defect_types")
        if not types:
            continue
        lines += [
            "",
            f"{key}: per type (test part)",
            "",
            "| type | images | TPR | IoU | Dice |",
            "|---|---|---|---|---|",
        ]
        for name, figures in types["types"].items():
            lines.append(
                f"| {name} | {figures['images']} | {fmt(figures['tpr'])} | {fmt(figures['iou'])} | "
                f"{fmt(figures['dice'])} |"
            )
        labels = types["confusion"]["labels"]
        lines += ["", "| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for label, counts in zip(labels, types["confusion"]["matrix"], strict=True):
            lines.append(f"| {label} | " + " | ".join(str(c) for c in counts) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="15m")
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS))
    parser.add_argument("--arms", nargs="*", choices=sorted(ARMS), default=list(ARMS))
    parser.add_argument(
        "--type-weights", nargs="*", type=float, default=[], help="a typed arm per train.type_weight"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/defect-types"))
    parser.add_argument(
        "--reuse", action="store_true", help="evaluate runs trained already (minutes from their files)"
    )
    args = parser.parse_args(argv)
    arms = {arm: ARMS[arm] for arm in args.arms}
    for weight in args.type_weights:
        arms[f"types-w{weight:g}"] = ("data.types=typed", f"train.type_weight={weight:g}")
    results = {}
    for name in args.only or DATASETS:
        for arm, overrides in arms.items():
            row = one_arm(name, arm, args.budget, args.out, args.reuse, overrides)
            results[f"{name}-{arm}"] = row
            print(f"{name} {arm}: done in {row['minutes']:.1f} min", file=sys.stderr)
    (args.out / "defect_types.json").write_text(json.dumps(results, indent=1, default=str))
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
