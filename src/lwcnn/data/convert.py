"""``lwcnn data convert``: any segmentation layout lwcnn reads, written in lwcnn's own layout, so that
a user sees exactly what lwcnn made of their labels (and can train on it without the tool), or as
COCO with run-length-encoded masks, for the labelling tools.

The output is ``images/`` (the image files, copied byte for byte) and ``masks/`` (one class-index
PNG per defective image, 0 good and k the k-th defect type, stored as a palette image so that any
viewer shows the types in colour) with ``masks/types.txt`` naming the types, one a line: the
``masks`` layout, which ``lwcnn train`` and ``lwcnn data check`` read back as the same masks.
``preview`` writes contact sheets (``preview/sheet_NNN.jpg``): each image with its mask drawn
over it in the types' colours, a legend on every sheet. A broken image is reported and skipped;
every file is written atomically.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from lwcnn.data.images import ImageReadError
from lwcnn.data.masked_images import TYPES_FILES, MaskedImages, read_labels
from lwcnn.data.preprocessing import resize_labels
from lwcnn.data.shapes import TYPE_COLOURS
from lwcnn.errors import DataError, OutputError
from lwcnn.fileio import atomic_write_bytes, atomic_write_text

TILE = 256  # a preview tile's side in pixels
SHEET_GRID = (4, 4)  # tiles per sheet (columns, rows)
_IMAGE_FOLDERS = ("images", "IMAGES", "JPEGImages")


@dataclass
class Converted:
    """What a conversion wrote."""

    out: str
    images: int = 0
    masks: int = 0
    types: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "PATH: problem" of each image not converted
    sheets: list[str] = field(default_factory=list)


def convert_dataset(
    images: MaskedImages,
    out: str | Path,
    to: str = "masks",
    preview: int = 0,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> Converted:
    """Write ``images`` under ``out`` (a new or empty folder) in lwcnn's ``masks`` layout, or
    (``to="coco"``) as ``images/`` + ``annotations/instances.json``: COCO with one RLE annotation
    per type an image holds (what CVAT, Label Studio and pycocotools read); with ``preview`` > 0,
    contact sheets of up to that many images, defective ones first."""
    if to not in CONVERSIONS:
        raise DataError(f"convert --to {to!r}: one of {', '.join(CONVERSIONS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not an empty folder (convert writes a new one)")
    result = Converted(str(out), types=list(images.types))
    names = _output_names(images)
    palette = _palette(len(images.types))
    coco: dict[str, list[Any]] = {"images": [], "annotations": []}
    shown: list[tuple[int, str]] = []
    indices: Iterable[int] = range(len(images))
    if progress is not None:
        indices = progress(indices, len(images))
    for index in indices:
        try:
            _, labels = read_labels(images, index)
        except (ImageReadError, DataError) as error:
            result.skipped.append(str(error))
            continue
        name = names[index]
        atomic_write_bytes(out / "images" / name, (images.root / images.samples[index].image).read_bytes())
        result.images += 1
        if to == "coco":
            result.masks += _add_coco(coco, name, labels)
        elif labels.any():
            mask = Image.fromarray(labels, mode="P")
            mask.putpalette(palette)
            atomic_write_bytes(out / "masks" / Path(name).with_suffix(".png"), _png(mask))
            result.masks += 1
        shown.append((index, name))
    if to == "coco":
        categories = [
            {"id": k, "name": name, "supercategory": "defect"} for k, name in enumerate(images.types, 1)
        ]
        atomic_write_text(
            out / "annotations" / "instances.json", json.dumps({**coco, "categories": categories})
        )
    else:
        atomic_write_text(out / "masks" / TYPES_FILES[0], "".join(f"{t}\n" for t in images.types))
    if preview:
        result.sheets = write_preview(images, shown, out / "preview", preview)
    return result


#: what ``lwcnn data convert --to`` writes
CONVERSIONS = ("masks", "coco")


def _add_coco(coco: dict[str, list[Any]], name: str, labels: np.ndarray) -> int:
    """One image and an RLE annotation per type it holds; returns how many annotations."""
    from pycocotools import mask as coco_mask

    image_id = len(coco["images"]) + 1
    height, width = labels.shape
    coco["images"].append({"id": image_id, "file_name": name, "height": height, "width": width})
    added = 0
    for kind in (int(k) for k in np.unique(labels) if k):
        rle = coco_mask.encode(np.asfortranarray(labels == kind, dtype=np.uint8))
        coco["annotations"].append(
            {
                "id": len(coco["annotations"]) + 1,
                "image_id": image_id,
                "category_id": kind,
                "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
                "area": int(coco_mask.area(rle)),
                "bbox": [float(v) for v in coco_mask.toBbox(rle)],
                "iscrowd": 0,
            }
        )
        added += 1
    return added


def _output_names(images: MaskedImages) -> list[str]:
    """Each image's name under ``images/``: its path in the collection without a leading
    images/IMAGES/JPEGImages folder; a name two images would share keeps its whole path."""
    names = []
    for sample in images.samples:
        parts = sample.image.parts
        names.append(
            Path(*parts[1:]).as_posix()
            if len(parts) > 1 and parts[0] in _IMAGE_FOLDERS
            else sample.image.as_posix()
        )
    stems = [Path(n).with_suffix("").as_posix() for n in names]
    clashes = {s for s in stems if stems.count(s) > 1}
    return [
        sample.image.as_posix() if stem in clashes else name
        for sample, name, stem in zip(images.samples, names, stems, strict=False)
    ]


def _palette(types: int) -> list[int]:
    colours = [(0, 0, 0)] + [TYPE_COLOURS[(k - 1) % len(TYPE_COLOURS)] for k in range(1, types + 1)]
    return [v for colour in colours for v in colour] + [0] * (3 * (256 - len(colours)))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def write_preview(images: MaskedImages, shown: list[tuple[int, str]], folder: Path, limit: int) -> list[str]:
    """Contact sheets of up to ``limit`` images (defective first), each tile the image with its
    mask's types in colour and its name; a legend of the types on every sheet."""
    defective = [item for item in shown if images.samples[item[0]].defective]
    chosen = (defective + [item for item in shown if not images.samples[item[0]].defective])[:limit]
    per_sheet = SHEET_GRID[0] * SHEET_GRID[1]
    sheets = []
    for number, start in enumerate(range(0, len(chosen), per_sheet), 1):
        sheet = _sheet(images, chosen[start : start + per_sheet])
        path = folder / f"sheet_{number:03d}.jpg"
        buffer = io.BytesIO()
        sheet.save(buffer, format="JPEG", quality=90)
        atomic_write_bytes(path, buffer.getvalue())
        sheets.append(str(path))
    return sheets


