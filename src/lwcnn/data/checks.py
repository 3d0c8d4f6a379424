"""What a dataset holds before anyone trains on it: ``lwcnn data check`` and the checks training
runs first.

A check lists **errors** (the data is wrong as it stands: an unreadable image, a label whose size
differs from its image's, a mask value that is no type, a label without its image, a shape that
cannot be read, one image file under two classes) and **warnings** (it trains, but a figure may
mislead: byte-identical images, above all on both sides of the split; a mask with no defect
pixel; a type or class with too few images for the split; images that no annotation file lists),
and counts images per class or per defect type. Errors stop a training run (``data.skip_bad``
skips the images instead); warnings are printed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.data.classification import LabelledImages, scan_classification
from lwcnn.data.images import ImageReadError, read_image
from lwcnn.data.label_tables import unread_tables_note
from lwcnn.data.masked_images import MaskedImages, read_labels, scan_segmentation
from lwcnn.errors import DataError

#: a type or class needs this many images for one in each of train, validation and test
FEWEST_FOR_A_SPLIT = 3
#: layouts in which an image without a label file is defect-free (not labelled so by a file)
UNLABELLED_IS_GOOD = ("masks", "labelme", "voc")
#: findings of one kind shown on screen (``--json`` has them all)
SHOWN = 5


@dataclass(frozen=True)
class Finding:
    """One problem: ``level`` error or warning, a short ``kind``, the file (relative), one line."""

    level: str
    kind: str
    path: str
    message: str


@dataclass
class DataReport:
    """A dataset's check: what it holds and what is wrong with it."""

    root: str
    task: str  # "cls" or "seg"
    layout: str
    images: int
    counts: dict[str, int]  # cls: images per class; seg: images per defect type
    defective: int | None = None  # seg: images with a defect
    pixels: dict[str, float] = field(default_factory=dict)  # seg: each type's share of its images' pixels
    sizes: dict[str, list[int]] = field(default_factory=dict)  # min, median, max as [height, width]
    parts: dict[str, int] = field(default_factory=dict)  # images per part of the split checked
    unlabelled: int = 0  # seg: images without a label file (read as defect-free)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["errors"], data["warnings"] = len(self.errors), len(self.warnings)
        return data

    def lines(self) -> list[str]:
        """The report on one screen: what the data holds, then each kind of finding (a few files each)."""
        what = "classes" if self.task == "cls" else "types"
        head = f"{self.images} images"
        if self.defective is not None:
            head += f" ({self.defective} defective, {self.images - self.defective} defect-free"
            head += f", {self.unlabelled} without a label)" if self.unlabelled else ")"
        if self.sizes:
            low, mid, high = (
                f"{s[1]}x{s[0]}" for s in (self.sizes["min"], self.sizes["median"], self.sizes["max"])
            )
            head += f"; sizes {low} to {high}, median {mid} (width x height)"
        lines = [head]
        shown = [
            f"{name} {count}" + (f" ({self.pixels[name]:.1%} of their pixels)" if name in self.pixels else "")
            for name, count in self.counts.items()
        ]
        lines.append(f"{what}: " + ", ".join(shown))
        if self.parts:
            lines.append("split: " + ", ".join(f"{name} {count}" for name, count in self.parts.items()))
        for level in ("error", "warning"):
            kinds: dict[str, list[Finding]] = defaultdict(list)
            for finding in self.findings:
                if finding.level == level:
                    kinds[finding.kind].append(finding)
            for kind, found in kinds.items():
                lines.append(f"{level}: {kind.replace('_', ' ')} ({len(found)})")
                lines += [f"  {_located(f)}" for f in found[:SHOWN]]
                if len(found) > SHOWN:
                    lines.append(f"  ... and {len(found) - SHOWN} more (--json lists them all)")
        verdict = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines.append(verdict + (": fix the errors before training" if self.errors else ""))
        return lines


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _located(finding: Finding) -> str:
    return f"{finding.path}: {finding.message}" if finding.path else finding.message


