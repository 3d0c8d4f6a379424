"""Images with their masks beside them, in the same folder: ``x.jpg`` with ``x.png`` (the
magnetic-tile defect set), ``x.png`` with ``x_GT.png`` (KolektorSDD2), ``x_mask.png``,
``x_label.png``... (the ``pairs`` layout).

Pairing is by name and checked by content: a partner counts as a mask only where the first few of
its folder look like masks (a few grey values), so two copies of one photo are never taken for
an image and its mask. The class-folder reading uses the same pairing to leave masks out: class
folders that hold each image's mask must not train a classifier on the masks as images.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lwcnn.data.images import find_images
from lwcnn.errors import DataError

if TYPE_CHECKING:
    from lwcnn.data.masked_images import MaskedImages

#: the end of a mask's file stem that names it a mask (any case): ``x_mask.png`` is ``x.*``'s
MASK_SUFFIXES = ("_mask", "_masks", "_label", "_labels", "_gt", "_groundtruth", "_ground_truth")
#: a ``.png`` beside a photo of the same stem in one of these formats is that photo's mask
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: beside a JPEG photo, a file of the same stem in any lossless format is its mask (``x.bmp``)
LOSSLESS_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")
#: a mask has at most this many grey values (0/255 masks two; soft edges a few more, which
#: ``read_mask`` then refuses by name); a photo has far more
MASK_VALUES = 16
#: mask files in these formats may be 0/255 masks with compression noise (:func:`lossy_two_level`)
LOSSY_SUFFIXES = (".jpg", ".jpeg", ".webp")
#: ... if at most this share of their pixels lies away from both levels
LOSSY_MIDDLE_SHARE = 0.05
#: folder names at the top that are the dataset's own parts (KolektorSDD2's ``train/`` and ``test/``)
PART_FOLDERS = {
    "train": "train", "training": "train", "test": "test", "testing": "test",
    "val": "val", "valid": "val", "validation": "val",
}  # fmt: skip


def mask_partners(files: Iterable[Path], checked: int = 5) -> dict[Path, Path]:
    """Each image among ``files`` that has its mask beside it -> that mask. A folder's pairs count
    only if the first ``checked`` of its masks look like masks (:func:`looks_like_mask`)."""
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for path in files:
        by_folder[path.parent].append(path)
    partners: dict[Path, Path] = {}
    for folder_files in by_folder.values():
        found = _pairs_in_folder(folder_files)
        if found and all(looks_like_mask(m) for m in sorted(found.values())[:checked]):
            partners.update(found)
    return partners


def _pairs_in_folder(files: list[Path]) -> dict[Path, Path]:
    """image -> mask among the files of one folder, by name alone."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        by_stem[path.stem.lower()].append(path)
    named = {}
    for path in sorted(files):
        stem = path.stem.lower()
        suffix = next((s for s in MASK_SUFFIXES if stem.endswith(s) and len(stem) > len(s)), None)
        if suffix is None:
            continue
        images = [p for p in by_stem.get(stem[: -len(suffix)], []) if p != path]
        if len(images) == 1:  # two images of that stem (x.jpg and x.png): whose mask is unclear
            named[images[0]] = path
    pairs = dict(named)
    taken = set(named) | set(named.values())
    for group in by_stem.values():
        if len(group) != 2 or taken & set(group):
            continue
        a, b = group
        for photo, mask in ((a, b), (b, a)):
            if _is_mask_partner(photo.suffix.lower(), mask.suffix.lower()):
                pairs[photo] = mask
                break
    return pairs


def _is_mask_partner(photo: str, mask: str) -> bool:
    """Whether a file of extension ``mask`` is the mask of a same-stem one of extension ``photo``."""
    if photo in (".jpg", ".jpeg"):
        return mask in LOSSLESS_SUFFIXES
    return photo in PHOTO_SUFFIXES and mask == ".png"


def looks_like_mask(path: Path, dark_background: bool = False) -> bool:
    """Whether ``path`` holds at most :data:`MASK_VALUES` grey values, or is a lossily stored
    0/255 mask (:func:`lossy_mask`); an unreadable file: no. ``dark_background``: its darkest
    value must be 0 too (a mask marks good pixels 0; a flat grey image is no mask)."""
    gray = _gray_preview(path)
    if gray is None or (dark_background and gray.min() != 0):
        return False
    return len(np.unique(gray)) <= MASK_VALUES or lossy_mask(path, gray)


def _gray_preview(path: Path) -> np.ndarray | None:
    """An image file's grey values, decoded small where the format allows (None: unreadable)."""
    try:
        with Image.open(path) as image:
            image.draft("L", (256, 256))  # JPEG: decode small, the values need no detail
            return np.asarray(image.convert("L") if image.mode not in ("L", "1", "P", "I", "I;16") else image)
    except (OSError, SyntaxError, ValueError):
        return None


def lossy_mask(path: Path, gray: np.ndarray) -> bool:
    """Whether ``gray``, read from ``path``, is a 0/255 mask stored in a lossy format
    (:data:`LOSSY_SUFFIXES`) with its compression noise (:func:`lossy_two_level`)."""
    return path.suffix.lower() in LOSSY_SUFFIXES and lossy_two_level(gray)


