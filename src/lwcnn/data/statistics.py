"""What a dataset holds, measured before training: what :mod:`lwcnn.training.plan` chooses from.

Image sizes come from every file's header (cheap); colour, and for segmentation the defects'
area, extent and thinness, from a seeded sample of images (at most ``sample`` of each kind), so
measuring a large folder takes seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lwcnn.data.classification import LabelledImages
from lwcnn.data.images import ImageReadError, read_image, upright_size
from lwcnn.data.masked_images import MaskedImages, read_sample
from lwcnn.errors import DataError


@dataclass(frozen=True)
class DatasetStatistics:
    """Sizes in pixels as (height, width); defect figures over the sampled defective images."""

    task: str
    layout: str
    images: int
    channels: int  # 1 when every sampled image is gray (also gray stored as RGB), else 3
    median_size: tuple[int, int]
    max_size: tuple[int, int]
    min_size: tuple[int, int]
    aspect_range: tuple[float, float]  # width / height, 5th and 95th percentile
    class_counts: dict[str, int]  # classifier: per class; segmenter: defective / defect-free
    defect_area: tuple[float, float] | None = None  # share of the image, 10th and 50th percentile
    defect_extent: tuple[float, float] | None = None  # longest side of a defect region, px, p10 / p50
    defect_width: tuple[float, float] | None = None  # thickness of a defect region, px, p10 / p50
    types: tuple[str, ...] = ()  # a segmenter's defect types, as the labels name them

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_dataset(images: LabelledImages | MaskedImages, task: str, sample: int = 200) -> DatasetStatistics:
    """The statistics of a scanned collection (``task`` ``cls`` or ``seg``)."""
    paths = [images.root / p for p in images.paths]
    sizes = np.array([_header_size(p) for p in paths], dtype=float)
    rng = np.random.default_rng(0)
    picked = sorted(rng.permutation(len(paths))[: min(sample, len(paths))])
    channels = 1 if all(_is_gray(paths[i]) for i in picked[:40]) else 3
    aspect = sizes[:, 1] / sizes[:, 0]
    common: dict[str, Any] = {
        "task": task,
        "layout": images.layout,
        "images": len(paths),
        "channels": channels,
        "median_size": tuple(int(v) for v in np.median(sizes, axis=0)),
        "max_size": tuple(int(v) for v in sizes.max(axis=0)),
        "min_size": tuple(int(v) for v in sizes.min(axis=0)),
        "aspect_range": tuple(round(float(v), 3) for v in np.percentile(aspect, [5, 95])),
    }
    if isinstance(images, LabelledImages):
        return DatasetStatistics(**common, class_counts=images.counts())
    defective = [i for i, s in enumerate(images.samples) if s.defective]
    counts = {"defective": len(defective), "defect-free": len(images) - len(defective)}
    common["types"] = tuple(images.types)
    if not defective:
        return DatasetStatistics(**common, class_counts=counts)
    chosen = [defective[i] for i in sorted(rng.permutation(len(defective))[:sample])]
    areas, extents, widths = [], [], []
    for index in chosen:
        _, mask = read_sample(images, index, 1)
        areas.append(mask.mean())
        for extent, width in region_shapes(mask):
            extents.append(extent)
            widths.append(width)
    if not widths:
        return DatasetStatistics(**common, class_counts=counts)
    return DatasetStatistics(
        **common,
        class_counts=counts,
        defect_area=_p10_p50(areas, 5),
        defect_extent=_p10_p50(extents, 1),
        defect_width=_p10_p50(widths, 1),
    )


def region_shapes(mask: np.ndarray) -> list[tuple[float, float]]:
    """(extent, width) of every connected defect region of a bool mask: the longer side of its
    bounding box, and its thickness (twice the largest distance from inside to its edge, so a line
    3 px wide measures about 3 whatever its length)."""
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if not count:
        return []
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    depth = ndimage.maximum(distance, labels, index=np.arange(1, count + 1))
    shapes = []
    for region, box in enumerate(ndimage.find_objects(labels)):
        extent = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
        shapes.append((float(extent), float(max(1.0, 2.0 * depth[region] - 1.0))))
    return shapes


def describe(stats: DatasetStatistics) -> str:
    """One line: how many images, how large, of what kind."""
    h, w = stats.median_size
    colour = "gray" if stats.channels == 1 else "colour"
    counts = ", ".join(f"{n} {name}" for name, n in stats.class_counts.items())
    largest = f"{stats.max_size[1]} x {stats.max_size[0]}"
    line = f"{stats.images} {colour} images, median {w} x {h} px (up to {largest}); {counts}"
    if stats.defect_width is not None and stats.defect_extent is not None:
        line += (
            f"; defects {stats.defect_width[1]:g} px thick (10%: {stats.defect_width[0]:g}), "
            f"{stats.defect_extent[1]:g} px long"
        )
    return line


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return upright_size(image)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read the image header ({error})") from None


def _is_gray(path: Path) -> bool:
    try:
        image = read_image(path, 3)
    except ImageReadError:
        return True  # an unreadable file is reported when training reads it
    return bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())


def _p10_p50(values: list[float], digits: int) -> tuple[float, float]:
    low, mid = np.percentile(np.asarray(values, float), [10, 50])
    return round(float(low), digits), round(float(mid), digits)