def check_dataset(
    root: str | Path,
    task: str | None = None,
    layout: str = "auto",
    read: bool = True,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> DataReport:
    """Recognise ``root``'s layout (or take ``task``/``layout``), scan it and check it (``read``:
    decode every image and label too, which finds unreadable files and size mismatches)."""
    from lwcnn.data.layouts import detect_layout

    if layout == "auto":
        detected = detect_layout(root, task)
        task, layout = detected.task, detected.layout
    elif task is None:
        from lwcnn.data.layouts import LAYOUTS

        task = next((t for t, names in LAYOUTS.items() if layout in names), None)
        if task is None:
            raise DataError(f"data.layout {layout!r}: not a layout lwcnn reads")
    if task == "cls":
        return check_collection(scan_classification(root, layout), read=read, progress=progress)
    return check_collection(scan_segmentation(root, layout, strict=False), read=read, progress=progress)


def check_collection(
    images: LabelledImages | MaskedImages,
    parts: dict[str, list[int]] | None = None,
    read: bool = True,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
) -> DataReport:
    """Check a scanned collection; ``parts`` (part name -> sample indices) is the split to check
    for duplicates across it (default: the dataset's own parts, where it has them)."""
    task = "cls" if isinstance(images, LabelledImages) else "seg"
    report = DataReport(str(images.root), task, images.layout, len(images), counts={})
    if parts is None and task == "seg" and any(s.part for s in images.samples):
        parts = defaultdict(list)
        for index, sample in enumerate(images.samples):
            parts[sample.part or "train"].append(index)
    if parts:
        report.parts = {name: len(members) for name, members in parts.items()}
    if task == "seg":
        _label_findings(images, report)  # type: ignore[arg-type]
    _duplicates(images, parts or {}, report)
    if read:
        _read_everything(images, report, progress)
    else:
        _count_without_reading(images, report)
    _few_examples(images, report)
    return report


def _label_findings(images: MaskedImages, report: DataReport) -> None:
    if images.layout in UNLABELLED_IS_GOOD:
        report.unlabelled = sum(1 for s in images.samples if s.mask is None)
    for problem in images.label_problems:
        report.findings.append(Finding("error", "unusable_label", problem.path.as_posix(), problem.problem))
    for path in images.dropped_duplicates:
        report.findings.append(
            Finding(
                "warning",
                "duplicate_left_out",
                path.as_posix(),
                "byte-identical to an earlier image: not used",
            )
        )
    for path in images.unlisted:
        report.findings.append(
            Finding(
                "warning",
                "image_not_in_annotations",
                path.as_posix(),
                "no annotation file lists it: not used",
            )
        )


def _duplicates(
    images: LabelledImages | MaskedImages, parts: dict[str, list[int]], report: DataReport
) -> None:
    """Byte-identical image files: across parts a leak (the test part holds a training image),
    under two classes a contradiction (an error), else wasted weight."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for index, path in enumerate(images.paths):
        try:
            digest = hashlib.sha1((images.root / path).read_bytes()).hexdigest()
        except OSError:
            continue  # reported as unreadable when the images are read
        by_digest[digest].append(index)
    part_of = {i: name for name, members in parts.items() for i in members}
    for members in by_digest.values():
        if len(members) < 2:
            continue
        paths = [images.paths[i].as_posix() for i in members]
        others = ", ".join(paths[1:4]) + (", ..." if len(paths) > 4 else "")
        if isinstance(images, LabelledImages) and len({images.labels[i] for i in members}) > 1:
            classes = sorted({images.classes[images.labels[i]] for i in members})
            report.findings.append(
                Finding(
                    "error",
                    "same_image_in_two_classes",
                    paths[0],
                    f"also {others}, under {', '.join(classes)}",
                )
            )
        elif len({part_of.get(i) for i in members}) > 1:
            where = ", ".join(f"{images.paths[i].as_posix()} ({part_of.get(i)})" for i in members[:4])
            report.findings.append(
                Finding("warning", "duplicate_across_the_split", paths[0], f"byte-identical: {where}")
            )
        else:
            report.findings.append(Finding("warning", "duplicate", paths[0], f"byte-identical to {others}"))


def _read_everything(
    images: LabelledImages | MaskedImages,
    report: DataReport,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None,
) -> None:
    """Decode every image (and label): unreadable files, size mismatches, bad masks; counts and sizes."""
    sizes, counts, pixels, areas = [], defaultdict(int), defaultdict(int), defaultdict(int)
    defective = 0
    indices: Iterable[int] = range(len(images))
    if progress is not None:
        indices = progress(indices, len(images))
    for index in indices:
        try:
            if isinstance(images, LabelledImages):
                image = read_image(images.root / images.paths[index], 1)
                counts[images.classes[images.labels[index]]] += 1
            else:
                image, labels = read_labels(images, index)
                _count_types(images, index, labels, counts, pixels, areas, report)
                defective += bool(labels.any())
        except ImageReadError as error:
            report.findings.append(
                Finding("error", "unreadable", _relative(error.path, images.root), error.problem)
            )
            continue
        except DataError as error:
            kind = "size_mismatch" if " but " in str(error) else "unusable_label"
            report.findings.append(Finding("error", kind, "", str(error)))
            continue
        sizes.append(image.shape[:2])
    if sizes:
        array = np.array(sizes)
        report.sizes = {
            "min": [int(v) for v in array.min(axis=0)],
            "median": [int(v) for v in np.median(array, axis=0)],
            "max": [int(v) for v in array.max(axis=0)],
        }
    names = images.classes if isinstance(images, LabelledImages) else images.types
    report.counts = {name: counts.get(name, 0) for name in names}
    if isinstance(images, MaskedImages):
        report.defective = defective
        report.pixels = {n: pixels[n] / areas[n] for n in names if areas.get(n)}


def _count_types(
    images: MaskedImages,
    index: int,
    labels: np.ndarray,
    counts: dict[str, int],
    pixels: dict[str, int],
    areas: dict[str, int],
    report: DataReport,
) -> None:
    sample = images.samples[index]
    found = np.bincount(labels.ravel(), minlength=len(images.types) + 1)
    for k, name in enumerate(images.types, 1):
        if found[k]:
            counts[name] += 1
            pixels[name] += int(found[k])
            areas[name] += labels.size
    if sample.mask is not None and not found[1:].any():
        report.findings.append(
            Finding("warning", "empty_mask", sample.mask.as_posix(), "no defect pixel: read as defect-free")  # type: ignore[union-attr]
        )


def _count_without_reading(images: LabelledImages | MaskedImages, report: DataReport) -> None:
    """Counts from the scan alone (training reads the images itself): per class, or defective images."""
    if isinstance(images, LabelledImages):
        report.counts = images.counts()
    else:
        report.defective = images.defective_count()
        report.counts = {}


def _few_examples(images: LabelledImages | MaskedImages, report: DataReport) -> None:
    """A class or type with fewer images than a split has parts."""
    what = "class" if isinstance(images, LabelledImages) else "type"
    for name, count in report.counts.items():
        if count < FEWEST_FOR_A_SPLIT:
            report.findings.append(
                Finding(
                    "warning",
                    f"{what}_with_too_few_images",
                    "",
                    f"{what} {name!r} in {count} image(s): too few for one each in train, validation "
                    f"and test ({FEWEST_FOR_A_SPLIT}); its figures would say nothing",
                )
            )
    if (
        isinstance(images, MaskedImages)
        and report.defective is not None
        and report.defective < FEWEST_FOR_A_SPLIT
    ):
        report.findings.append(
            Finding("warning", "too_few_defective_images", "", f"{report.defective} defective image(s)")
        )


def check_before_training(images: LabelledImages | MaskedImages, split: Any, skip_bad: bool) -> DataReport:
    """The checks a training run makes first, on its split (the images themselves are read, and
    checked, by the datasets right after): an error stops the run with one line (``skip_bad``:
    logged, the bad images skipped); each kind of warning is logged once with its first file."""
    import logging

    log = logging.getLogger("lwcnn.data")
    if isinstance(images, MaskedImages) and "train" in split.parts:
        if not any(images.samples[i].defective for i in split.indices(images, "train")):
            labels = f"; {note}" if (note := unread_tables_note(images.root)) else ""
            raise DataError(
                f"{images.root}: no defective image in the training part ({images.layout} layout): a "
                f"segmenter learns defects from their masks{labels}"
            )
    report = check_collection(images, {p: split.indices(images, p) for p in split.parts}, read=False)
    for level in ("error", "warning"):
        found = [f for f in report.findings if f.level == level]
        kinds = sorted({f.kind for f in found})
        if level == "error" and found and not skip_bad:
            first = found[0]
            raise DataError(
                f"{images.root / first.path if first.path else images.root}: {first.message} "
                f"({len(found)} error(s) in the data; lwcnn data check {images.root} lists them; "
                "data.skip_bad=true trains without them)"
            )
        for kind in kinds:
            same = [f for f in found if f.kind == kind]
            log.warning(
                "data %s: %s (%d), e.g. %s", level, kind.replace("_", " "), len(same), _located(same[0])
            )
    return report
