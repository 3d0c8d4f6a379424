"""Test-time views for classifiers: does averaging the class probabilities of flipped and turned
copies of each image help a trained classifier? Validation parts only (what a default would be
chosen on).

For each run folder given (a classifier trained by ``lwcnn train``), the images of its own
validation part are read as evaluation reads them, and the engine's class probabilities are
averaged over four view sets: the image alone; with its left-right mirror; the four flips
(mirrors and the half turn); all eight symmetries of a square (flips and transposes). The one
command's classifiers train on exactly these copies (flips and quarter turns), so the views are
in their training distribution. Prints validation accuracy and mean cross-entropy per set.

    python -m benchmarks.test_time_views runs/gen7/elpv-levels runs/pool/neu/avgmax ...
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

import numpy as np

from lwcnn.checkpoints import read_metadata
from lwcnn.data.classification import scan_classification
from lwcnn.data.datasets import ClassificationDataset
from lwcnn.data.splits import Split
from lwcnn.runtime.engine import Inspector

VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "left_right": lambda a: a[:, ::-1],
    "top_bottom": lambda a: a[::-1],
    "half_turn": lambda a: a[::-1, ::-1],
    "transpose": lambda a: a.swapaxes(0, 1),
    "transpose_left_right": lambda a: a.swapaxes(0, 1)[:, ::-1],
    "transpose_top_bottom": lambda a: a.swapaxes(0, 1)[::-1],
    "transpose_half_turn": lambda a: a.swapaxes(0, 1)[::-1, ::-1],
}
SETS = {
    "none": ("identity",),
    "mirror": ("identity", "left_right"),
    "flips": ("identity", "left_right", "top_bottom", "half_turn"),
    "dihedral": tuple(VIEWS),
}


def evaluate_run(run: str) -> dict[str, dict[str, float]]:
    """Validation accuracy and cross-entropy of each view set for the run's best model."""
    meta = read_metadata(f"{run}/best")
    inspector = Inspector(f"{run}/best", batch_size=64)
    images = scan_classification(meta["data"]["root"], meta["data"].get("layout", "auto"))
    images = images.subset(Split.from_dict(meta["split"]).indices(images, "val"))
    dataset = ClassificationDataset(images, inspector.preprocessing)
    read = [dataset.read(i) for i in range(len(dataset))]
    labels = np.asarray(images.labels)
    per_view = {
        name: inspector.class_probabilities([np.ascontiguousarray(view(a)) for a in read])
        for name, view in VIEWS.items()
    }
    figures = {}
    for name, views in SETS.items():
        probabilities = np.mean([per_view[v] for v in views], axis=0)
        picked = probabilities[np.arange(len(labels)), labels]
        figures[name] = {
            "accuracy": float((probabilities.argmax(axis=1) == labels).mean()),
            "loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
            "n": len(labels),
        }
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders of trained classifiers")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = {}
    for run in args.runs:
        results[run] = evaluate_run(run)
        print(f"{run}: done", file=sys.stderr)
    if args.json:
        print(json.dumps(results))
        return 0
    print("| run (validation part) | images | " + " | ".join(SETS) + " |")
    print("|---|---|" + "---|" * len(SETS))
    for run, figures in results.items():
        cells = [f"{f['accuracy']:.4f} ({f['loss']:.3f})" for f in figures.values()]
        print(f"| {run} | {figures['none']['n']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
