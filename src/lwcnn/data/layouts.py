"""Which task and layout a folder of images is in, told from its folder structure alone.

``lwcnn train DATA`` starts here: class folders make a classifier; images with masks (KolektorSDD,
DAGM, ``images/`` + ``masks/``), Pascal VOC boxes, DeepPCB's box files, or a labelling tool's
annotations (COCO JSON, LabelMe JSON, YOLO text labels), or images with their masks beside them
make a segmenter. A folder
that fits two readings (NEU-DET holds both NEU class names and VOC boxes) or none is a one-line
:class:`~lwcnn.errors.DataError` that says which ``--task`` / ``data.layout`` to give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lwcnn.data.classification import NEU_PREFIXES
from lwcnn.data.coco import find_coco_files
from lwcnn.data.images import is_image_file
from lwcnn.data.label_tables import find_label_table, find_run_length_table, unread_tables_note
from lwcnn.data.labelme import is_labelme_file
from lwcnn.data.mask_pairs import PART_FOLDERS, find_mask_folders, has_mask_pairs, part_of_folder
from lwcnn.data.masked_images import find_voc_folder
from lwcnn.data.yolo import is_yolo_folder
from lwcnn.errors import DataError

#: Every layout by task, as ``data.layout`` names it.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "cls": ("folders", "neu", "csv"),
    "seg": (
        "kolektorsdd",
        "dagm",
        "masks",
        "voc",
        "deeppcb",
        "coco",
        "labelme",
        "yolo",
        "pairs",
        "mvtec",
        "rle",
    ),
}

_BOX_FOLDERS = {"ANNOTATIONS", "annotations", "Annotations"}
_IMAGE_FOLDERS = {"IMAGES", "images", "JPEGImages"}


@dataclass(frozen=True)
class Detected:
    """A folder's task (``cls`` or ``seg``) and layout, with the evidence in a few words."""

    task: str
    layout: str
    evidence: str


def layout_task(layout: str) -> str:
    """The task a ``data.layout`` name is for (``csv:COLUMN`` is ``csv``'s); an unknown one is an error."""
    name = layout.partition(":")[0]
    for task, names in LAYOUTS.items():
        if name in names:
            return task
    known = ", ".join(n for names in LAYOUTS.values() for n in names)
    raise DataError(f"data.layout={layout!r}: one of auto, {known}")


