"""The metrics, NumPy only. Classification: accuracy (the paper's Eq. 7), per-class precision and
recall, the confusion matrix. Segmentation: image-level decisions (TPR, TNR, mAcc of the paper's
Eqs. 8-9, per-class TPR for DAGM), average precision of an image score, pixel IoU and Dice.
(:mod:`lwcnn.evaluation.classifier` and :mod:`lwcnn.evaluation.segmenter` run models to get them.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[str]
) -> dict[str, Any]:
    """Accuracy = correct / all predictions (Eq. 7); per class precision and recall (``None`` where
    undefined: no predictions of, or no images of, that class); the confusion matrix as lists."""
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    n = int(matrix.sum())
    correct = int(np.trace(matrix))
    per_class = {}
    for i, name in enumerate(classes):
        predicted, actual = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        per_class[name] = {
            "precision": matrix[i, i] / predicted if predicted else None,
            "recall": matrix[i, i] / actual if actual else None,
            "n": actual,
        }
        per_class[name] = {
            k: (float(v) if isinstance(v, np.floating) else v) for k, v in per_class[name].items()
        }
    return {
        "accuracy": correct / n if n else None,
        "n": n,
        "correct": correct,
        "per_class": per_class,
        "confusion": matrix.tolist(),
        "classes": list(classes),
    }


def format_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """The confusion matrix as text: rows are true classes, columns predictions."""
    width = max(6, *(len(c) for c in classes))
    header = " " * (width + 2) + " ".join(c[:width].rjust(width) for c in classes)
    lines = [header]
    for name, row in zip(classes, matrix, strict=True):
        lines.append(name[:width].rjust(width) + "  " + " ".join(str(v).rjust(width) for v in row))
    return "\n".join(["true \\ predicted", *lines])


# -- segmentation ----------------------------------------------------------------------------------
def image_decisions(
    y_true: Sequence[bool], y_pred: Sequence[bool], groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """Image-level confusion counts, TPR = TP / (TP + FN), TNR = TN / (TN + FP), mAcc = (TPR + TNR) / 2
    (``None`` where a rate has no images to count), accuracy, and TPR per group (DAGM class)."""
    truth, pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    tp, fn = int((truth & pred).sum()), int((truth & ~pred).sum())
    tn, fp = int((~truth & ~pred).sum()), int((~truth & pred).sum())
    tpr = tp / (tp + fn) if tp + fn else None
    tnr = tn / (tn + fp) if tn + fp else None
    macc = (tpr + tnr) / 2 if tpr is not None and tnr is not None else None
    result: dict[str, Any] = {
        "n": int(truth.size),
        "tp": tp,
        "fn": fn,
        "tn": tn,
        "fp": fp,
        "tpr": tpr,
        "tnr": tnr,
        "macc": macc,
        "accuracy": (tp + tn) / truth.size if truth.size else None,
    }
    if groups is not None:
        labels = np.asarray(groups)
        per_group = {}
        for group in sorted(set(labels.tolist())):
            positives = truth & (labels == group)
            per_group[group] = float((positives & pred).sum() / positives.sum()) if positives.any() else None
        result["tpr_per_group"] = per_group
    return result


def average_precision(y_true: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the precision-recall curve as the sum over score thresholds of
    (recall step) x precision, ties counted together (scikit-learn's definition). None without
    positives."""
    truth = np.asarray(y_true, bool)
    score = np.asarray(scores, float)
    if not truth.any():
        return None
    order = np.argsort(-score, kind="stable")
    truth, score = truth[order], score[order]
    # the last index of each run of equal scores: thresholds between distinct scores
    ends = np.r_[np.flatnonzero(np.diff(score)), truth.size - 1]
    tps = np.cumsum(truth)[ends]
    precision = tps / (ends + 1)
    # the recall steps as counts, divided once: summing float steps of 1/n gave 0.9999999999999999
    # for a perfect ranking, below the 1.0 of another epoch, and that picked the kept epoch
    return float(np.sum(np.diff(np.r_[0, tps]) * precision) / truth.sum())


def pixel_overlap(truth: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    """IoU and Dice of two bool masks of one image (1.0 and 1.0 when both are empty)."""
    t, p = np.asarray(truth, bool), np.asarray(prediction, bool)
    intersection = int((t & p).sum())
    union = int((t | p).sum())
    total = int(t.sum() + p.sum())
    if union == 0:
        return 1.0, 1.0
    return intersection / union, 2 * intersection / total
