"""Segmentation metrics (NumPy only): image-level decisions (TPR, TNR, mAcc of the paper's
Eqs. 8-9, per-class TPR for DAGM), average precision of an image score, pixel IoU and Dice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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
    recall = tps / truth.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def pixel_overlap(truth: np.ndarray, prediction: np.ndarray) -> tuple[float, float]:
    """IoU and Dice of two bool masks of one image (1.0 and 1.0 when both are empty)."""
    t, p = np.asarray(truth, bool), np.asarray(prediction, bool)
    intersection = int((t & p).sum())
    union = int((t | p).sum())
    total = int(t.sum() + p.sum())
    if union == 0:
        return 1.0, 1.0
    return intersection / union, 2 * intersection / total
