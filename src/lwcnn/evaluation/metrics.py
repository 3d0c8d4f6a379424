"""Classification metrics (NumPy only): accuracy (the paper's Eq. 7), per-class precision and
recall, the confusion matrix."""

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