def detect_layout(root: str | Path, task: str | None = None) -> Detected:
    """The task and layout of ``root``; ``task`` (``cls``/``seg``) settles a folder that fits both.

    Raises :class:`DataError` for a folder that fits no layout, or two when ``task`` is not given."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    if task is not None and task not in LAYOUTS:
        raise DataError(f"--task {task!r}: one of {', '.join(LAYOUTS)}")
    readings = [d for d in _readings(folder) if task is None or d.task == task]
    if not readings:
        wanted = f"a {task} layout" if task else "a known layout"
        raise DataError(
            f"{folder}: cannot tell the layout, not {wanted} (class folders ROOT/<class>/<image>; "
            "images/ + masks/; kosNN/; ClassN/Train|Test; IMAGES/ + ANNOTATIONS/ VOC boxes; "
            "DeepPCB's PCBData/; a COCO .json; "
            "LabelMe .json files; YOLO data.yaml or images/ + labels/; x.jpg beside its mask x.png or "
            "x_mask.png); give --task and data.layout=..."
        )
    tasks = {d.task for d in readings}
    if len(tasks) > 1:
        options = "; ".join(f"--task {d.task} ({d.layout}: {d.evidence})" for d in readings)
        raise DataError(f"{folder}: fits more than one task; choose with {options}")
    return readings[0]


def _readings(folder: Path) -> list[Detected]:
    """Every layout ``folder`` fits, most specific first (one per task at most)."""
    names = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    found: list[Detected] = []
    if (folder / "PCBData").is_dir() or folder.name == "PCBData":
        found.append(Detected("seg", "deeppcb", "a PCBData/ folder of *_test.jpg/*_temp.jpg pairs"))
    elif any(re.fullmatch(r"kos\d+", n) for n in names):
        found.append(Detected("seg", "kolektorsdd", "kosNN item folders"))
    elif re.fullmatch(r"Class\d+", folder.name) or any(re.fullmatch(r"Class\d+", n) for n in names):
        found.append(Detected("seg", "dagm", "ClassN folders"))
    elif {"train", "test", "ground_truth"} <= names:
        found.append(Detected("seg", "mvtec", "an MVTec AD category (train/, test/, ground_truth/)"))
    elif categories := [n for n in sorted(names) if _is_mvtec_category(folder / n)]:
        shown = ", ".join(categories[:4]) + (", ..." if len(categories) > 4 else "")
        raise DataError(
            f"{folder}: MVTec AD categories ({shown}): a model learns one product; give one category "
            f"folder, e.g. {folder / categories[0]}"
        )
    elif "images" in names and "masks" in names:
        found.append(Detected("seg", "masks", "images/ and masks/ folders"))
    elif is_yolo_folder(folder):
        found.append(Detected("seg", "yolo", "YOLO labels (a data.yaml, or images/ beside labels/*.txt)"))
    elif names & _IMAGE_FOLDERS and any(any((folder / n).glob("*.xml")) for n in names & _BOX_FOLDERS):
        found.append(Detected("seg", "voc", "IMAGES/ with Pascal VOC ANNOTATIONS/ (boxes as coarse masks)"))
    elif voc := find_voc_folder(folder):
        found.append(Detected("seg", "voc", f"Pascal VOC boxes in {voc.name}/ for the images beside it"))
    elif coco := find_coco_files(folder, first_only=True):
        found.append(Detected("seg", "coco", f"a COCO file ({coco[0].relative_to(folder)})"))
    elif _has_labelme_files(folder):
        found.append(Detected("seg", "labelme", "LabelMe .json files"))
    elif mask_folders := find_mask_folders(folder):
        shown = ", ".join(f"{images}/ with masks in {masks}/" for images, masks in mask_folders)
        found.append(Detected("seg", "masks", shown))
    elif has_mask_pairs(folder):
        found.append(Detected("seg", "pairs", "images with masks beside them (x.jpg + x.png, x_mask.png...)"))
        classes = len(names) >= 2 and all(_holds_images(folder / n) for n in names)
        if classes and not {n.lower() for n in names} & set(PART_FOLDERS):  # the magnetic tiles' folders
            found.append(Detected("cls", "folders", f"{len(names)} class folders (their masks left out)"))
    elif runs := find_run_length_table(folder):
        typed = f", types in column {runs.type_column}" if runs.type_column else ""
        found.append(
            Detected("seg", "rle", f"{runs.path.name}: run-length masks of {len(runs.rows)} rows{typed}")
        )
    image_folder = folder / "IMAGES" if "IMAGES" in names else folder  # NEU-DET keeps them there
    split_named = False  # folders named as a split's parts holding images, not class folders
    if _neu_named(image_folder):
        found.append(Detected("cls", "neu", "NEU class prefixes in the file names"))
    elif not found and len(names) >= 2 and all(_holds_images(folder / n) for n in names):
        shown = " and ".join(f"{n}/" for n in sorted(names))
        if all(n.lower() in PART_FOLDERS for n in names):  # ROOT/train/<class>/, ROOT/test/<class>/
            if all(_has_subfolders(folder / n) for n in names):
                found.append(Detected("cls", "folders", f"class folders inside {shown} (its own split)"))
            else:
                split_named = True
        elif None not in (parts := {part_of_folder(n) for n in names}) and len(parts) > 1:
            split_named = True  # train_images/ + test_images/ (Severstal's): parts, not classes
        else:
            found.append(Detected("cls", "folders", f"{len(names)} class folders"))
    # a table of classes: after class folders, which a table beside them (lwcnn results export
    # writes reviews.csv there) must not override
    if not found and (table := find_label_table(folder)):
        found.append(
            Detected(
                "cls",
                "csv",
                f"{table.path.name} names {len(table.images)} images (column "
                f"{table.column_name(table.image_column)}) and their classes (column "
                f"{table.column_name(table.class_column)}; data.layout=csv:COLUMN for another)",
            )
        )
    if not found and names == {"images"}:
        found.append(Detected("seg", "masks", "an images/ folder without masks (all defect-free)"))
    if not found and split_named:
        shown = " and ".join(f"{n}/" for n in sorted(names))
        labels = f" ({note})" if (note := unread_tables_note(folder)) else ""
        raise DataError(
            f"{folder}: {shown} are named as the parts of a split, not as classes{labels}; "
            "give class folders (ROOT/<class>/ or ROOT/train/<class>/) or images/ + masks/"
        )
    return found


def _has_subfolders(folder: Path) -> bool:
    return any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())


def _is_mvtec_category(folder: Path) -> bool:
    return all((folder / name).is_dir() for name in ("train", "test", "ground_truth"))


def _has_labelme_files(folder: Path, looked_at: int = 20) -> bool:
    """Whether one of the first ``looked_at`` .json files under ``folder`` is a LabelMe file."""
    for count, path in enumerate(folder.rglob("*.json")):
        if count >= looked_at:
            return False
        if is_labelme_file(path):
            return True
    return False


def _neu_named(folder: Path) -> bool:
    """Whether the images directly in ``folder`` all carry NEU class prefixes (``Cr_12.bmp``)."""
    files = [p for p in folder.iterdir() if p.is_file() and is_image_file(p)]
    return bool(files) and all(p.stem.rsplit("_", 1)[0].lower() in NEU_PREFIXES for p in files)


def _holds_images(folder: Path) -> bool:
    """Whether ``folder`` has an image file at any depth (stops at the first)."""
    return any(p.is_file() and is_image_file(p) for p in folder.rglob("*"))