def lossy_two_level(gray: np.ndarray) -> bool:
    """Whether a grey array is a 0/255 mask under lossy compression: at most
    :data:`LOSSY_MIDDLE_SHARE` of its pixels away from both levels (the ringing along a defect's
    edges), where a photo has most of its pixels between them. A mask whose defect pixels are all
    blurred (a 1-pixel crack) is refused as before, not guessed."""
    if gray.dtype != np.uint8 or gray.size == 0:
        return False
    middle = np.count_nonzero((gray > 48) & (gray < 208))
    if middle > LOSSY_MIDDLE_SHARE * gray.size:
        return False
    high = np.count_nonzero(gray >= 208)
    return high == 0 or middle <= high  # the edge noise is smaller than the defect it surrounds


def masks_beside_images(files: Iterable[Path]) -> set[Path]:
    """The files among ``files`` that are another one's mask (what a class-folder scan leaves out)."""
    return set(mask_partners(list(files)).values())


def has_mask_pairs(folder: Path) -> bool:
    """Whether some image under ``folder`` has its mask beside it."""
    return bool(mask_partners(find_images(folder)))


def scan_mask_pairs(root: str | Path) -> MaskedImages:
    """The ``pairs`` layout: every image under ``root`` with its mask, if it has one, beside it
    (0 good, one other value defect; an image without a mask, or with an empty one, is
    defect-free). Top folders named ``train``/``test``/``val`` are the dataset's own parts; where
    images sit in folders below (``MT_Crack/Imgs/``), the top folders that hold defects are the
    defect types (``data.types=typed``). Images loose at the top, beside folders of pairs (a
    README's picture), are left out."""
    from lwcnn.data.masked_images import MaskedImages, MaskedSample, existing_folder, read_mask

    root = existing_folder(root)
    files = find_images(root)
    partners = mask_partners(files)
    if not partners:
        raise DataError(
            f"{root}: no image with its mask beside it (pairs layout: x.jpg with x.png, x_mask.png, "
            "x_label.png or x_GT.png in the same folder)"
        )
    masks = set(partners.values())
    nested = any(p.parent != root for p in partners)
    has_test = any(_part(p.relative_to(root)) == "test" for p in partners)
    found = []
    for image in files:
        relative = image.relative_to(root)
        if image in masks or (nested and image.parent == root and image not in partners):
            continue
        mask = partners.get(image)
        defective = mask is not None and bool(read_mask(mask).any())
        found.append((relative, mask.relative_to(root) if defective else None))  # type: ignore[union-attr]
    type_of = {relative: _type_folder(relative) for relative, _ in found}
    types = sorted({type_of[r] for r, mask in found if mask is not None and type_of[r]})
    typed = len(types) >= 2
    samples = []
    for relative, mask in found:
        kinds = ((types.index(type_of[relative]) + 1, mask),) if typed and mask is not None else ()
        part = _part(relative) if has_test else None
        samples.append(MaskedSample(relative, mask, group="", part=part, type_masks=kinds))
    return MaskedImages(root, "pairs", tuple(samples), types=tuple(types) if typed else ("defect",))


def _part(relative: Path) -> str | None:
    """The dataset's own part an image is in, from its top folder's name (else None)."""
    return PART_FOLDERS.get(relative.parts[0].lower()) if len(relative.parts) > 1 else None


def _type_folder(relative: Path) -> str:
    """The top folder below any part folder, where the image sits deeper ('' otherwise)."""
    parts = relative.parts[1:] if _part(relative) else relative.parts
    return parts[0] if len(parts) > 1 else ""


def find_mask_folders(root: Path) -> list[tuple[str, str]]:
    """(image folder, mask folder) pairs among ``root``'s subfolders, for an image+mask layout
    whose folders are not called ``images/`` and ``masks/`` (``img/`` + ``gt/``, DeepCrack's
    ``train_img/`` + ``train_lab/``...): a folder of masks (the first five look like masks) at
    least half of whose files are named after the images of a sibling folder (same path and stem,
    or the stem with a mask suffix). Each folder is in one pair at most; sorted by mask folder."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files = {folder: find_images(folder) for folder in folders}
    keys = {folder: {mask_key(p.relative_to(folder)) for p in files[folder]} for folder in folders}
    maskish = {f for f in folders if keys[f] and all(looks_like_mask(p) for p in files[f][:5])}
    pairs: list[tuple[str, str]] = []
    used: set[Path] = set()
    for masks in sorted(maskish):
        best, share = None, 0.5
        for images in folders:
            if images in maskish or images in used or images == masks or not keys[images]:
                continue
            overlap = len(keys[masks] & keys[images]) / len(keys[masks])
            if overlap >= share and (best is None or overlap > share):
                best, share = images, overlap
        if best is not None and masks not in used:
            pairs.append((best.name, masks.name))
            used |= {best, masks}
    return pairs


def mask_key(relative: Path) -> str:
    """A file's path without its extension and any mask suffix, what an image and its mask share."""
    return strip_mask_suffix(relative.with_suffix("").as_posix())


