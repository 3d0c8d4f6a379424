"""``lwcnn results export --reviewed OUT``: the images operators reviewed, with the labels they gave,
in lwcnn's own layouts, ready for ``lwcnn train --init-from MODEL``.

- a classifier's images go to ``OUT/CLASS/`` (the folders layout), by the class the review gives
  (a false alarm: the review's class, else the model's OK class; an escape: the review's class);
- a segmenter's go to ``OUT/images/`` with ``OUT/masks/NAME.png`` (the masks layout; class-index
  masks and ``masks/types.txt`` for a model with types): the review's boxes where it drew some,
  else the model's own mask for ``correct``, no mask (defect-free) for a false alarm, the model's
  mask retyped for ``wrong_type``. An escape without a box cannot become a mask: it is listed, not
  exported.

The model's own labels travel beside them (``OUT/model/masks/NAME.png`` for segmenters) and
``OUT/reviews.csv`` lists every reviewed result: its id, image, the model's verdict and types, the
review, and what was exported (or why not).
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lwcnn.data.images import upright_size
from lwcnn.errors import ConfigError
from lwcnn.fileio import atomic_write_bytes, atomic_write_text, printable_path
from lwcnn.runtime.engine import OK_CLASS_NAMES
from lwcnn.station.ledger import Ledger
from lwcnn.station.watch import _safe_folder

REVIEW_COLUMNS = (
    "id",
    "image",
    "task",
    "model_verdict",
    "model_types",
    "review",
    "label",
    "boxes",
    "exported",
    "note",
)


@dataclass
class ExportReport:
    """What an export wrote: ``exported`` images, ``skipped`` (with the reason in reviews.csv)."""

    out: Path
    exported: int = 0
    skipped: int = 0
    layout: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "layout": self.layout,
            "exported": self.exported,
            "skipped": self.skipped,
            "reviewed": len(self.rows),
        }


def export_reviewed(ledger: Ledger, out: str | Path, **filters: Any) -> ExportReport:
    """Write the reviewed results of ``ledger`` (``filters``: :meth:`Ledger.query`'s) into ``out``."""
    out = Path(out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{printable_path(out)}: exists and is not empty; export into a new folder")
    results = ledger.query(reviewed=True, **filters)
    if not results:
        raise ConfigError(f"{ledger.where}: no reviewed results to export")
    tasks = {r["task"] for r in results}
    if len(tasks) > 1 or len({r["model"] for r in results}) > 1:
        raise ConfigError(
            f"{ledger.where}: the reviewed results come from several models; export one at a time (--model)"
        )
    report = ExportReport(out, layout="folders" if tasks == {"cls"} else "masks")
    model_classes = results[0].get("classes") or ["background", "defect"]
    # a segmenter's types, in its order (its masks hold their indices)
    types = model_classes[1:] if report.layout == "masks" else []
    for result in results:
        row = {
            "id": result["id"],
            "image": result["image"],
            "task": result["task"],
            "model_verdict": result["verdict"],
            "model_types": " ".join(result["types"]),
            "review": result["review"]["kind"],
            "label": result["review"]["label"] or "",
            "boxes": result["review"]["boxes"],
            "exported": "",
            "note": "",
        }
        source = _image_file(result)
        if source is None:
            row["note"] = "image not found (moved or deleted)"
        elif report.layout == "folders":
            _export_classified(result, source, out, row, model_classes)
        else:
            _export_segmented(result, source, out, row, types)
        report.exported += int(bool(row["exported"]))
        report.skipped += int(not row["exported"])
        report.rows.append(row)
    if types and len(types) > 1:
        atomic_write_text(out / "masks" / "types.txt", "\n".join(types) + "\n")
    _write_csv(out / "reviews.csv", report.rows)
    return report


def _image_file(result: dict[str, Any]) -> Path | None:
    for candidate in (result.get("stored_image"), result.get("image")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _name(result: dict[str, Any], source: Path) -> str:
    return f"{result['id']}-{source.name}"


def _export_classified(
    result: dict[str, Any], source: Path, out: Path, row: dict[str, Any], classes: list[str] | None
) -> None:
    review = result["review"]
    label = review["label"]
    if review["kind"] == "correct":
        label = label or result["verdict"]
    elif review["kind"] == "false_alarm" and not label:
        ok = [c for c in (classes or []) if c.lower() in OK_CLASS_NAMES]
        label = ok[0] if ok else None
    if not label:
        row["note"] = f"a {review['kind']} review of a classifier needs the right class"
        return
    target = out / _safe_folder(label) / _name(result, source)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    row["exported"] = str(target.relative_to(out))


def _export_segmented(
    result: dict[str, Any], source: Path, out: Path, row: dict[str, Any], types: list[str]
) -> None:
    review = result["review"]
    model_mask = _model_mask(result, types)
    size = _image_size(source)
    label_index = types.index(review["label"]) + 1 if review["label"] in types else 1
    if review["boxes"]:
        mask = np.zeros(size, np.uint8)
        for x0, y0, x1, y1 in review["boxes"]:
            mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = label_index
    elif review["kind"] == "false_alarm":
        mask = None  # defect-free
    elif review["kind"] == "escape":
        row["note"] = "an escape needs a box (drawn in the review) to become a mask"
        return
    elif model_mask is None:
        if result["defective"]:
            row["note"] = "the model's mask was not kept (watch/serve --keep defective or all keeps it)"
            return
        mask = None
    elif review["kind"] == "wrong_type":
        mask = np.where(model_mask > 0, label_index, 0).astype(np.uint8)
    else:
        mask = model_mask
    name = _name(result, source)
    image_target = out / "images" / name
    image_target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, image_target)
    stem = Path(name).stem + ".png"
    if mask is not None and mask.any():
        atomic_write_bytes(out / "masks" / stem, _png(mask if len(types) > 1 else (mask > 0) * 255))
    if model_mask is not None:
        model_labels = model_mask if len(types) > 1 else (model_mask > 0) * 255
        atomic_write_bytes(out / "model" / "masks" / stem, _png(model_labels))
    row["exported"] = str(image_target.relative_to(out))


def _model_mask(result: dict[str, Any], types: list[str]) -> np.ndarray | None:
    """The model's mask as type indices (0 good, k ``types[k - 1]``). A 0/255 mask (what ``lwcnn
    inspect`` writes) takes each region's type from the region's box."""
    if not result.get("mask") or not Path(result["mask"]).is_file():
        return None
    with Image.open(result["mask"]) as picture:
        mask = np.asarray(picture.convert("L"), np.uint8)
    if mask.max() <= len(types):
        return mask
    labels = (mask > 0).astype(np.uint8)
    regions = result.get("regions") or {}
    for box, name in zip(regions.get("boxes", []), regions.get("region_types") or [], strict=False):
        if name in types:
            x0, y0, x1, y1 = box
            window = labels[y0:y1, x0:x1]
            window[window > 0] = types.index(name) + 1
    return labels


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as picture:
        return upright_size(picture)


def _png(labels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(labels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REVIEW_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "boxes": " ".join(",".join(map(str, b)) for b in row["boxes"])})
    atomic_write_text(path, buffer.getvalue())
