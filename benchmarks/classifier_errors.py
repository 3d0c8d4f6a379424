"""Where a classifier's errors lie: the images of its split's parts counted by a finer labelling
of the same files.

A coarse label often hides how sure the annotators were. ELPV's functional / defective cells
come from four defect probabilities (0, 1/3, 2/3, 1): are the errors on the cells the experts
themselves were unsure of (which no model can fix), or on cells they called defective without
doubt (which a better model would)? For each run folder given (a classifier trained by
``lwcnn train``), the images of its validation and test parts (``--parts``: also ``train``, to see
whether the model fits them at all) are read as evaluation reads them, classified by the run's
best model, and counted by the class folder that holds a file of the same name under ``--finer``
(ELPV: the generality benchmark's ``elpv-levels`` cache).

    python -m benchmarks.classifier_errors runs/elpv --finer ~/.cache/lwcnn-bench/elpv-levels
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lwcnn.checkpoints import read_metadata
from lwcnn.data.classification import scan_classification
from lwcnn.data.datasets import ClassificationDataset
from lwcnn.data.splits import Split
from lwcnn.evaluation.classifier import predict_probabilities
from lwcnn.runtime.engine import Inspector


def finer_labels(folder: str | Path) -> dict[str, str]:
    """File name -> the name of the class folder that holds it in ``folder``."""
    labels: dict[str, str] = {}
    for path in sorted(Path(folder).glob("*/*")):
        if path.name in labels:
            raise SystemExit(f"{folder}: {path.name} is in two class folders")
        labels[path.name] = path.parent.name
    return labels


def count_errors(
    run: str, finer: dict[str, str], parts: Sequence[str] = ("val", "test")
) -> dict[str, dict[str, dict[str, float]]]:
    """Per part of the run's split and finer label: images, errors, the coarse class they belong to, and
    the median probability the model gave that class."""
    meta = read_metadata(f"{run}/best")
    inspector = Inspector(f"{run}/best", batch_size=64)
    every = scan_classification(meta["data"]["root"], meta["data"].get("layout", "auto"))
    split = Split.from_dict(meta["split"])
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for part in parts:
        images = every.subset(split.indices(every, part))
        if not len(images):
            continue
        dataset = ClassificationDataset(images, inspector.preprocessing)
        probabilities = predict_probabilities(inspector, dataset)
        labels = np.asarray(images.labels)
        right = probabilities.argmax(axis=1) == labels
        truth = probabilities[np.arange(len(labels)), labels]
        groups: dict[str, list[int]] = {}
        for i, path in enumerate(images.paths):
            name = Path(path).name
            if name not in finer:
                raise SystemExit(f"{path}: no file of this name under the finer labels' folder")
            groups.setdefault(finer[name], []).append(i)
        figures[part] = {
            group: {
                "class": every.classes[int(labels[members[0]])],
                "images": len(members),
                "errors": int((~right[members]).sum()),
                "median_p_class": float(np.median(truth[members])),
            }
            for group, members in sorted(groups.items())
        }
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders of trained classifiers")
    parser.add_argument("--finer", required=True, help="class folders of the same files, finer labels")
    parser.add_argument(
        "--parts", nargs="+", default=["val", "test"], help="parts of the split (train: can it fit them?)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    finer = finer_labels(args.finer)
    results = {run: count_errors(run, finer, args.parts) for run in args.runs}
    if args.json:
        print(json.dumps(results, indent=1))
        return 0
    print("| run | part | finer label | class | images | errors | error rate | median p(class) |")
    print("|---|---|---|---|---|---|---|---|")
    for run, parts in results.items():
        for part, groups in parts.items():
            for group, f in groups.items():
                print(
                    f"| {run} | {part} | {group} | {f['class']} | {f['images']} | {f['errors']} | "
                    f"{f['errors'] / f['images']:.3f} | {f['median_p_class']:.2f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
