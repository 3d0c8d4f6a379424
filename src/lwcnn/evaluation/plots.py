"""PNG plots a person can open: learning curves, confusion matrices."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from lwcnn.fileio import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


#: The classifier's panels: (title, y label, metrics.csv columns).
CLASSIFIER_CURVES = (
    ("loss", "cross-entropy", ("train_loss", "val_loss")),
    ("accuracy", "accuracy", ("train_acc", "val_acc")),
)


def plot_learning_curves(
    metrics_csv: str | Path,
    path: str | Path,
    panels: Sequence[tuple[str, str, Sequence[str]]] = CLASSIFIER_CURVES,
    title: str = "",
) -> Path:
    """One panel per (title, y label, columns) of a run's ``metrics.csv``, one line per column
    against the epoch (empty cells, e.g. no validation, are left out)."""
    with open(metrics_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    epochs = [int(r["epoch"]) for r in rows]
    for axis, (name, ylabel, columns) in zip(axes[0], panels, strict=True):
        for key in columns:
            values = [float(r[key]) if r.get(key) not in (None, "") else None for r in rows]
            points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
            if points:
                axis.plot(*zip(*points, strict=True), marker=".", label=_label(key))
        axis.set(xlabel="epoch", ylabel=ylabel, title=name)
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _label(column: str) -> str:
    """``val_acc`` -> ``validation acc``, ``train_loss`` -> ``train loss``."""
    part, _, rest = column.partition("_")
    return f"{'validation' if part == 'val' else part} {rest}".strip()


def plot_confusion(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """A confusion matrix with counts in the cells (rows: true class, columns: prediction)."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(matrix)
    size = max(4.0, 0.7 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix")
    top = counts.max() if counts.size else 0
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    return _save(fig, path)