def _sheet(images: MaskedImages, items: list[tuple[int, str]]) -> Image.Image:
    columns, rows = SHEET_GRID
    legend = 24
    sheet = Image.new("RGB", (columns * TILE, legend + rows * (TILE + 16)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    x = 6
    for k, name in enumerate(images.types, 1):
        colour = TYPE_COLOURS[(k - 1) % len(TYPE_COLOURS)]
        draw.rectangle([x, 6, x + 12, 18], fill=colour)
        draw.text((x + 16, 6), name, fill=(255, 255, 255))
        x += 24 + 7 * len(name)
    for slot, (index, name) in enumerate(items):
        image, labels = read_labels(images, index, channels=3)
        tile = _tile(image, labels)
        left, top = (slot % columns) * TILE, legend + (slot // columns) * (TILE + 16)
        sheet.paste(tile, (left + (TILE - tile.width) // 2, top + (TILE - tile.height) // 2))
        shown = name if len(name) <= 40 else "..." + name[-37:]
        draw.text((left + 4, top + TILE + 2), shown, fill=(220, 220, 220))
    return sheet


def _tile(image: np.ndarray, labels: np.ndarray) -> Image.Image:
    """The image fitted into a TILE square, each type's pixels tinted in its colour; a defect
    thinner than the scaling keeps every tile pixel it touches (so a 1 px crack still shows)."""
    height, width = labels.shape
    factor = min(1.0, TILE / max(height, width))
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    picture = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    small = resize_labels(labels, (size[1], size[0]))
    for k in np.unique(small[small > 0]):
        inside = small == k
        colour = np.array(TYPE_COLOURS[(int(k) - 1) % len(TYPE_COLOURS)], dtype=np.float32)
        picture[inside] = 0.45 * picture[inside] + 0.55 * colour
    return Image.fromarray(picture.clip(0, 255).astype(np.uint8))
