"""Images with defect masks: KolektorSDD, DAGM 2007, image+mask folders, boxes as coarse masks, and
the annotation formats of labelling tools (:mod:`lwcnn.data.coco`, :mod:`~lwcnn.data.labelme`,
:mod:`~lwcnn.data.yolo`).

Scanning lists files and pairs them; images and labels are read (and their sizes checked) by
:func:`read_labels` (a class-index mask: 0 good, k the collection's k-th defect type) and
:func:`read_sample` (a bool defect mask). Every sample has a ``group`` (KolektorSDD's item
``kosNN``, DAGM's class) so splits can keep an item's near-identical views on one side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lwcnn.data.classification import DataError
from lwcnn.data.images import ImageReadError, find_images, is_image_file, read_image, upright
from lwcnn.data.mask_pairs import lossy_mask, strip_mask_suffix
from lwcnn.data.shapes import Shape, labels_from_shapes, scaled

#: DeepPCB's six defect types, by the number its box files give them
DEEPPCB_TYPES = ("open", "short", "mousebite", "spur", "spurious_copper", "pin_hole")
#: the file beside a masks/ folder of class-index masks that names their types, one a line
TYPES_FILES = ("types.txt", "classes.txt")


@dataclass(frozen=True)
class MaskedSample:
    """One image; ``mask`` is None for a defect-free image. Paths are relative to the collection root."""

    image: Path
    mask: Path | None
    group: str
    part: str | None = None  # a split the dataset itself defines (DAGM: "train"/"test"), else None
    shapes: tuple[Shape, ...] = ()  # annotated shapes (COCO, LabelMe, YOLO); ``mask`` is their file
    size: tuple[int, int] | None = None  # (height, width) the annotation says its image has
    normalized: bool = False  # shapes in fractions of the image's width and height (YOLO)
    type_masks: tuple[tuple[int, Path], ...] = ()  # one 0/255 mask per type: (type, file) pairs
    # its mask file marks no pixel (a tool's export writes one for every image): a defect-free
    # image, which as a defective one would be sampled, zoomed into and stratified as one
    empty_mask: bool = False

    @property
    def defective(self) -> bool:
        return self.mask is not None and not self.empty_mask


@dataclass(frozen=True)
class LabelProblem:
    """A label file (or an entry in one) that a scan could not pair with an image or could not use."""

    path: Path  # the label file, relative to the collection root
    problem: str  # one line: what is missing, e.g. "names image a.png, which is not there"


@dataclass(frozen=True)
class MaskedImages:
    """A collection of images with optional defect masks, and the names of its defect types."""

    root: Path
    layout: str  # a name in lwcnn.data.layouts.LAYOUTS["seg"]: "kolektorsdd", "masks", "mvtec"...
    samples: tuple[MaskedSample, ...]
    dropped_duplicates: tuple[Path, ...] = field(default=())
    types: tuple[str, ...] = ("defect",)  # type k of a class-index mask is types[k - 1]
    index_masks: bool = False  # mask files hold type indices (a types.txt beside them), not 0/255
    label_problems: tuple[LabelProblem, ...] = ()  # labels without images, unusable shapes (non-strict scans)
    unlisted: tuple[Path, ...] = ()  # images in the folder that the annotation files do not list (COCO)

    merge_types: bool = False  # every type read as one "defect" (:meth:`merged`)

    @property
    def classes(self) -> tuple[str, ...]:
        """A segmenter's classes: the background (class 0, as the engine reads the logits), then
        the defect types; ``("background", "defect")`` for one type (or :meth:`merged` types)."""
        return ("background", "defect") if self.merge_types else ("background", *self.types)

    def merged(self) -> MaskedImages:
        """The same images with every defect type read as one (a one-type segmenter's classes);
        ``types`` still names what the files hold."""
        return dataclasses.replace(self, merge_types=True)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def paths(self) -> tuple[Path, ...]:
        """The image paths (relative to ``root``), in sample order: what splits list."""
        return tuple(s.image for s in self.samples)

    def subset(self, indices: Sequence[int]) -> MaskedImages:
        """The samples at ``indices``, in that order."""
        return dataclasses.replace(
            self,
            samples=tuple(self.samples[i] for i in indices),
            dropped_duplicates=(),
            label_problems=(),
            unlisted=(),
        )

    def groups(self) -> list[str]:
        return sorted({s.group for s in self.samples})

    def defective_count(self) -> int:
        return sum(s.defective for s in self.samples)


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask file as a bool array (H, W): 0 is good and the one other value is defect (0/255, 0/1
    and palette masks alike); a mask with more values (0/128/255) is an error naming the file, not
    silently read, except a 0/255 mask stored lossily (JPEG: RSDDs, many crack sets), whose
    compression noise :func:`~lwcnn.data.mask_pairs.lossy_mask` recognises: it is read at 128. With ``size``
    (height, width) a different size is an error too."""
    path = Path(path)
    array = _mask_array(path, size, any_mode=True)
    if lossy_mask(path, array):
        return array >= 128  # a 0/255 mask saved as JPEG: its ringing is noise about the two levels
    values = np.unique(array)
    if len(values) > 2:  # soft edges, a third class: not a defect/good mask as it stands
        shown = ", ".join(str(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")
        raise DataError(
            f"{path}: mask has {len(values)} values ({shown}); lwcnn reads 0 as good and one other value "
            "(1 or 255) as defect: threshold it, or save it as PNG rather than JPEG"
        )
    return array > 0


def _marks_a_defect(path: Path) -> bool:
    """Whether a mask file has a pixel above 0 (read as :func:`read_mask` reads it, a JPEG's noise
    at 128); a mask that cannot be read counts as marking one, so that reading it later names the
    problem (``lwcnn data check`` lists them all)."""
    try:
        array = _mask_array(path, None, any_mode=True)
    except (DataError, ImageReadError):
        return True
    return bool((array >= 128 if lossy_mask(path, array) else array).any())


def _mask_array(path: Path, size: tuple[int, int] | None, any_mode: bool) -> np.ndarray:
    """A mask file's values (H, W) as stored (one channel: gray, palette indices, 16-bit; other
    modes made gray when ``any_mode``, else refused); a size other than ``size`` is an error."""
    try:
        with Image.open(path) as image:
            image.load()
            image = upright(image)  # the way its image is read, should a mask carry an orientation
            mode = image.mode
            one_channel = mode in ("L", "P", "1", "I", "I;16")
            array = np.asarray(image if one_channel or not any_mode else image.convert("L"))
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(path, f"unreadable mask ({error})") from None
    if not one_channel and not any_mode:
        raise DataError(f"{path}: a class-index mask is one channel (gray or palette), this one is {mode}")
    if size is not None and array.shape != tuple(size):
        mask_size, image_size = f"{array.shape[1]}x{array.shape[0]}", f"{size[1]}x{size[0]}"
        raise DataError(f"{path}: mask is {mask_size} but its image is {image_size} (width x height)")
    return array


def scan_segmentation(root: str | Path, layout: str = "auto", strict: bool = True) -> MaskedImages:
    """Scan ``root`` in ``layout`` (see :data:`lwcnn.data.layouts.LAYOUTS`), or recognise it
    (``auto``, as ``lwcnn train DATA`` does). ``strict``: a label without its image is an error
    (else it is listed in ``label_problems``, for ``lwcnn data check``)."""
    folder = existing_folder(root)
    if layout == "auto":
        from lwcnn.data.layouts import detect_layout

        layout = detect_layout(folder, "seg").layout
    scanners = _scanners()
    if layout not in scanners:
        raise DataError(
            f"data.layout {layout!r}: a segmentation layout is one of auto, {', '.join(scanners)}"
        )
    images = scanners[layout](folder)
    if strict and images.label_problems:
        first = images.label_problems[0]
        more = f" ({len(images.label_problems)} such labels; lwcnn data check lists them)"
        raise DataError(
            f"{images.root / first.path}: {first.problem}{more if len(images.label_problems) > 1 else ''}"
        )
    return images


def _scanners() -> dict[str, Any]:
    from lwcnn.data.coco import scan_coco
    from lwcnn.data.label_tables import scan_run_length_table
    from lwcnn.data.labelme import scan_labelme
    from lwcnn.data.mask_pairs import scan_mask_folders, scan_mask_pairs
    from lwcnn.data.yolo import scan_yolo

    return {
        "kolektorsdd": scan_kolektorsdd,
        "dagm": scan_dagm,
        "masks": scan_mask_folders,
        "voc": scan_voc,
        "deeppcb": scan_deeppcb,
        "coco": scan_coco,
        "labelme": scan_labelme,
        "yolo": scan_yolo,
        "pairs": scan_mask_pairs,
        "mvtec": scan_mvtec,
        "rle": scan_run_length_table,
    }


def read_labels(images: MaskedImages, index: int, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The image (H, W, C) uint8 and its class-index mask (H, W) uint8: 0 good, k type
    ``images.types[k - 1]`` (all 0 for a defect-free image; 0/1 for :meth:`MaskedImages.merged`).
    A label whose size differs from its image's is a :class:`DataError` naming the file."""
    image, labels = _read_typed(images, index, channels)
    return image, (labels > 0).astype(np.uint8) if images.merge_types else labels


def _read_typed(images: MaskedImages, index: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_labels` with every type as the collection's files give it."""
    sample = images.samples[index]
    image = read_image(images.root / sample.image, channels)
    size = image.shape[:2]
    if sample.mask is None:
        return image, np.zeros(size, dtype=np.uint8)
    path = images.root / sample.mask
    if sample.shapes or sample.size is not None:  # COCO, LabelMe, YOLO: shapes read at the scan
        if sample.size is not None and sample.size != size:
            raise DataError(
                f"{path}: annotation for {sample.image.name} says {sample.size[1]}x{sample.size[0]} but "
                f"the image is {size[1]}x{size[0]} (width x height)"
            )
        shapes = [scaled(s, size) for s in sample.shapes] if sample.normalized else sample.shapes
        try:
            return image, labels_from_shapes(size, shapes)
        except DataError as error:
            raise DataError(f"{path}: {sample.image.name}: {error}") from None
    if sample.mask.suffix.lower() == ".xml":  # boxes as a coarse mask (the paper's Wood set)
        stated, boxes = boxes_from_voc(path)
        if stated != size:
            raise DataError(
                f"{path}: annotation is for {stated[1]}x{stated[0]} but its image is "
                f"{size[1]}x{size[0]} (width x height)"
            )
        return image, mask_from_boxes(size, boxes, images.types)
    if sample.mask.suffix.lower() == ".txt":  # DeepPCB's box lines, also coarse masks
        return image, mask_from_boxes(size, boxes_from_deeppcb(path), images.types)
    if sample.type_masks:  # one mask file per type (masks/TYPE/NAME.png)
        labels = np.zeros(size, np.uint8)
        for kind, file in sample.type_masks:
            labels[read_mask(images.root / file, size)] = kind
        return image, labels
    if images.index_masks:
        return image, read_index_mask(path, len(images.types), size)
    return image, read_mask(path, size).astype(np.uint8)


def read_sample(images: MaskedImages, index: int, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The image (H, W, C) uint8 and its bool defect mask (H, W) (all False for a defect-free image):
    every defect type at once, what a one-type segmenter learns."""
    image, labels = read_labels(images, index, channels)
    return image, labels > 0


def read_index_mask(path: str | Path, types: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """A class-index mask file (0 good, 1..``types`` a defect type; a palette PNG's indices count)
    as uint8 (H, W); a value above ``types`` or a size other than ``size`` is an error naming it."""
    path = Path(path)
    array = _mask_array(path, size, any_mode=False)
    top = int(array.max()) if array.size else 0
    if top > types:
        raise DataError(
            f"{path}: mask value {top} is not a type (the types file names {types}: values 0 to {types})"
        )
    return array.astype(np.uint8)


def scan_kolektorsdd(root: str | Path, drop_duplicates: bool = True) -> MaskedImages:
    """KolektorSDD: ``kosNN/PartK.jpg`` (or ``.bmp``) with ``PartK_label.png`` (or ``.bmp``).

    An all-zero label means a defect-free image (its mask is dropped, so ``defective`` is False).
    Byte-identical image files are dropped but for the first in sorted order, so that a duplicate
    can never sit on both sides of a split; the dropped ones are listed in ``dropped_duplicates``.
    """
    root = existing_folder(root)
    items = sorted(p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"kos\d+", p.name))
    if not items:
        raise DataError(
            f"{root}: no kosNN item folders (KolektorSDD layout: kosNN/PartK.jpg + PartK_label.png)"
        )
    samples, dropped, seen = [], [], {}
    for item in items:
        images = sorted(
            p for p in item.iterdir() if p.is_file() and is_image_file(p) and not p.stem.endswith("_label")
        )
        for image in images:
            digest = hashlib.sha1(image.read_bytes()).hexdigest()
            if drop_duplicates and digest in seen:
                dropped.append(image.relative_to(root))
                continue
            seen[digest] = image
            candidates = [
                image.with_name(f"{image.stem}_label{ext}") for ext in (".png", ".bmp", ".PNG", ".BMP")
            ]
            label = next((c for c in candidates if c.exists()), None)
            if label is None:
                raise DataError(f"{image}: no {image.stem}_label.png or .bmp beside it")
            mask = label.relative_to(root) if read_mask(label).any() else None
            samples.append(MaskedSample(image.relative_to(root), mask, group=item.name))
    return MaskedImages(root, "kolektorsdd", tuple(samples), tuple(dropped))


def scan_mvtec(root: str | Path) -> MaskedImages:
    """One category of MVTec AD: ``train/good/``, ``test/good/`` and ``test/TYPE/NNN.png`` with
    ``ground_truth/TYPE/NNN_mask.png``; the types are the ``test/`` folders other than ``good``.

    Its own split is an anomaly detector's (training holds good parts only), which a model that
    learns from labelled defects cannot use: every image is pooled for a stratified split."""
    root = existing_folder(root)
    missing = [name for name in ("train", "test", "ground_truth") if not (root / name).is_dir()]
    if missing:
        raise DataError(f"{root / missing[0]}: missing (MVTec AD layout: train/, test/, ground_truth/)")
    kinds = sorted(d.name for d in (root / "test").iterdir() if d.is_dir() and d.name != "good")
    samples, problems = [], []
    for image in find_images(root / "train") + find_images(root / "test"):
        relative = image.relative_to(root)
        kind = relative.parts[1] if len(relative.parts) > 2 else "good"
        if kind == "good":
            samples.append(MaskedSample(relative, None, group=""))
            continue
        mask = root / "ground_truth" / kind / f"{image.stem}_mask.png"
        if not mask.is_file():
            problems.append(LabelProblem(relative, f"no ground_truth/{kind}/{image.stem}_mask.png"))
            continue
        typed = ((kinds.index(kind) + 1, mask.relative_to(root)),)
        samples.append(MaskedSample(relative, mask.relative_to(root), group="", type_masks=typed))
    if not samples:
        raise DataError(f"{root}: no images in train/ or test/ (MVTec AD layout)")
    return MaskedImages(root, "mvtec", tuple(samples), types=tuple(kinds), label_problems=tuple(problems))


def scan_dagm(root: str | Path) -> MaskedImages:
    """DAGM 2007: ``ClassN/Train|Test/NNNN.PNG``, ``ClassN/Train|Test/Label/Labels.txt`` and
    ``Label/NNNN_label.PNG`` (elliptical coarse masks). ``root`` may be the dataset folder (all
    classes) or one ``ClassN`` folder. Each sample's group is its class, its part train or test."""
    root = existing_folder(root)
    class_dirs = [root] if re.fullmatch(r"Class\d+", root.name) else sorted(
        (p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"Class\d+", p.name)),
        key=lambda p: int(p.name[5:]),
    )  # fmt: skip
    if not class_dirs:
        raise DataError(f"{root}: no ClassN folders (DAGM layout: ClassN/Train|Test/NNNN.PNG)")
    samples = []
    for class_dir in class_dirs:
        for part in ("Train", "Test"):
            folder = class_dir / part
            if not folder.is_dir():
                raise DataError(f"{folder}: missing (DAGM has Train and Test in every class)")
            defective = _dagm_labels(folder)
            for image in sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)):
                label = defective.get(image.name)
                if label is None and image.name not in defective:
                    candidate = folder / "Label" / f"{image.stem}_label.PNG"
                    label = candidate.name if candidate.exists() else None
                mask = None
                if label is not None:
                    path = folder / "Label" / label
                    if not path.exists():
                        raise DataError(f"{path}: named in Labels.txt but missing")
                    mask = path.relative_to(root)
                samples.append(
                    MaskedSample(image.relative_to(root), mask, group=class_dir.name, part=part.lower())
                )
    return MaskedImages(root, "dagm", tuple(samples))


def _dagm_labels(folder: Path) -> dict[str, str | None]:
    """Labels.txt: one line per image, ``ID  DEFECT(0/1)  IMAGE  0  LABEL`` (a first line with the
    format version is skipped). Returns image name -> label file name (None: defect-free)."""
    path = folder / "Label" / "Labels.txt"
    if not path.exists():
        return {}
    labels: dict[str, str | None] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        parts = line.split()
        if len(parts) < 3 or parts[1] not in ("0", "1"):
            if len(parts) > 1:
                raise DataError(f"{path}:{number}: not a DAGM label line: {line.strip()!r}")
            continue
        image = parts[2]
        if parts[1] == "1":
            labels[image] = parts[4] if len(parts) >= 5 else f"{Path(image).stem}_label.PNG"
        else:
            labels[image] = None
    return labels


def scan_image_mask_folders(
    root: str | Path, images_dir: str = "images", masks_dir: str = "masks"
) -> MaskedImages:
    """``images/NAME.ext`` with ``masks/NAME.png`` (same stem, any image extension, or the stem with
    a mask suffix, ``NAME_mask.png``; 0/255 or 0/1).
    An image without a mask is defect-free; a mask without an image is listed in ``label_problems``.
    Images in subfolders keep them as their group (e.g. ``images/line3/a.png`` -> group ``line3``).

    Defect types, either way: a ``types.txt`` (or ``classes.txt``) in ``masks/`` or beside it, one
    type name a line, makes the masks class-index masks (0 good, k the k-th line's type; what
    ``lwcnn data convert`` writes); or one folder of 0/255 masks per type, ``masks/TYPE/NAME.png``
    (a folder of ``masks/`` that ``images/`` does not have is a type; an image may have a mask in
    several). Otherwise a mask is 0 and one other value (one type)."""
    root = existing_folder(root)
    image_root, mask_root = root / images_dir, root / masks_dir
    if not image_root.is_dir():
        raise DataError(
            f"{image_root}: missing (layout: {images_dir}/ + {masks_dir}/ with the same file stems)"
        )
    folders = [d for d in mask_root.iterdir() if d.is_dir()] if mask_root.is_dir() else []
    type_dirs = sorted(d.name for d in folders if not (image_root / d.name).is_dir())
    types = read_types_file(mask_root, root) or tuple(type_dirs)
    masks: dict[Path, list[tuple[int, Path]]] = {}
    problems = []
    for mask in find_images(mask_root) if mask_root.is_dir() else []:
        relative = mask.relative_to(mask_root)
        kind = 0
        if type_dirs:
            if relative.parts[0] not in type_dirs or relative.parts[0] not in types:
                problems.append(
                    LabelProblem(mask.relative_to(root), f"mask outside the type folders {types}")
                )
                continue
            kind, relative = types.index(relative.parts[0]) + 1, Path(*relative.parts[1:])
        masks.setdefault(relative.with_suffix(""), []).append((kind, mask.relative_to(root)))
    samples = []
    named = {
        Path(strip_mask_suffix(k.as_posix())): k
        for k in masks
        if strip_mask_suffix(k.as_posix()) != k.as_posix()
    }
    for image in find_images(image_root):
        key = image.relative_to(image_root).with_suffix("")
        found = masks.pop(key, []) or (masks.pop(named[key], []) if key in named else [])
        empty = bool(found) and not any(_marks_a_defect(root / mask) for _, mask in found)
        group = key.parent.as_posix() if key.parent != Path(".") else ""
        first = found[0][1] if found else None
        samples.append(
            MaskedSample(
                image.relative_to(root),
                first,
                group,
                type_masks=tuple(found) if type_dirs else (),
                empty_mask=empty,
            )
        )
    if not samples:
        raise DataError(f"{image_root}: no images")
    for key, left in masks.items():
        problems += [
            LabelProblem(m, f"mask without an image (no {images_dir}/{key.as_posix()}.*)") for _, m in left
        ]
    return MaskedImages(
        root,
        "masks",
        tuple(samples),
        types=types or ("defect",),
        index_masks=bool(types) and not type_dirs,
        label_problems=tuple(problems),
    )


def read_types_file(*folders: Path, names: tuple[str, ...] = TYPES_FILES) -> tuple[str, ...]:
    """The type names of the first types file (``names``, default :data:`TYPES_FILES`) in
    ``folders``, one a line (blank lines, ``#`` comments, LabelMe's ``__ignore__`` and a first
    ``background``/``good``/``_background_`` line skipped), or () when there is none."""
    for folder in folders:
        for name in names:
            path = folder / name
            if not path.is_file():
                continue
            lines = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
            names = [line for line in lines if line and line != "__ignore__"]
            if names and names[0].lower() in ("background", "_background_", "good", "ok"):
                names = names[1:]
            if not names:
                raise DataError(f"{path}: names no defect type")
            if len(set(names)) < len(names):
                raise DataError(f"{path}: a type is named twice")
            return tuple(names)
    return ()


def scan_voc(root: str | Path) -> MaskedImages:
    """Images with Pascal VOC box annotations, the boxes becoming coarse masks (how the paper treats
    the Wood set): ``IMAGES/`` (or ``images/``, ``JPEGImages/``) with ``ANNOTATIONS/`` (or
    ``annotations/``, ``Annotations/``) holding ``NAME.xml`` per image (NEU-DET's layout), or a
    folder of VOC files under another name beside the image folders, matched by file name
    (GC10-DET's ``lable/`` beside its ``1/`` ... ``10/``: :func:`find_voc_folder`). An image without
    an annotation, or with no boxes in it, is defect-free. Each sample's group is its first box's
    name (the defect class); the boxes' names are the collection's types."""
    root = existing_folder(root)
    image_dir = next((root / n for n in ("IMAGES", "images", "JPEGImages") if (root / n).is_dir()), None)
    notes_dir = next(
        (root / n for n in ("ANNOTATIONS", "annotations", "Annotations") if (root / n).is_dir()), None
    )
    if image_dir is not None and notes_dir is not None:
        notes = {image_dir / n.relative_to(notes_dir).with_suffix(""): n for n in notes_dir.rglob("*.xml")}
        keys: dict[Path, Path | str] = {image: image.with_suffix("") for image in find_images(image_dir)}
        where = f"{image_dir.name}/"
    else:
        notes_dir = find_voc_folder(root)
        if notes_dir is None:
            raise DataError(
                f"{root}: boxes layout needs IMAGES/ and ANNOTATIONS/ folders, or a folder of Pascal VOC "
                ".xml files named after the images in the other folders"
            )
        image_dir = root
        notes = {n.stem: n for n in sorted(notes_dir.rglob("*.xml"))}
        keys = {p: p.stem for p in find_images(root) if notes_dir not in p.parents}
        _refuse_repeated_stems(root, list(keys))
        where = "the image folders"
    samples, names = [], set()
    for image, key in keys.items():
        note = notes.get(key)
        group, mask = "", None
        if note is not None:
            _, boxes = boxes_from_voc(note)
            if boxes:
                group, mask = boxes[0][0], note.relative_to(root)
                names.update(box[0] or "defect" for box in boxes)
        samples.append(MaskedSample(image.relative_to(root), mask, group))
    if not samples:
        raise DataError(f"{image_dir}: no images")
    image_keys = set(keys.values())
    label_problems = tuple(
        LabelProblem(note.relative_to(root), f"annotation without an image in {where}")
        for key, note in sorted(notes.items(), key=lambda item: item[1])
        if key not in image_keys
    )
    types = tuple(sorted(names)) or ("defect",)
    return MaskedImages(root, "voc", tuple(samples), types=types, label_problems=label_problems)


def find_voc_folder(root: Path) -> Path | None:
    """A subfolder of ``root`` that holds Pascal VOC ``.xml`` files (the first five parse as
    ``<annotation>``) and no images, at least half of whose file stems name images in ``root``'s
    other folders: box annotations kept under a name of their own (GC10-DET's ``lable/``)."""
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        notes = sorted(folder.rglob("*.xml"))
        if not notes or any(is_image_file(p) for p in folder.rglob("*")) or not all(map(_is_voc, notes[:5])):
            continue
        stems = {p.stem for p in find_images(root) if folder not in p.parents}
        if len({n.stem for n in notes} & stems) >= 0.5 * len(notes):
            return folder
    return None


def _is_voc(path: Path) -> bool:
    try:
        return ET.parse(path).getroot().tag == "annotation"
    except (OSError, ET.ParseError):
        return False


def _refuse_repeated_stems(root: Path, files: list[Path]) -> None:
    """Annotations matched by file name need each name once: two images of one name are an error."""
    seen: dict[str, Path] = {}
    for image in files:
        if image.stem in seen:
            first, second = seen[image.stem].relative_to(root), image.relative_to(root)
            raise DataError(
                f"{root}: {first} and {second} have one name, and annotations are matched by file name; "
                "rename one, or put the images in IMAGES/ and the annotations in ANNOTATIONS/"
            )
        seen[image.stem] = image


def boxes_from_voc(path: str | Path) -> tuple[tuple[int, int], list[tuple[str, int, int, int, int]]]:
    """Pascal VOC XML: the image size (height, width) and the boxes (name, xmin, ymin, xmax, ymax),
    pixel coordinates inclusive and 1-based as VOC writes them."""
    path = Path(path)
    try:
        tree = ET.parse(path).getroot()
        size = tree.find("size")
        height, width = int(size.findtext("height")), int(size.findtext("width"))  # type: ignore[union-attr,arg-type]
        boxes = []
        for obj in tree.iter("object"):
            box = obj.find("bndbox")
            coords = [int(float(box.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr,arg-type]
            boxes.append((obj.findtext("name") or "", *coords))
    except (OSError, ET.ParseError, AttributeError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a Pascal VOC annotation ({error})") from None
    return (height, width), boxes  # type: ignore[return-value]


def scan_deeppcb(root: str | Path) -> MaskedImages:
    """DeepPCB as released: ``PCBData/groupG/G/N_test.jpg`` (a tested board, its boxes in
    ``groupG/G_not/N.txt``) and ``N_temp.jpg`` (its defect-free template). ``root`` is the release
    folder or its ``PCBData/``. The release's ``test.txt`` list makes the test part (a template goes
    with its tested image), everything else trains; each sample's group is its ``groupG`` folder."""
    root = existing_folder(root)
    data = root / "PCBData" if (root / "PCBData").is_dir() else root
    listed = data / "test.txt"
    test_stems: set[str] = set()
    if listed.is_file():
        for line in listed.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                test_stems.add(Path(line.split()[0]).stem)
    samples = []
    for image in sorted(data.glob("group*/*/*.jpg")):
        stem, kind = deeppcb_board(image).name, image.stem.rpartition("_")[2]
        if kind not in ("test", "temp") or image.parent.name.endswith("_not"):
            continue
        boxes = image.parent.parent / f"{image.parent.name}_not" / f"{stem}.txt"
        mask = boxes.relative_to(root) if kind == "test" and boxes.is_file() else None
        if kind == "test" and mask is None:
            raise DataError(f"{image}: a tested image without its box file {boxes}")
        part = ("test" if stem in test_stems else "train") if test_stems else None
        samples.append(MaskedSample(image.relative_to(root), mask, image.parent.parent.name, part))
    if not samples:
        raise DataError(f"{data}: no groupG/G/N_test.jpg images (DeepPCB layout)")
    return MaskedImages(root, "deeppcb", tuple(samples), types=DEEPPCB_TYPES)


def deeppcb_board(image: Path) -> Path:
    """The board a DeepPCB image shows, ``G/N`` for ``G/N_test.jpg`` (tested) and ``G/N_temp.jpg``
    (its defect-free template): one photograph's twins, which a split keeps together."""
    return image.parent / image.stem.rpartition("_")[0]


def boxes_from_deeppcb(path: str | Path) -> list[tuple[str, int, int, int, int]]:
    """DeepPCB's box file: one ``x1 y1 x2 y2 type`` line per defect (pixel corners, 0-based), as
    (type, xmin, ymin, xmax, ymax) in :func:`mask_from_boxes`' 1-based inclusive convention."""
    path = Path(path)
    boxes = []
    try:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.replace(",", " ").split()
            if not fields:
                continue
            if len(fields) != 5:
                raise ValueError(f"line {number} has {len(fields)} fields, not x1 y1 x2 y2 type")
            x1, y1, x2, y2, kind = (int(float(v)) for v in fields)
            if not 1 <= kind <= len(DEEPPCB_TYPES):
                raise ValueError(f"line {number} has type {kind}, not 1 to {len(DEEPPCB_TYPES)}")
            boxes.append((DEEPPCB_TYPES[kind - 1], x1 + 1, y1 + 1, x2, y2))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a DeepPCB box file ({error})") from None
    return boxes


def mask_from_boxes(
    size: tuple[int, int],
    boxes: Sequence[tuple[str, int, int, int, int]],
    types: Sequence[str] | None = None,
) -> np.ndarray:
    """A coarse mask (H, W) of the boxes (how the paper treats the Wood set): bool, True inside
    every box; with ``types``, a class-index mask (uint8) in which a box is the index of its name
    in ``types`` plus one (a later box wins where boxes overlap)."""
    mask = np.zeros(size, dtype=np.uint8 if types is not None else bool)
    index = {name: k for k, name in enumerate(types or (), 1)}
    for name, xmin, ymin, xmax, ymax in boxes:
        value = True if types is None else index.get(name or "defect", index.get("defect", 1))
        mask[max(ymin - 1, 0) : ymax, max(xmin - 1, 0) : xmax] = value
    return mask


def existing_folder(root: str | Path) -> Path:
    """``root`` as a Path (``~`` expanded), or a DataError when it is not a folder."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: no such folder")
    return path
