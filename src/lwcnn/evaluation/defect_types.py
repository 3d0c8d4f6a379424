"""Figures per defect type for a segmenter with K types: does it find each kind, and call it right?

Per type: the image TPR (of the images whose truth holds the type, the share in which the model
found a region of that type and flagged the image), and pixel IoU and Dice (the type's predicted
pixels against its true ones, summed over the images). And the type confusion matrix over
defects: every true defect (a connected region of the truth) is counted under its type (rows)
and the type the model gave most of its pixels (columns), ``none`` where the model found none of
it (missed); every predicted region that touches no true defect is counted in the ``none`` row (a
false region) under its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from lwcnn.runtime.engine import Inspection

NONE = "none"
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connected regions, as the engine finds them


@dataclass(frozen=True)
class TypeOutcome:
    """One image's types: present in the truth, found by the model, pixel counts per type
    (intersection, truth, prediction: (K, 3)), and the (true, predicted) type pair of each defect
    (0 on either side: none)."""

    truth: tuple[int, ...]
    found: tuple[int, ...]
    flagged: bool
    pixels: np.ndarray
    pairs: tuple[tuple[int, int], ...]


def type_outcome(truth: np.ndarray, result: Inspection, types: int) -> TypeOutcome:
    """Compare a class-index truth (H, W) with an inspection's type mask."""
    predicted = result.type_mask if result.type_mask is not None else np.zeros(truth.shape, np.uint8)
    pixels = np.zeros((types, 3), np.int64)
    for k in range(1, types + 1):
        true_k, predicted_k = truth == k, predicted == k
        pixels[k - 1] = (int((true_k & predicted_k).sum()), int(true_k.sum()), int(predicted_k.sum()))
    pairs = _pairs(truth, predicted, types)
    found = tuple(sorted({_kind_of(r.type, result) for r in result.regions} - {0}))
    truth_types = tuple(int(k) for k in np.unique(truth) if k)
    return TypeOutcome(truth_types, found, result.defective, pixels, tuple(pairs))


def _kind_of(name: str | None, result: Inspection) -> int:
    names = result.types or ()
    return names.index(name) + 1 if name in names else 0


def _pairs(truth: np.ndarray, predicted: np.ndarray, types: int) -> list[tuple[int, int]]:
    pairs = []
    labelled, count = ndimage.label(truth > 0, structure=_EIGHT)
    for index in range(1, count + 1):
        inside = labelled == index
        true_kind = int(np.bincount(truth[inside], minlength=types + 1)[1:].argmax()) + 1
        hits = np.bincount(predicted[inside], minlength=types + 1)[1:]
        pairs.append((true_kind, int(hits.argmax()) + 1 if hits.any() else 0))
    found, count = ndimage.label(predicted > 0, structure=_EIGHT)
    for index in range(1, count + 1):
        inside = found == index
        if not (truth[inside] > 0).any():
            kinds = np.bincount(predicted[inside], minlength=types + 1)[1:]
            pairs.append((0, int(kinds.argmax()) + 1))
    return pairs


def type_report(outcomes: Sequence[TypeOutcome], types: Sequence[str]) -> dict[str, Any]:
    """Per type: images, image TPR, pixel IoU and Dice; the type confusion matrix (rows: true
    type then ``none``, columns: predicted type then ``none``)."""
    count = len(types)
    per_type: dict[str, Any] = {}
    pixels = np.sum([o.pixels for o in outcomes], axis=0) if outcomes else np.zeros((count, 3), np.int64)
    for k, name in enumerate(types, 1):
        holding = [o for o in outcomes if k in o.truth]
        found = sum(1 for o in holding if k in o.found and o.flagged)
        inter, true_px, pred_px = (int(v) for v in pixels[k - 1])
        union = true_px + pred_px - inter
        per_type[name] = {
            "images": len(holding),
            "tpr": found / len(holding) if holding else None,
            "iou": inter / union if union else None,
            "dice": 2 * inter / (true_px + pred_px) if true_px + pred_px else None,
        }
    matrix = np.zeros((count + 1, count + 1), np.int64)  # index 0..K-1 types, K: none
    for outcome in outcomes:
        for true_kind, predicted_kind in outcome.pairs:
            matrix[(true_kind or count + 1) - 1, (predicted_kind or count + 1) - 1] += 1
    defects = matrix[:count].sum()
    right = int(np.trace(matrix[:count, :count]))
    found_defects = int(matrix[:count, :count].sum())
    return {
        "types": per_type,
        "confusion": {"labels": [*types, NONE], "matrix": matrix.tolist()},
        "defects": int(defects),
        "type_accuracy": right / found_defects if found_defects else None,  # of the defects found
    }


def format_type_report(report: dict[str, Any]) -> list[str]:
    """The per-type figures and the confusion matrix as text lines."""
    from lwcnn.evaluation.metrics import format_confusion

    def figure(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = [f"{'type':<20} {'images':>7} {'TPR':>7} {'IoU':>7} {'Dice':>7}"]
    for name, row in report["types"].items():
        lines.append(
            f"{name[:20]:<20} {row['images']:>7} {figure(row['tpr']):>7} {figure(row['iou']):>7} "
            f"{figure(row['dice']):>7}"
        )
    accuracy = report["type_accuracy"]
    lines.append(
        f"type of the defects found: {figure(accuracy)} right ({report['defects']} true defects; rows true, "
        "columns predicted, none: missed / false region)"
    )
    lines += format_confusion(report["confusion"]["matrix"], report["confusion"]["labels"]).splitlines()
    return lines
