"""Labels from a table at the top of the data folder. Classes (the ``csv`` layout): one row per
image, its path or name and its class: ELPV's ``labels.csv`` (whitespace-separated, no
header), a spreadsheet's or Kaggle's ``train.csv`` (``image,label``).

The table is read by content, not by column names: the image column is the one whose cells name
image files under the folder (by relative path, by file name, or by stem where that is unique);
the class column is the first other one with a few distinct values (2 to 100, and at most half
the rows), or the one ``data.layout=csv:COLUMN`` names (a header name or a 0-based number).
Masks (the ``rle`` layout): rows of an image, its mask as run lengths and its defect type
(Severstal's ``train.csv``).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lwcnn.data.images import find_images
from lwcnn.errors import DataError

if TYPE_CHECKING:
    from lwcnn.data.masked_images import MaskedImages

#: the most distinct values a class column may have
MOST_CLASSES = 100
#: the share of a table's rows whose image cell must name a file for it to be a label table
RESOLVED_SHARE = 0.9


@dataclass(frozen=True)
class LabelTable:
    """A table's image and class columns and, per row, the image file (relative to the root)."""

    path: Path
    header: tuple[str, ...] | None
    image_column: int
    class_column: int
    images: tuple[Path, ...]
    labels: tuple[str, ...]

    def column_name(self, index: int) -> str:
        return repr(self.header[index]) if self.header else f"{index} (0-based)"


def find_label_table(root: Path, column: str | None = None) -> LabelTable | None:
    """The first ``.csv`` at the top of ``root`` that names its images and a class per image, read
    (``column``: the class column, else chosen as the module says); None when there is none."""
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not tables:
        return None
    index = _ImageIndex(root)
    for path in tables:
        table = _read_label_table(path, index, column)
        if table is not None:
            return table
    return None


def _read_label_table(path: Path, index: _ImageIndex, column: str | None) -> LabelTable | None:
    found = _image_rows(path, index)
    if found is None:
        return None
    header, data, image_column, width = found
    class_column = _class_column(data, width, image_column, header, column, path)
    if class_column is None:
        return None
    images, labels, seen = [], [], {}
    for number, row in enumerate(data, 2 if header else 1):
        found = index.find(row[image_column])
        if found is None:
            raise DataError(f"{path}:{number}: {row[image_column]!r} names no image under {index.root}")
        label = row[class_column].strip()
        if found in seen:
            if seen[found] != label:
                raise DataError(
                    f"{path}:{number}: {found.as_posix()} is labelled both {seen[found]!r} and {label!r} "
                    "(one class per image)"
                )
            continue
        seen[found] = label
        images.append(found)
        labels.append(label)
    return LabelTable(path, header, image_column, class_column, tuple(images), tuple(labels))


def _image_rows(
    path: Path, index: _ImageIndex
) -> tuple[tuple[str, ...] | None, list[list[str]], int, int] | None:
    """A table's header (None without one), its data rows, the column that names images (at least
    :data:`RESOLVED_SHARE` of the rows below the first name a file) and its width; None if no
    column does."""
    rows = _read_rows(path)
    if len(rows) < 2:
        return None
    width = min(len(r) for r in rows)
    body = rows[1:]
    named = [
        c
        for c in range(width)
        if sum(index.find(r[c]) is not None for r in body) >= RESOLVED_SHARE * len(body)
    ]
    if not named:
        return None
    header = tuple(rows[0]) if index.find(rows[0][named[0]]) is None else None
    return header, (body if header else rows), named[0], width


