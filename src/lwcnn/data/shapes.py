"""Annotated shapes (polygons, boxes, circles, lines, points, COCO RLE) and their class-index masks.

Every annotation format lwcnn reads (COCO, LabelMe, YOLO) becomes a list of :class:`Shape` in
continuous pixel coordinates: (0, 0) is the top-left corner of the top-left pixel, so pixel (row
i, column j) covers [j, j+1) x [i, i+1) and its centre is (j + 0.5, i + 0.5). One rule makes the
mask: **a pixel belongs to a shape when its centre lies inside it** (even-odd for polygons), so
the same outline gives the same mask whichever tool wrote it. Polygons are exact masks; boxes
become coarse ones. A shape thinner than a pixel that covers no pixel centre (a crack traced as
a sliver) keeps the pixels its vertices lie in rather than vanishing; lines are drawn one pixel
wide. Shapes are painted in order, so where two overlap the later one's type wins.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from lwcnn.errors import DataError

#: the shape kinds, with what ``points`` holds for each
KINDS = {
    "polygon": "x0, y0, x1, y1, ... (at least 3 vertices)",
    "box": "xmin, ymin, xmax, ymax",
    "circle": "centre x, centre y, radius",
    "line": "x0, y0, x1, y1, ... (a polyline, one pixel wide)",
    "point": "x, y",
    "rle": "none (the run-length encoding is in rle)",
}
_MIN_POINTS = {"polygon": 6, "box": 4, "circle": 3, "line": 4, "point": 2, "rle": 0}

#: the colour of each defect type wherever one is drawn (type k: TYPE_COLOURS[(k - 1) % 12]),
#: twelve that stay apart on gray images
TYPE_COLOURS = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
)  # fmt: skip

#: rows rasterised at once by the polygon fill (bounds its memory: rows x edges floats)
_ROW_CHUNK = 256


@dataclass(frozen=True)
class Shape:
    """One annotated defect: its type (1-based index into the collection's types), its kind, and
    its coordinates in pixels (see the module docstring for the convention)."""

    type: int
    kind: str
    points: tuple[float, ...] = ()
    rle: Any = field(default=None, compare=False)  # a COCO RLE dict {size: [h, w], counts: ...}

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DataError(f"shape kind {self.kind!r}: one of {', '.join(KINDS)}")
        if self.type < 1:
            raise DataError(f"shape type {self.type}: types count from 1 (0 is good)")
        wanted = _MIN_POINTS[self.kind]
        if len(self.points) < wanted or (self.kind in ("polygon", "line") and len(self.points) % 2):
            raise DataError(f"a {self.kind} needs {KINDS[self.kind]}; got {len(self.points)} numbers")
        if self.kind == "rle" and self.rle is None:
            raise DataError("an rle shape needs its run-length encoding")
        if not all(math.isfinite(v) for v in self.points):
            raise DataError(f"a {self.kind} with a coordinate that is not a number: {self.points[:8]}")


def scaled(shape: Shape, size: tuple[int, int]) -> Shape:
    """``shape`` with coordinates given as fractions of the image (YOLO) in pixels of an image of
    ``size`` (height, width); a circle's radius scales with the width."""
    height, width = size
    factors = (width, height) * (len(shape.points) // 2) + ((width,) if len(shape.points) % 2 else ())
    return Shape(
        shape.type, shape.kind, tuple(v * f for v, f in zip(shape.points, factors, strict=False)), shape.rle
    )


def labels_from_shapes(size: tuple[int, int], shapes: Sequence[Shape]) -> np.ndarray:
    """The class-index mask (H, W) uint8 of ``shapes`` on an image of ``size`` (height, width):
    0 is good, k is type k; shapes painted in order (a later one wins where they overlap)."""
    labels = np.zeros(size, dtype=np.uint8)
    for shape in shapes:
        covered = shape_mask(size, shape)
        labels[covered] = shape.type
    return labels


def shape_mask(size: tuple[int, int], shape: Shape) -> np.ndarray:
    """The bool mask (H, W) of one shape: the pixels whose centres lie inside it."""
    height, width = size
    p = shape.points
    if shape.kind == "rle":
        return _rle_mask(size, shape.rle)
    if shape.kind == "box":
        xmin, ymin, xmax, ymax = min(p[0], p[2]), min(p[1], p[3]), max(p[0], p[2]), max(p[1], p[3])
        mask = np.zeros(size, dtype=bool)
        mask[_centres_in(ymin, ymax, height), _centres_in(xmin, xmax, width)] = True
    elif shape.kind == "polygon":
        mask = _polygon_mask(size, np.asarray(p[0::2], float), np.asarray(p[1::2], float))
    elif shape.kind == "circle":
        cx, cy, radius = p[0], p[1], abs(p[2])
        rows = _centres_in(cy - radius, cy + radius + 1e-9, height)
        cols = _centres_in(cx - radius, cx + radius + 1e-9, width)
        mask = np.zeros(size, dtype=bool)
        y = np.arange(rows.start, rows.stop)[:, None] + 0.5
        x = np.arange(cols.start, cols.stop)[None, :] + 0.5
        mask[rows, cols] = (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
    elif shape.kind == "line":
        canvas = Image.new("1", (width, height), 0)
        # PIL puts pixel centres on integer coordinates: shift by half a pixel
        ImageDraw.Draw(canvas).line(
            [(x - 0.5, y - 0.5) for x, y in zip(p[0::2], p[1::2], strict=False)], fill=1, width=1
        )
        mask = np.asarray(canvas, dtype=bool)
    else:  # point
        mask = np.zeros(size, dtype=bool)
    if not mask.any() and shape.kind != "rle":  # never let a sliver or a point vanish
        for x, y in zip(p[0::2], p[1::2], strict=False) if shape.kind != "circle" else [(p[0], p[1])]:
            row, col = math.floor(y), math.floor(x)
            if 0 <= row < height and 0 <= col < width:
                mask[row, col] = True
    return mask


def _centres_in(low: float, high: float, length: int) -> slice:
    """The pixel indices along an axis whose centres (i + 0.5) lie in [low, high)."""
    start = max(0, math.ceil(low - 0.5))
    stop = min(length, max(0, math.ceil(high - 0.5)))
    return slice(start, max(start, stop))


def _polygon_mask(size: tuple[int, int], xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd fill at pixel centres, one row at a time: a row's centre line crosses the edges at
    sorted x positions, and the centres between the 1st and 2nd, 3rd and 4th... crossings are in."""
    height, width = size
    mask = np.zeros(size, dtype=bool)
    x0, y0, x1, y1 = xs, ys, np.roll(xs, -1), np.roll(ys, -1)
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    span = np.where(y1 != y0, y1 - y0, 1.0)
    rows = _centres_in(float(ys.min()), float(ys.max()), height)
    for start in range(rows.start, rows.stop, _ROW_CHUNK):
        centre = np.arange(start, min(rows.stop, start + _ROW_CHUNK))[:, None] + 0.5
        crosses = (low <= centre) & (centre < high)
        at = np.where(crosses, x0 + (centre - y0) / span * (x1 - x0), np.inf)
        at.sort(axis=1)
        for offset, count in enumerate(crosses.sum(axis=1)):
            row = at[offset, : count - count % 2]
            for left, right in zip(row[0::2], row[1::2], strict=False):
                mask[start + offset, _centres_in(left, right, width)] = True
    return mask


def _runs_mask(size: tuple[int, int], runs: str) -> np.ndarray:
    """``start length`` pairs (1-based, column-major, as Kaggle's masks are written) as a mask."""
    height, width = size
    try:
        values = [int(v) for v in runs.split()]
    except ValueError:
        raise DataError(f"run-length cells are whole numbers, got {runs[:40]!r}") from None
    if len(values) % 2:
        raise DataError(f"run-length cells are start/length pairs, this one has {len(values)} numbers")
    flat = np.zeros(height * width, bool)
    for start, length in zip(values[0::2], values[1::2], strict=True):
        if start < 1 or length < 0 or start - 1 + length > flat.size:
            raise DataError(
                f"run {start} {length} lies outside the image's {flat.size} pixels ({width}x{height})"
            )
        flat[start - 1 : start - 1 + length] = True
    return flat.reshape((height, width), order="F")


def _rle_mask(size: tuple[int, int], rle: Any) -> np.ndarray:
    """A COCO run-length encoding (compressed string or uncompressed counts) decoded by pycocotools,
    or a table's ``{"runs": "start length ..."}`` (Kaggle's form: 1-based pixel numbers counted down
    the columns, then across)."""
    if isinstance(rle, dict) and "runs" in rle:
        return _runs_mask(size, str(rle["runs"]))
    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        raise DataError(
            "COCO RLE masks need pycocotools (part of lwcnn's train install: pip install pycocotools)"
        ) from None
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise DataError(f"a COCO RLE is a dict with size and counts, got {type(rle).__name__}")
    height, width = (int(v) for v in rle["size"])
    if (height, width) != tuple(size):
        raise DataError(f"RLE is for {width}x{height} but its image is {size[1]}x{size[0]} (width x height)")
    try:
        encoded = coco_mask.frPyObjects(rle, height, width) if isinstance(rle["counts"], list) else {
            "size": [height, width],
            "counts": rle["counts"].encode() if isinstance(rle["counts"], str) else rle["counts"],
        }  # fmt: skip
        with warnings.catch_warnings():  # pycocotools 2.0 on NumPy 2: a DeprecationWarning, no harm
            warnings.simplefilter("ignore", DeprecationWarning)
            return coco_mask.decode(encoded).astype(bool)
    except (TypeError, ValueError, KeyError) as error:
        raise DataError(f"COCO RLE that pycocotools cannot decode ({error})") from None
