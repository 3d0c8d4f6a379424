"""COCO JSON (instance or semantic segmentation, or boxes alone): what CVAT, Label Studio, Roboflow
and most labelling tools export.

A COCO file lists ``images`` (``id``, ``file_name``, ``height``, ``width``), ``categories`` (the
defect types) and ``annotations`` (``image_id``, ``category_id``, and a ``segmentation`` as
polygons or run-length encoding, or only a ``bbox``). Polygons become exact masks, RLE is decoded
by pycocotools, a box alone becomes a coarse mask. Where the files lie differs by tool, so
``file_name`` is looked for beside the JSON, in an ``images/`` folder beside it or at the root,
and by its base name in those. Several COCO files (Roboflow's ``train/``, ``valid/``, ``test/``)
make one collection; when one of them is a test file, their names are the dataset's own parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lwcnn.data.images import find_images
from lwcnn.data.masked_images import LabelProblem, MaskedImages, MaskedSample, existing_folder
from lwcnn.data.shapes import Shape
from lwcnn.errors import DataError

#: the parts a COCO file's name or folder can name, and the part each stands for
_PARTS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
_MAX_DEPTH = 2  # COCO files are looked for at the root and at most two folders down


def find_coco_files(root: str | Path, first_only: bool = False) -> list[Path]:
    """The COCO files under ``root`` (``*.json`` at most two folders down whose top level holds
    ``images`` and ``annotations``), sorted; with ``first_only`` the search stops at the first."""
    return [path for path, _ in _coco_files(Path(root), first_only)]


def _coco_files(root: Path, first_only: bool = False) -> list[tuple[Path, dict[str, Any]]]:
    """Each COCO file under ``root`` with its JSON, each read once (small JSON files without an
    ``"images"`` key, LabelMe's per-image ones, are skipped after a peek)."""
    found = []
    candidates = sorted(p for p in root.rglob("*.json") if len(p.relative_to(root).parts) <= _MAX_DEPTH + 1)
    for path in candidates:
        data = _read_if_coco(path)
        if data is not None:
            found.append((path, data))
            if first_only:
                break
    return found


def _read_if_coco(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as file:
            head = file.read(1 << 16)
        if b'"images"' not in head and path.stat().st_size < (1 << 16):
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    is_coco = isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" in data
    return data if is_coco else None


def scan_coco(root: str | Path) -> MaskedImages:
    """Every COCO file under ``root`` (see the module docstring) as one collection; its types are
    the categories' names, in the order of their ids. An image listed without annotations is
    defect-free; an annotation whose image is not there, or that cannot be read, is listed in
    ``label_problems``; images in the folder that no file lists are ``unlisted``."""
    root = existing_folder(root)
    parsed = [(path, _checked(path, data)) for path, data in _coco_files(root)]
    if not parsed:
        raise DataError(f"{root}: no COCO file (a .json with images, annotations and categories)")
    files = [path for path, _ in parsed]
    types: list[str] = []
    for _, data in parsed:
        for category in sorted(data["categories"], key=lambda c: c["id"]):
            if category["name"] not in types:
                types.append(category["name"])
    parts = {path: _part_of(path.relative_to(root)) for path in files}
    own_parts = "test" in parts.values() and all(parts.values())
    samples: list[MaskedSample] = []
    problems: list[LabelProblem] = []
    for path, data in parsed:
        found, lost = _samples_of(root, path, data, types, parts[path] if own_parts else None)
        samples += found
        problems += lost
    listed = {s.image for s in samples}
    unlisted = tuple(p.relative_to(root) for p in find_images(root) if p.relative_to(root) not in listed)
    if not samples and not problems:
        raise DataError(f"{files[0]}: lists no images")
    return MaskedImages(
        root,
        "coco",
        tuple(samples),
        types=tuple(types) or ("defect",),
        label_problems=tuple(problems),
        unlisted=unlisted,
    )


def _checked(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A COCO file's JSON with its lists there and its ids and names typed, or a DataError."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"{path}: a COCO file needs a list of {key}")
    try:
        for category in data["categories"]:
            category["id"], category["name"] = int(category["id"]), str(category["name"])
        for image in data["images"]:
            image["id"], image["file_name"] = image["id"], str(image["file_name"])
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: a category or image without its id or name ({error})") from None
    return data


def _part_of(relative: Path) -> str | None:
    """The part a COCO file's name or folder names (``valid/_annotations.coco.json`` -> val)."""
    words = [
        w
        for piece in (relative.stem, *relative.parent.parts)
        for w in piece.lower().replace("-", "_").split("_")
    ]
    return next((_PARTS[w] for w in words if w in _PARTS), None)


def _samples_of(
    root: Path, path: Path, data: dict[str, Any], types: list[str], part: str | None
) -> tuple[list[MaskedSample], list[LabelProblem]]:
    """One COCO file's images as samples, and its annotations that cannot be used."""
    label = path.relative_to(root)
    type_of = {c["id"]: types.index(c["name"]) + 1 for c in data["categories"]}
    by_image: dict[Any, list[dict[str, Any]]] = {image["id"]: [] for image in data["images"]}
    problems = []
    for note in data["annotations"]:
        if not isinstance(note, dict) or note.get("image_id") not in by_image:
            problems.append(
                LabelProblem(label, f"annotation {_id(note)} names image id {_image_id(note)}, not listed")
            )
        else:
            by_image[note["image_id"]].append(note)
    samples = []
    for image in data["images"]:
        file = _find_image(root, path.parent, image["file_name"])
        if file is None:
            problems.append(LabelProblem(label, f"names image {image['file_name']}, which is not there"))
            continue
        shapes, lost = [], []
        for note in by_image[image["id"]]:
            try:
                shapes += _shapes_of(note, type_of)
            except DataError as error:
                lost.append(LabelProblem(label, f"annotation {_id(note)} of {image['file_name']}: {error}"))
        problems += lost
        size = (int(image["height"]), int(image["width"])) if "height" in image and "width" in image else None
        group = file.parent.relative_to(root).as_posix() if file.parent != root else ""
        samples.append(
            MaskedSample(file.relative_to(root), label if shapes else None, group, part, tuple(shapes), size)
        )
    return samples, problems


def _shapes_of(note: dict[str, Any], type_of: dict[int, int]) -> list[Shape]:
    """An annotation's shapes: its polygons, its RLE, or (no segmentation) its box."""
    try:
        kind = type_of[int(note["category_id"])]
    except (KeyError, TypeError, ValueError):
        raise DataError(f"category id {note.get('category_id')!r} is not among the categories") from None
    segmentation = note.get("segmentation")
    try:
        if isinstance(segmentation, dict):
            return [Shape(kind, "rle", rle=segmentation)]
        if isinstance(segmentation, list) and segmentation:
            if all(isinstance(v, (int, float)) for v in segmentation):  # one polygon, not nested
                segmentation = [segmentation]
            return [Shape(kind, "polygon", tuple(float(v) for v in polygon)) for polygon in segmentation]
        x, y, w, h = (float(v) for v in note["bbox"])
        return [Shape(kind, "box", (x, y, x + w, y + h))]
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"neither a segmentation nor a bbox that can be read ({error})") from None


def _find_image(root: Path, beside: Path, file_name: str) -> Path | None:
    """Where ``file_name`` lies: beside the COCO file, in an ``images/`` folder beside it, its
    parent's or the root's, as given or by its base name (Label Studio writes server paths)."""
    name = Path(file_name.replace("\\", "/"))
    bases = [beside, beside / "images", beside.parent / "images", root, root / "images"]
    for candidate in [b / name for b in bases] + [b / name.name for b in bases]:
        if candidate.is_file():
            try:
                candidate.relative_to(root)
            except ValueError:
                continue
            return candidate
    return None


def _id(note: Any) -> str:
    return str(note.get("id", "?")) if isinstance(note, dict) else "?"


def _image_id(note: Any) -> str:
    return str(note.get("image_id", "?")) if isinstance(note, dict) else "?"