def _class_column(
    rows: list[list[str]], width: int, image_column: int, header: tuple[str, ...] | None,
    column: str | None, path: Path,
) -> int | None:  # fmt: skip
    """The class column: the one ``column`` names, else the first with a few distinct values."""
    if column is not None:
        if header and column in header:
            return header.index(column)
        if column.isdigit() and int(column) < width and int(column) != image_column:
            return int(column)
        names = ", ".join(header) if header else f"0 to {width - 1}"
        raise DataError(f"{path}: no class column {column!r} (the columns: {names})")
    for candidate in range(width):
        values = {r[candidate].strip() for r in rows}
        if candidate != image_column and 2 <= len(values) <= min(MOST_CLASSES, len(rows) // 2):
            return candidate
    return None


def _read_rows(path: Path) -> list[list[str]]:
    """The table's rows of cells: comma, semicolon or tab separated (sniffed), or runs of spaces."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    sample = "\n".join(lines[:20])
    if not any(d in sample for d in ",;\t"):
        return [line.split() for line in lines]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO("\n".join(lines)), dialect)]


class _ImageIndex:
    """Every image under a root, found by relative path, file name or stem (the last two where unique)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        files = [p.relative_to(root) for p in find_images(root)]
        self.paths = {p.as_posix(): p for p in files}
        names, stems = Counter(p.name for p in files), Counter(p.stem for p in files)
        self.names = {p.name: p for p in files if names[p.name] == 1}
        self.stems = {p.stem: p for p in files if stems[p.stem] == 1}

    def find(self, cell: str) -> Path | None:
        cell = cell.strip().replace("\\", "/").removeprefix("./")
        if not cell:
            return None
        return self.paths.get(cell) or self.names.get(cell) or self.stems.get(cell)


#: a run-length cell: start/length pairs separated by spaces
RUNS = re.compile(r"\d+ \d+(?: \d+ \d+)*")


@dataclass(frozen=True)
class RunLengthTable:
    """A table of masks as run lengths: per row the image, the runs and (where given) the type."""

    path: Path
    rows: tuple[tuple[Path, str, str], ...]  # (image, runs, type or "")
    type_column: str | None  # the type column's name, for the evidence line


def find_run_length_table(root: Path) -> RunLengthTable | None:
    """The first ``.csv`` at the top of ``root`` with an image column and a column of run-length
    masks (Severstal's ``train.csv``: ``ImageId,ClassId,EncodedPixels``); a further column with a
    few distinct values is each row's defect type. None when there is none."""
    tables = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if not tables:
        return None
    index = _ImageIndex(root)
    for path in tables:
        table = _image_rows(path, index)
        if table is None:
            continue
        header, data, image_column, width = table
        runs_column = next(
            (c for c in range(width) if c != image_column and _runs_share(data, c) >= RESOLVED_SHARE),
            None,
        )
        if runs_column is None:
            continue
        others = [c for c in range(width) if c not in (image_column, runs_column)]
        type_column = next((c for c in others if 2 <= len({r[c] for r in data}) <= MOST_CLASSES), None)
        found = []
        for number, row in enumerate(data, 2 if header else 1):
            image = index.find(row[image_column])
            if image is None:
                raise DataError(f"{path}:{number}: {row[image_column]!r} names no image under {root}")
            kind = row[type_column].strip() if type_column is not None else ""
            found.append((image, row[runs_column].strip(), kind))
        name = None if type_column is None else (header[type_column] if header else str(type_column))
        return RunLengthTable(path, tuple(found), name)
    return None


def _runs_share(rows: list[list[str]], column: int) -> float:
    """The share of the non-empty cells of ``column`` that are run lengths (0 if all are empty)."""
    cells = [r[column].strip() for r in rows if r[column].strip()]
    return sum(bool(RUNS.fullmatch(c)) for c in cells) / len(cells) if cells else 0.0


def scan_run_length_table(root: str | Path) -> MaskedImages:
    """The ``rle`` layout: a ``.csv`` of run-length masks (:func:`find_run_length_table`) with the
    images it names. Every image in a folder the table names images of is a sample; one the table
    does not name (or names with no runs) is defect-free, so Severstal's ``test_images/``, which
    the table never names, is left out. The types are the type column's values (numbers in
    numeric order), else one."""
    from lwcnn.data.masked_images import MaskedImages, MaskedSample, existing_folder
    from lwcnn.data.shapes import Shape

    root = existing_folder(root)
    table = find_run_length_table(root)
    if table is None:
        raise DataError(f"{root}: no .csv at the top with image names and run-length masks (rle layout)")
    kinds = sorted({kind for _, runs, kind in table.rows if runs and kind}, key=class_order)
    types = tuple(kinds) if kinds else ("defect",)
    runs_of: dict[Path, list[tuple[int, str]]] = {}
    for image, runs, kind in table.rows:
        if runs:
            runs_of.setdefault(image, []).append((types.index(kind) + 1 if kinds else 1, runs))
    folders = {image.parent for image, _, _ in table.rows}
    samples = []
    for path in find_images(root):
        relative = path.relative_to(root)
        if relative.parent not in folders:
            continue
        shapes = tuple(Shape(kind, "rle", rle={"runs": runs}) for kind, runs in runs_of.get(relative, []))
        mask = table.path.relative_to(root) if shapes else None
        samples.append(MaskedSample(relative, mask, group="", shapes=shapes))
    return MaskedImages(root, "rle", tuple(samples), types=types)


def class_order(name: str) -> tuple[int, float, str]:
    """A sort key: numbers first, in numeric order (ELPV's 0, 0.33, 0.67, 1), then names as text."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def unread_tables_note(root: Path) -> str:
    """For an error about ``root``: the ``.csv`` files at its top, which no layout read ('' if none)."""
    tables = sorted(p.name for p in root.glob("*.csv"))
    return f"the labels in {', '.join(tables)} are not a layout lwcnn reads" if tables else ""
