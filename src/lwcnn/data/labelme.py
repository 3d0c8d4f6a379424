"""LabelMe JSON: one ``NAME.json`` per annotated image, beside it or in a folder of their own.

Each file holds ``imagePath`` (relative to the JSON file), ``imageHeight``, ``imageWidth`` and
``shapes``: a ``label``, ``points`` ([x, y] pairs) and a ``shape_type``: polygon (the default),
rectangle (two corners), circle (centre, then a point on the circle), line, linestrip, point.
Images without a JSON file are defect-free (LabelMe writes none for an image left unlabelled). The
types are the names in a ``labels.txt`` at the root (LabelMe's own ``--labels`` file; its
``__ignore__`` and ``_background_`` lines skipped), else every label found, sorted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lwcnn.data.images import find_images, is_image_file
from lwcnn.data.masked_images import (
    TYPES_FILES,
    LabelProblem,
    MaskedImages,
    MaskedSample,
    existing_folder,
    read_types_file,
)
from lwcnn.data.shapes import Shape
from lwcnn.errors import DataError

#: LabelMe's shape types as lwcnn's shape kinds
_KINDS = {
    "polygon": "polygon",
    "rectangle": "box",
    "circle": "circle",
    "line": "line",
    "linestrip": "line",
    "point": "point",
}


def is_labelme_file(path: Path) -> bool:
    """Whether ``path`` is a LabelMe annotation (a JSON object with ``shapes`` and ``imagePath``)."""
    try:
        return _load(path) is not None
    except DataError:
        return True


def scan_labelme(root: str | Path) -> MaskedImages:
    """Every image under ``root`` with its LabelMe file (see the module docstring)."""
    root = existing_folder(root)
    notes: dict[Path, tuple[Path, dict[str, Any]]] = {}  # image -> (its JSON file, the JSON)
    problems: list[LabelProblem] = []
    for path in sorted(root.rglob("*.json")):
        data = _load(path)
        if data is None:
            continue
        image = _image_of(path, data)
        if image is None:
            problems.append(
                LabelProblem(path.relative_to(root), f"names image {data['imagePath']}, not there")
            )
        else:
            notes[image] = (path, data)
    if not notes and not problems:
        raise DataError(f"{root}: no LabelMe files (NAME.json with shapes and imagePath)")
    types = list(read_types_file(root, names=("labels.txt", *TYPES_FILES)))
    fixed = bool(types)
    if not fixed:
        types = sorted({str(s.get("label", "")) for _, d in notes.values() for s in d["shapes"]} - {""})
    samples = []
    for image in find_images(root):
        group = image.parent.relative_to(root).as_posix() if image.parent != root else ""
        if image not in notes:
            samples.append(MaskedSample(image.relative_to(root), None, group))
            continue
        path, data = notes[image]
        shapes, lost = _shapes_of(data, types)
        problems += [LabelProblem(path.relative_to(root), f"{image.name}: {problem}") for problem in lost]
        size = (int(data["imageHeight"]), int(data["imageWidth"])) if data.get("imageHeight") else None
        mask = path.relative_to(root) if shapes else None
        samples.append(MaskedSample(image.relative_to(root), mask, group, None, tuple(shapes), size))
    return MaskedImages(
        root, "labelme", tuple(samples), types=tuple(types) or ("defect",), label_problems=tuple(problems)
    )


def _load(path: Path) -> dict[str, Any] | None:
    """A LabelMe file's JSON, None for another JSON file, an error for a LabelMe file gone wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not (isinstance(data, dict) and "shapes" in data and "imagePath" in data):
        return None
    if not isinstance(data["shapes"], list):
        raise DataError(f"{path}: LabelMe shapes must be a list")
    return data


def _image_of(path: Path, data: dict[str, Any]) -> Path | None:
    """The image a LabelMe file annotates: its ``imagePath`` relative to it, else an image with
    the JSON file's stem beside it."""
    named = Path(str(data["imagePath"]).replace("\\", "/"))
    for candidate in (path.parent / named, path.parent / named.name):
        if candidate.is_file():
            return candidate
    same_stem = [p for p in path.parent.glob(f"{path.stem}.*") if p.is_file() and is_image_file(p)]
    return same_stem[0] if same_stem else None


def _shapes_of(data: dict[str, Any], types: list[str]) -> tuple[list[Shape], list[str]]:
    """A LabelMe file's shapes, and a line for each one that cannot be used."""
    shapes, lost = [], []
    for number, item in enumerate(data["shapes"], 1):
        label = str(item.get("label", "")) if isinstance(item, dict) else ""
        kind = _KINDS.get((item.get("shape_type") or "polygon") if isinstance(item, dict) else "", None)
        if label not in types:
            lost.append(f"shape {number} has label {label!r}, not one of the types {types}")
            continue
        if kind is None:
            lost.append(f"shape {number} ({label}) is a {item.get('shape_type')!r}: export it as a polygon")
            continue
        try:
            points = [(float(x), float(y)) for x, y in item["points"]]
            if kind == "circle":
                (cx, cy), (px, py) = points[:2]
                coordinates: tuple[float, ...] = (cx, cy, ((px - cx) ** 2 + (py - cy) ** 2) ** 0.5)
            else:
                coordinates = tuple(v for point in points for v in point)
            if kind == "polygon" and len(points) == 2:  # a two-point "polygon": LabelMe's drawn box
                kind = "box"
            shapes.append(Shape(types.index(label) + 1, kind, coordinates))
        except (KeyError, TypeError, ValueError, DataError) as error:
            lost.append(f"shape {number} ({label}): {error}")
    return shapes, lost