def strip_mask_suffix(stem: str) -> str:
    """``stem`` without a :data:`MASK_SUFFIXES` ending (``a_mask`` -> ``a``; any case)."""
    lowered = stem.lower()
    suffix = next((s for s in MASK_SUFFIXES if lowered.endswith(s) and len(lowered) > len(s)), "")
    return stem[: len(stem) - len(suffix)]


def part_of_folder(name: str) -> str | None:
    """The dataset part a folder's name says (``train_img`` -> train, ``test`` -> test), if any."""
    words = {w for w in re.split(r"[^a-z]+", name.lower()) if w}
    found = {PART_FOLDERS[w] for w in words if w in PART_FOLDERS}
    return found.pop() if len(found) == 1 else None


def scan_mask_folders(root: str | Path) -> MaskedImages:
    """The ``masks`` layout: ``images/`` + ``masks/``, or one pair of an image folder and a folder
    of masks named after its images under other names (:func:`find_mask_folders`), or several
    such pairs named for the dataset's parts (``train_img/`` + ``train_lab/``, ``test_img/`` +
    ``test_lab/``), whose parts are then the split."""
    from lwcnn.data.masked_images import MaskedImages, existing_folder, scan_image_mask_folders

    root = existing_folder(root)
    if (root / "images").is_dir():
        return scan_image_mask_folders(root)
    pairs = find_mask_folders(root)
    if not pairs:
        raise DataError(
            f"{root}: no images/ folder and no folder of masks named after another folder's images "
            "(masks layout: images/ + masks/ with the same file stems)"
        )
    if len(pairs) == 1:
        return scan_image_mask_folders(root, *pairs[0])
    parts = [part_of_folder(images) for images, _ in pairs]
    if None in parts or len(set(parts)) < len(parts) or "test" not in parts:
        shown = ", ".join(f"{images}/ + {masks}/" for images, masks in pairs)
        raise DataError(
            f"{root}: several image and mask folders ({shown}); name them for their parts (train_img/, "
            "test_img/...) or give data.root one pair's parent"
        )
    scans = [scan_image_mask_folders(root, *pair) for pair in pairs]
    if len({scan.types for scan in scans}) > 1 or len({scan.index_masks for scan in scans}) > 1:
        raise DataError(f"{root}: the parts' mask folders name different defect types")
    samples = tuple(
        replace(sample, part=part) for scan, part in zip(scans, parts, strict=True) for sample in scan.samples
    )
    problems = tuple(problem for scan in scans for problem in scan.label_problems)
    return MaskedImages(
        root,
        "masks",
        samples,
        types=scans[0].types,
        index_masks=scans[0].index_masks,
        label_problems=problems,
    )


def label_files(files: Sequence[Path]) -> set[Path]:
    """The files among ``files`` (the images found under one folder) that are other ones' masks,
    whatever the layout: masks beside their images (:func:`mask_partners`: KolektorSDD's
    ``PartN_label.bmp``, ``x.jpg`` + ``x.png``), and the files of a folder of masks named after the
    images of a sibling folder (``images/`` + ``masks/``, also with ``masks/TYPE/``; ``train_img/``
    + ``train_lab/``) or of its parent (DAGM's ``Train/Label/``), matched by file name. What
    ``lwcnn inspect`` leaves out of a labelled dataset's folder; a folder's files count as masks
    only if its first five look like masks (:func:`looks_like_mask`)."""
    if not files:
        return set()
    files = sorted(files)
    # a mask marks good pixels 0: a flat or two-tone image of another grey beside a photo stays an image
    labels = {mask for mask in mask_partners(files).values() if looks_like_mask(mask, dark_background=True)}
    top = Path(os.path.commonpath([p.parent for p in files]))
    under: dict[Path, list[Path]] = defaultdict(list)  # each folder below ``top`` -> its files, any depth
    direct: dict[Path, list[Path]] = defaultdict(list)  # each folder -> its own files
    for path in files:
        direct[path.parent].append(path)
        for folder in path.parents:
            if folder == top:
                break
            under[folder].append(path)
    children: dict[Path, list[Path]] = defaultdict(list)
    for folder in under:
        children[folder.parent].append(folder)
    maskish: dict[tuple[Path, ...], bool] = {}

    def look_like_masks(found: list[Path]) -> bool:
        first = tuple(found[:5])
        if first not in maskish:
            maskish[first] = all(looks_like_mask(p, dark_background=True) for p in first)
        return maskish[first]

    def names(found: list[Path]) -> set[str]:
        return {mask_key(Path(p.name)) for p in found}

    for masks, found in under.items():
        if set(found) <= labels or not look_like_masks(found):
            continue
        siblings = [under[f] for f in children[masks.parent] if f != masks]
        photos = [names(f) for f in [*siblings, direct.get(masks.parent, [])] if f and not look_like_masks(f)]
        stems = names(found)
        if any(len(stems & other) >= 0.5 * len(stems) for other in photos):
            labels.update(found)
    return labels
