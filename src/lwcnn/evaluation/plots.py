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
    x: str = "epoch",
) -> Path:
    """One panel per (title, y label, columns) of a run's ``metrics.csv``, one line per column
    against the column ``x`` (the epoch; a pretraining run's step); empty cells (no validation)
    are left out."""
    with open(metrics_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    epochs = [int(r[x]) for r in rows]
    for axis, (name, ylabel, columns) in zip(axes[0], panels, strict=True):
        for key in columns:
            values = [float(r[key]) if r.get(key) not in (None, "") else None for r in rows]
            points = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
            if points:
                axis.plot(*zip(*points, strict=True), marker=".", label=_label(key))
        axis.set(xlabel=x, ylabel=ylabel, title=name)
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


def plot_tradeoff(
    points: Sequence[dict], path: str | Path, target: float | None = None, part: str = "val"
) -> Path:
    """Escape rate (defective images passed as OK) against false-alarm rate (good images rejected),
    one step per defective image the threshold lets through; the chosen target marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    shown = [p for p in points if p["false_alarm_rate"] is not None]
    if shown:
        ax.step(
            [p["escape_rate"] for p in shown], [p["false_alarm_rate"] for p in shown],
            where="post", marker="o",
        )  # fmt: skip
    if target is not None:
        ax.axvline(target, color="tab:red", linestyle="--", label=f"target escape rate {target:.1%}")
        ax.legend()
    ax.set(
        xlabel="escape rate (defective images passed)", ylabel="false-alarm rate (good images rejected)",
        title=f"threshold trade-off on the {part} images", ylim=(-0.02, 1.02),
    )  # fmt: skip
    ax.grid(alpha=0.3)
    return _save(fig, path)
