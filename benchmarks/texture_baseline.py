"""The textbook floor lwcnn must beat on every dataset: texture features and an SVM (issue 18).

Each image is read gray and resized to 128 x 128; its features are uniform LBP histograms at radii
1, 2 and 3 (8, 16, 24 points), a HOG descriptor and four intensity percentiles, standardised; an
RBF SVM's C and gamma are chosen by 3-fold cross-validation on the training and validation images
together (the CNN uses its validation part to choose its epoch: both see the same images). Needs the
``bench`` extra (scikit-learn, scikit-image).

    python -m benchmarks.texture_baseline --run runs/x --data DATA    # the run's own split
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SIDE = 128
RADII = (1, 2, 3)
PERCENTILES = (5, 25, 75, 95)


def texture_features(image: np.ndarray) -> np.ndarray:
    """LBP histograms (uniform, radii 1-3), HOG and intensity percentiles of a gray uint8 image."""
    from skimage.feature import hog, local_binary_pattern

    small = np.asarray(Image.fromarray(image).resize((SIDE, SIDE), Image.BILINEAR), dtype=np.uint8)
    parts = []
    for radius in RADII:
        points = 8 * radius
        codes = local_binary_pattern(small, points, radius, method="uniform")
        histogram, _ = np.histogram(codes, bins=points + 2, range=(0, points + 2), density=True)
        parts.append(histogram)
    parts.append(hog(small, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2)))
    parts.append(np.percentile(small, PERCENTILES) / 255.0)
    return np.concatenate(parts).astype(np.float32)


def fit_svm(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> Any:
    """Standardise + RBF SVM, C and gamma by 3-fold stratified CV (probabilities for AP)."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    grid = {"svc__C": [1, 10, 100], "svc__gamma": ["scale", 0.001, 0.01]}
    search = GridSearchCV(
        make_pipeline(StandardScaler(), SVC(kernel="rbf", random_state=seed)),
        grid,
        cv=StratifiedKFold(3, shuffle=True, random_state=seed),
        n_jobs=1,
    )
    return search.fit(features, labels).best_estimator_


def read_gray(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def run_baseline(
    root: Path, train: Sequence[str], test: Sequence[str], labels: dict[str, int], defect_free: int | None
) -> dict[str, Any]:
    """Fit on ``train`` (paths relative to ``root``), score ``test``: accuracy, and for a binary
    defect-vs-free reading (``defect_free``: that label's index) AP, TPR, TNR, mAcc."""
    from sklearn.metrics import average_precision_score

    started = time.perf_counter()
    if len({labels[p] for p in train}) < 2:  # e.g. NEU-DET as masks: every image defective
        return {"n": len(test), "note": "one class in the training images: nothing for an SVM to separate"}
    x_train = np.stack([texture_features(read_gray(root / p)) for p in train])
    y_train = np.array([labels[p] for p in train])
    x_test = np.stack([texture_features(read_gray(root / p)) for p in test])
    y_test = np.array([labels[p] for p in test])
    model = fit_svm(x_train, y_train)
    predicted = model.predict(x_test)
    result: dict[str, Any] = {"n": len(test), "accuracy": float((predicted == y_test).mean())}
    if defect_free is not None:
        truth = y_test != defect_free
        if len(set(y_train)) == 2:
            score = model.decision_function(x_test) * (1 if model.classes_[1] != defect_free else -1)
        else:  # several defect kinds: the margin of "not defect-free"
            column = list(model.classes_).index(defect_free)
            score = -model.decision_function(x_test)[:, column]
        called = predicted != defect_free
        tpr = float(called[truth].mean()) if truth.any() else None
        tnr = float((~called[~truth]).mean()) if (~truth).any() else None
        result |= {
            "ap": float(average_precision_score(truth, score)) if truth.any() and (~truth).any() else None,
            "tpr": tpr,
            "tnr": tnr,
            "macc": (tpr + tnr) / 2 if tpr is not None and tnr is not None else None,
        }
    result["seconds"] = time.perf_counter() - started
    return result


def run_split_labels(run: Path) -> tuple[dict[str, list[str]], dict[str, int], int | None]:
    """The parts of a run's split and each image's label (classifier: its class; segmenter: 1 for a
    defective image), and the defect-free label (a classifier's class named like 'good'/'ok'/'free')."""
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    meta = json.loads((run / "best.json").read_text(encoding="utf-8"))
    parts = {name: list(paths) for name, paths in split["parts"].items()}
    if meta["task"] == "seg":
        from lwcnn.data.masked_images import scan_segmentation

        images = scan_segmentation(meta["data"]["root"], meta["data"]["layout"])
        labels = {s.image.as_posix(): int(s.defective) for s in images.samples}
        return parts, labels, 0
    from lwcnn.data.classification import scan_classification

    images = scan_classification(meta["data"]["root"], meta["data"]["layout"])
    labels = {p.as_posix(): y for p, y in zip(images.paths, images.labels, strict=True)}
    free = next((i for i, c in enumerate(images.classes) if c.lower() in FREE_NAMES), None)
    return parts, labels, free


#: Class folder names read as "defect-free" for the binary figures.
FREE_NAMES = {"good", "ok", "free", "defect-free", "defect_free", "functional", "normal", "none"}


def baseline_on_run(run: Path) -> dict[str, Any]:
    """The baseline on a trained run's own split (train + val to fit, test to score)."""
    meta = json.loads((run / "best.json").read_text(encoding="utf-8"))
    parts, labels, free = run_split_labels(run)
    train = parts.get("train", []) + parts.get("val", [])
    return run_baseline(Path(meta["data"]["root"]), train, parts["test"], labels, free)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="a trained run folder (its split.json)")
    args = parser.parse_args(argv)
    print(json.dumps(baseline_on_run(args.run)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
