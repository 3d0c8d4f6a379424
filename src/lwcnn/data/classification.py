"""Labelled image collections for classification: the NEU layout and folder-per-class.

Scanning only lists files and derives labels from names; images are read (and checked) later, by
the dataset that uses them, or all at once with :func:`check_images`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lwcnn.data.images import ImageReadError, find_images, is_image_file, read_image
from lwcnn.data.mask_pairs import PART_FOLDERS, masks_beside_images
from lwcnn.errors import ConfigError, DataError

#: The six NEU classes, in the order the literature lists them.
NEU_CLASSES: tuple[str, ...] = (
    "crazing",
    "inclusion",
    "patches",
    "pitted_surface",
    "rolled-in_scale",
    "scratches",
)

#: File-name prefixes of NEU-CLS (``Cr_1.bmp``) and NEU-DET (``crazing_1.jpg``), lower-cased.
NEU_PREFIXES: dict[str, str] = {
    "cr": "crazing",
    "in": "inclusion",
    "pa": "patches",
    "ps": "pitted_surface",
    "rs": "rolled-in_scale",
    "sc": "scratches",
    **{name: name for name in NEU_CLASSES},
}


@dataclass(frozen=True)
class LabelledImages:
    """Image files with class labels. ``paths`` are relative to ``root``; ``labels`` index ``classes``."""

    root: Path
    layout: str  # "neu", "folders" or "csv" ("csv:COLUMN")
    classes: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    # the dataset's own part of each image ("train", "val", "test": ROOT/train/<class>/...), or ()
    parts: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self) -> dict[str, int]:
        """Images per class."""
        return {name: self.labels.count(index) for index, name in enumerate(self.classes)}

    def subset(self, indices: Sequence[int]) -> LabelledImages:
        """The images at ``indices``, same classes."""
        return LabelledImages(
            self.root,
            self.layout,
            self.classes,
            tuple(self.paths[i] for i in indices),
            tuple(self.labels[i] for i in indices),
            tuple(self.parts[i] for i in indices) if self.parts else (),
        )


def neu_class(path: Path) -> str:
    """The NEU class of a file from its name prefix (``Cr_12.bmp``, ``pitted_surface_3.jpg``)."""
    prefix = path.stem.rsplit("_", 1)[0].lower()
    try:
        return NEU_PREFIXES[prefix]
    except KeyError:
        raise DataError(
            f"{path}: unknown NEU class prefix {path.stem.rsplit('_', 1)[0]!r} (expected Cr, In, Pa, PS, "
            "RS, Sc or crazing, inclusion, patches, pitted_surface, rolled-in_scale, scratches)"
        ) from None


def scan_neu(root: str | Path) -> LabelledImages:
    """The NEU images of ``root`` (or ``root/IMAGES``, the NEU-DET layout), labelled by file-name prefix.

    Both naming schemes map to the same six classes, always all six in :data:`NEU_CLASSES` order,
    so that a model trained on NEU-CLS names reads NEU-DET names alike.
    """
    root = _existing_folder(root)
    folder = root / "IMAGES" if (root / "IMAGES").is_dir() else root
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise DataError(f"{folder}: no image files")
    labels = [NEU_CLASSES.index(neu_class(p)) for p in files]
    missing = [name for i, name in enumerate(NEU_CLASSES) if i not in labels]
    if missing:
        raise DataError(f"{folder}: no images of NEU class(es) {', '.join(missing)}")
    return LabelledImages(root, "neu", NEU_CLASSES, tuple(p.relative_to(root) for p in files), tuple(labels))


def scan_class_folders(root: str | Path) -> LabelledImages:
    """Images in ``root/<class>/<image>`` (any depth below the class folder); classes sorted by name.
    Where the top folders are the dataset's own parts (``train/``, ``test/``, ``val/``, as
    ``root/train/<class>/<image>``), the classes are the folders inside them and each image keeps
    its part (:attr:`LabelledImages.parts`), the split the dataset comes with.

    An empty class folder is an error: it would silently become a class the model never sees; so is
    a class that the training part lacks. Masks beside their images (``x.jpg`` with ``x.png`` or
    ``x_mask.png``, the ``pairs`` layout) are left out: they are labels, not more images of the class.
    """
    root = _existing_folder(root)
    top = _subfolders(root)
    if not top:
        raise DataError(f"{root}: no class folders (expected ROOT/<class>/<image>)")
    if len(top) >= 2 and all(d.name.lower() in PART_FOLDERS for d in top):
        return _scan_part_folders(root, top)
    paths: list[Path] = []
    labels: list[int] = []
    for index, class_dir in enumerate(top):
        files = _class_images(class_dir)
        paths += [p.relative_to(root) for p in files]
        labels += [index] * len(files)
    if len(top) < 2:
        raise DataError(f"{root}: only one class folder ({top[0].name}); a classifier needs two or more")
    return LabelledImages(root, "folders", tuple(d.name for d in top), tuple(paths), tuple(labels))


def _scan_part_folders(root: Path, part_dirs: list[Path]) -> LabelledImages:
    """``root/<part>/<class>/<image>``: the classes of every part, each image with its part."""
    by_part = {d: _subfolders(d) for d in part_dirs}
    for part_dir, class_dirs in by_part.items():
        loose = [p for p in part_dir.iterdir() if p.is_file() and is_image_file(p)]
        if loose:
            raise DataError(f"{loose[0]}: an image directly in {part_dir.name}/, not in a class folder")
        if not class_dirs:
            raise DataError(f"{part_dir}: no class folders (expected {part_dir.name}/<class>/<image>)")
    classes = sorted({d.name for dirs in by_part.values() for d in dirs})
    if len(classes) < 2:
        raise DataError(f"{root}: only one class folder ({classes[0]}); a classifier needs two or more")
    trained = {d.name for p, dirs in by_part.items() if PART_FOLDERS[p.name.lower()] == "train" for d in dirs}
    if not trained:
        raise DataError(f"{root}: part folders {', '.join(p.name for p in part_dirs)} but no train/ folder")
    if missing := [c for c in classes if c not in trained]:
        raise DataError(f"{root}: class {missing[0]!r} has no folder in train/: a model cannot learn it")
    paths: list[Path] = []
    labels: list[int] = []
    parts: list[str] = []
    for part_dir, class_dirs in by_part.items():
        for class_dir in class_dirs:
            files = _class_images(class_dir)
            paths += [p.relative_to(root) for p in files]
            labels += [classes.index(class_dir.name)] * len(files)
            parts += [PART_FOLDERS[part_dir.name.lower()]] * len(files)
    return LabelledImages(root, "folders", tuple(classes), tuple(paths), tuple(labels), tuple(parts))


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_images(class_dir: Path) -> list[Path]:
    """The images of one class folder, masks beside their images left out; none is an error."""
    found = find_images(class_dir)
    masks = masks_beside_images(found)
    files = [p for p in found if p not in masks]
    if not files:
        raise DataError(f"{class_dir}: class folder has no images")
    return files


def scan_label_table(root: str | Path, column: str | None = None) -> LabelledImages:
    """The ``csv`` layout: a ``.csv`` at the top of ``root`` names each image and its class
    (:mod:`lwcnn.data.label_tables`; ``column``: the class column's header name or number).
    Classes sorted (as numbers where they all are); images the table does not name are not used."""
    from lwcnn.data.label_tables import class_order, find_label_table

    root = _existing_folder(root)
    table = find_label_table(root, column)
    if table is None:
        raise DataError(
            f"{root}: no .csv at the top that names images under it and a class for each (csv layout)"
        )
    classes = sorted(set(table.labels), key=class_order)
    if len(classes) < 2:
        raise DataError(f"{table.path}: one class ({classes[0]!r}); a classifier needs two or more")
    layout = f"csv:{column}" if column else "csv"
    labels = tuple(classes.index(label) for label in table.labels)
    return LabelledImages(root, layout, tuple(classes), table.images, labels)


def scan_classification(root: str | Path, layout: str = "auto") -> LabelledImages:
    """Scan ``root`` with ``layout`` "neu", "folders", "csv" (``csv:COLUMN``) or "auto" (recognised
    as ``lwcnn train`` does, :func:`lwcnn.data.layouts.detect_layout`)."""
    if layout == "neu":
        return scan_neu(root)
    if layout == "csv" or layout.startswith("csv:"):
        return scan_label_table(root, layout.partition(":")[2] or None)
    if layout == "folders":
        return scan_class_folders(root)
    if layout != "auto":
        raise ConfigError(f"layout must be 'auto', 'neu', 'folders' or 'csv', got {layout!r}")
    from lwcnn.data.layouts import detect_layout

    folder = _existing_folder(root)
    try:
        return scan_classification(folder, detect_layout(folder, "cls").layout)
    except DataError as error:  # not a layout: say what is wrong with the folders it has
        subdirs = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
        if subdirs and not subdirs <= {"IMAGES", "ANNOTATIONS"}:
            scan_class_folders(folder)
        raise error


def check_images(images: LabelledImages, channels: int = 3) -> list[ImageReadError]:
    """Read every image once; return the errors (an empty list when all are readable)."""
    errors = []
    for path in images.paths:
        try:
            read_image(images.root / path, channels)
        except ImageReadError as error:
            errors.append(error)
    return errors


def _existing_folder(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such folder")
    if not path.is_dir():
        raise DataError(f"{path}: not a folder")
    return path
