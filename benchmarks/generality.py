"""Does one command, with no per-dataset keys, give a strong model on each development dataset?
(issue 18). For each dataset: ``lwcnn train DATA --budget B`` as a user would run it (only the
evaluation protocol's split and, where a folder fits two tasks, ``--task`` are given), its test
figures and minutes, and the textbook texture baseline (benchmarks/texture_baseline.py) on the
very same split, fitted on its train + validation images.

    python -m benchmarks.generality --budget 15m --only neu deeppcb --out runs/generality

Needs the ``bench`` extra (scikit-learn, scikit-image, elpv-dataset). ELPV and the synthetic DAGM
set are written once under ``--cache`` (outside the repository).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.texture_baseline import baseline_on_run

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
LWCNN = Path(sys.executable).parent / "lwcnn"  # the console script of this environment


@dataclass(frozen=True)
class Dataset:
    name: str
    data: Callable[[Path], Path]  # the cache folder -> the data folder (written there if needed)
    args: tuple[str, ...] = ()  # the protocol: split, --task where the folder fits two
    figures: tuple[str, ...] = ("accuracy",)
    notes: str = ""
    baseline: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _shared(name: str) -> Callable[[Path], Path]:
    return lambda cache: SHARED / name


def _elpv_class_folders(root: Path, label: Callable[[float], str]) -> Path:
    """ELPV cells written once as class folders under ``root``, ``label`` naming each cell's
    folder from its annotated defect probability."""
    from elpv_dataset.utils import load_dataset
    from PIL import Image

    if (root / ".complete").exists():
        return root
    images, probabilities, kinds = load_dataset()
    for index, (image, probability, kind) in enumerate(zip(images, probabilities, kinds, strict=True)):
        folder = root / label(probability)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"cell{index:04d}_{kind}.png")
    (root / ".complete").touch()
    return root


def elpv_folders(cache: Path) -> Path:
    """ELPV cells as class folders: functional (defect probability < 0.5) and defective."""
    return _elpv_class_folders(cache / "elpv-binary", lambda p: "defective" if p >= 0.5 else "functional")


def elpv_levels(cache: Path) -> Path:
    """ELPV cells as four class folders, one per annotated defect probability (0, 1/3, 2/3, 1)."""
    return _elpv_class_folders(cache / "elpv-levels", lambda p: f"p{round(100 * p):03d}")


def dagm_synth(cache: Path) -> Path:
    root = cache / "dagm-synth"
    if not (root / ".complete").exists():
        subprocess.run(
            [str(LWCNN), "data", "synth", "--out", str(root), "--classes", "4"],
            check=True, cwd=ROOT,
        )  # fmt: skip
        (root / ".complete").touch()
    return root


SEG_FIGURES = ("ap", "macc", "tpr", "tnr", "iou")
DATASETS = {
    d.name: d
    for d in (
        Dataset("neu", _shared("neu"), ("--task", "cls", "data.split={train: 150, test: 150}"),
                notes="the NEU protocol: 150/150 per class, seed 0"),
        Dataset("elpv", elpv_folders, (), notes="functional vs defective (p >= 0.5), stratified 60/20/20"),
        Dataset("elpv-levels", elpv_levels, (), notes="the four defect probabilities, stratified 60/20/20"),
        Dataset("kolektorsdd", _shared("kolektorsdd"),
                ("data.split={folds: configs/splits/kolektorsdd-3fold.json, val: 0.2}",), SEG_FIGURES,
                notes="the committed 3 folds by item; the budget is for all three"),
        Dataset("deeppcb", _shared("deeppcb"), (), SEG_FIGURES,
                notes="the release's test list; boxes as coarse masks; templates defect-free"),
        Dataset("neu-det", _shared("neu"), ("--task", "seg"), SEG_FIGURES,
                notes="NEU-DET boxes as coarse masks: every image defective, so AP/TNR are undefined"),
        Dataset("dagm-synth", dagm_synth, (), SEG_FIGURES, notes="lwcnn data synth, 4 classes"),
    )
}  # fmt: skip


def train_one(
    dataset: Dataset, budget: str, out: Path, cache: Path, extra: Sequence[str] = (), run: Path | None = None
) -> dict[str, Any]:
    """Run the one command (``extra``: keys added after the protocol's, into ``run``, by default
    ``out/NAME``); return its test figures, minutes and the run folders."""
    data = dataset.data(cache)
    run = run or out / dataset.name
    command = ["lwcnn", "train", str(data), "--budget", budget, "--out", str(run), *dataset.args, *extra]
    command.append("--json")
    started = time.monotonic()
    done = subprocess.run([str(LWCNN), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    minutes = (time.monotonic() - started) / 60
    if done.returncode:
        raise SystemExit(f"{dataset.name}: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    if "folds" in summary:  # cross-validation: the mean over folds
        figures = {k: v["mean"] for k, v in summary["metrics"].items()}
        figures |= {f"{k}_std": v["std"] for k, v in summary["metrics"].items()}
        runs = [Path(r) for r in summary["runs"]]
    else:
        figures = {k.removeprefix("test_"): v for k, v in summary.items() if k.startswith("test_")}
        runs = [run]
    # the validation figures of the chosen epoch: what a recipe may be chosen on (never the test's)
    validation = {k.removeprefix("val_"): v for k, v in summary.items() if k.startswith("val_")}
    return {
        "command": " ".join(command), "minutes": minutes, "figures": figures, "validation": validation,
        "runs": runs,
    }  # fmt: skip


def baseline(runs: Sequence[Path]) -> dict[str, Any]:
    """The texture baseline on each run's split, averaged over runs (folds)."""
    results = [baseline_on_run(run) for run in runs]
    keys = [k for k in results[0] if all(isinstance(r.get(k), int | float) for r in results)]
    if "note" in results[0]:
        return {"note": results[0]["note"]}
    return {k: sum(r[k] for r in results) / len(results) for k in keys}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="15m", help="the one command's --budget (default 15m)")
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="these datasets only")
    parser.add_argument("--out", type=Path, default=Path("runs/generality"))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "lwcnn-bench")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    rows = []
    for name in args.only or list(DATASETS):
        dataset = DATASETS[name]
        trained = train_one(dataset, args.budget, args.out, args.cache)
        floor = baseline(trained["runs"])
        row = {"dataset": name, "notes": dataset.notes, **trained, "baseline": floor}
        row["runs"] = [str(r) for r in trained["runs"]]
        rows.append(row)
        print(_line(row, dataset), flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


def _line(row: dict[str, Any], dataset: Dataset) -> str:
    def fmt(source: dict[str, Any], key: str) -> str:
        value = source.get(key)
        return "-" if value is None else f"{value:.4f}"

    keys = [k for k in dataset.figures if k in row["figures"] or k in row["baseline"]]
    figures = "  ".join(f"{k} {fmt(row['figures'], k)} (svm {fmt(row['baseline'], k)})" for k in keys)
    validation = "  ".join(f"val {k} {v:.4f}" for k, v in row["validation"].items() if v is not None)
    return (
        f"{row['dataset']:<12} {row['minutes']:5.1f} min  {figures}  "
        f"[svm {row['baseline'].get('seconds', 0):.0f} s]  {validation}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
