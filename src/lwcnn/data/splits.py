"""Seeded, stratified train/validation/test splits, saved with a run so evaluation uses exactly the
training's split."""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.data.classification import DataError, LabelledImages
from lwcnn.data.masked_images import MaskedImages, deeppcb_board
from lwcnn.errors import ConfigError
from lwcnn.fileio import atomic_write_json

#: The NEU protocol: per class 150 training and 150 test images.
NEU_STANDARD_SPLIT: dict[str, int] = {"train": 150, "test": 150}


@dataclass(frozen=True)
class Split:
    """Named parts (``train``, ``val``, ``test``...) of a labelled collection, as relative paths."""

    seed: int
    sizes: dict[str, Any]  # part sizes as configured (segmentation: also the folds file and test fold)
    classes: tuple[str, ...]
    parts: dict[str, tuple[str, ...]]

    def indices(self, images: LabelledImages | MaskedImages, part: str) -> list[int]:
        """Indices into ``images`` of the files of ``part``; an error if a file is no longer there."""
        if part not in self.parts:
            raise DataError(f"split has no part {part!r} (it has {', '.join(self.parts)})")
        if tuple(images.classes) != self.classes:
            raise DataError(
                f"{images.root}: classes {list(images.classes)} differ from the split's {list(self.classes)}"
            )
        where = {p.as_posix(): i for i, p in enumerate(images.paths)}
        missing = [p for p in self.parts[part] if p not in where]
        if missing:
            raise DataError(
                f"{images.root / missing[0]}: in the split's {part!r} part but not in the data "
                f"({len(missing)} file(s) missing)"
            )
        return [where[p] for p in self.parts[part]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "sizes": self.sizes,
            "classes": list(self.classes),
            "parts": {name: list(paths) for name, paths in self.parts.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Split:
        return cls(
            seed=int(data["seed"]),
            sizes=dict(data["sizes"]),
            classes=tuple(data["classes"]),
            parts={name: tuple(paths) for name, paths in data["parts"].items()},
        )

    def save(self, path: str | Path) -> None:
        """Write the split as JSON, atomically."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Split:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}: not a readable split file ({error})") from None


def stratified_split(images: LabelledImages, sizes: Mapping[str, float], seed: int) -> Split:
    """Split every class alike: ``sizes`` maps part names to per-class counts (integers, e.g. the NEU
    protocol ``{"train": 150, "test": 150}``) or fractions (``{"train": 0.8, "val": 0.2}``; when the
    fractions add up to 1 the last part takes the rounding remainder).

    The draw depends only on ``seed``, the class name and the class's files (sorted), so a split is
    reproducible and adding a class or a file of another class leaves the others' parts unchanged.
    Raises :class:`DataError` when a class has too few images.
    """
    if not sizes:
        raise ConfigError("split sizes are empty")
    if "folds" in sizes:
        return _class_fold_split(images, sizes, seed)
    if images.parts and "test" not in sizes:
        return _own_class_split(images, sizes, seed)
    for name, size in sizes.items():
        _check_size(name, size)
    parts: dict[str, list[str]] = {name: [] for name in sizes}
    for label, class_name in enumerate(images.classes):
        files = sorted(p.as_posix() for p, y in zip(images.paths, images.labels, strict=True) if y == label)
        counts = _counts(len(files), sizes, class_name)
        rng = np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8"))])
        order = rng.permutation(len(files))
        start = 0
        for name, count in counts.items():
            parts[name] += [files[i] for i in order[start : start + count]]
            start += count
    return Split(
        seed=seed,
        sizes={k: float(v) for k, v in sizes.items()},
        classes=tuple(images.classes),
        parts={name: tuple(sorted(paths)) for name, paths in parts.items()},
    )


def fold_count(sizes: Mapping[str, Any]) -> int | None:
    """K of a ``{folds: K, ...}`` split (folds computed from the data), None for any other split."""
    folds = sizes.get("folds")
    if folds is None or isinstance(folds, str):
        return None
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"split folds={folds!r}: a number of folds >= 2 (or a folds file)")
    return folds


def class_folds(images: LabelledImages, k: int, seed: int) -> list[list[str]]:
    """K folds of image paths, every class dealt alike in a seeded order (stratified K-fold)."""
    folds: list[list[str]] = [[] for _ in range(k)]
    offset = 0
    for label, class_name in enumerate(images.classes):
        files = sorted(p.as_posix() for p, y in zip(images.paths, images.labels, strict=True) if y == label)
        if len(files) < k:
            raise DataError(f"class {class_name!r} has {len(files)} images, fewer than {k} folds")
        order = np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8"))]).permutation(len(files))
        for position, index in enumerate(order):
            folds[(position + offset) % k].append(files[index])
        offset += len(files)  # the next class starts where this one stopped: folds stay even
    return [sorted(fold) for fold in folds]


def _own_class_split(images: LabelledImages, sizes: Mapping[str, float], seed: int) -> Split:
    """The dataset's own parts (``train/``, ``test/``, ``val/`` folders), with ``val`` (a fraction)
    of each training class held out to validate where the dataset has no validation part. A dataset
    with ``train/`` and ``val/`` only holds out its ``val/``: that is its test part."""
    if set(sizes) - {"val"}:
        raise ConfigError(
            f"split {dict(sizes)}: on data with its own train/test folders give only 'val' (or folds)"
        )
    own: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for index, part in enumerate(images.parts):
        own[part].append(index)
    if not own["test"]:
        own["test"], own["val"] = own["val"], []
    paths = {name: [images.paths[i].as_posix() for i in indices] for name, indices in own.items()}
    val = float(sizes.get("val") or 0)
    if not own["val"] and val:
        rest = dataclasses.replace(images.subset(own["train"]), parts=())
        inner = stratified_split(rest, {"train": 1 - val, "val": val}, seed)
        paths["train"], paths["val"] = list(inner.parts["train"]), list(inner.parts["val"])
    parts = {name: tuple(sorted(paths[name])) for name in ("train", "val", "test") if paths[name]}
    return Split(seed=seed, sizes=dict(sizes), classes=tuple(images.classes), parts=parts)


def _class_fold_split(images: LabelledImages, sizes: Mapping[str, Any], seed: int) -> Split:
    k = fold_count(sizes)
    if k is None:
        raise ConfigError(f"split {dict(sizes)}: a classifier's folds are a number (folds: 5)")
    fold = _test_fold(sizes, k)
    folds = class_folds(images, k, seed)
    test = set(folds[fold])
    keep = [i for i, path in enumerate(images.paths) if path.as_posix() not in test]
    rest = images.subset(keep)
    val = float(sizes.get("val") or 0)
    inner = stratified_split(rest, {"train": 1 - val, "val": val}, seed) if val else None
    parts = {
        "train": inner.parts["train"] if inner else tuple(sorted(p.as_posix() for p in rest.paths)),
        **({"val": inner.parts["val"]} if inner else {}),
        "test": tuple(sorted(test)),
    }
    return Split(seed=seed, sizes=dict(sizes), classes=tuple(images.classes), parts=parts)


def _test_fold(sizes: Mapping[str, Any], k: int) -> int:
    fold = sizes.get("test_fold", 0)
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < k:
        raise ConfigError(f"split test_fold={fold!r}: a fold number from 0 to {k - 1}")
    return fold


def _counts(available: int, sizes: Mapping[str, float], class_name: str) -> dict[str, int]:
    fractions = all(0 < s < 1 for s in sizes.values())
    if fractions:
        counts = {name: math.floor(size * available) for name, size in sizes.items()}
        if math.isclose(sum(sizes.values()), 1.0):
            last = list(sizes)[-1]
            counts[last] = available - sum(v for k, v in counts.items() if k != last)
    else:
        counts = {
            name: int(size) if size >= 1 else math.floor(size * available) for name, size in sizes.items()
        }
    needed = " + ".join(f"{name} {count}" for name, count in counts.items())
    if sum(counts.values()) > available:
        raise DataError(
            f"class {class_name!r} has {available} images; the split needs {sum(counts.values())} ({needed})"
        )
    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        raise DataError(
            f"class {class_name!r} has too few images ({available}) for the split: "
            f"part {empty[0]!r} gets none"
        )
    return counts


def grouped_folds(groups: Sequence[str], defective: Sequence[bool], k: int, seed: int) -> list[list[str]]:
    """Cross-validation folds of whole groups (KolektorSDD items): every image of a group lands in
    the same fold, so an item's near-identical views never sit on both sides. Groups are dealt, in a
    seeded order, each to the fold with the fewest defective images so far (then fewest images), so
    folds are balanced in both. Returns the group names of each fold, sorted."""
    if k < 2:
        raise ConfigError(f"cross-validation needs k >= 2 folds, got {k}")
    names = sorted(set(groups))
    if len(names) < k:
        raise DataError(f"{len(names)} group(s) cannot make {k} folds")
    size = {name: 0 for name in names}
    positives = {name: 0 for name in names}
    for group, is_defective in zip(groups, defective, strict=True):
        size[group] += 1
        positives[group] += int(is_defective)
    rng = np.random.default_rng(seed)
    order = [names[i] for i in rng.permutation(len(names))]
    order.sort(key=lambda name: -positives[name])  # stable: seeded order within equal counts
    folds: list[list[str]] = [[] for _ in range(k)]
    load = [(0, 0) for _ in range(k)]
    for name in order:
        target = min(range(k), key=lambda f: (load[f], f))
        folds[target].append(name)
        load[target] = (load[target][0] + positives[name], load[target][1] + size[name])
    return [sorted(fold) for fold in folds]


def segmentation_split(images: MaskedImages, sizes: Mapping[str, Any], seed: int) -> Split:
    """A split of images with masks, in one of three forms:

    - ``{folds: FILE, test_fold: K, val: 0.2}``: cross-validation folds of groups (KolektorSDD's
      items; ``benchmarks/make_kolektorsdd_folds.py`` writes them): fold K is the test part; ``val``
      (a fraction, optional) of the other groups, drawn by the seed, validates; the rest trains.
    - ``{val: 0.2}`` on a dataset that defines its own train/test parts (DAGM, DeepPCB, a YOLO or COCO
      export with a test part): those parts, with a fraction of the training images held out for
      validation (or the dataset's own validation part, where it has one).
    - ``{train: 0.7, val: 0.1, test: 0.2}`` (fractions or counts): defective and defect-free images
      are split alike; KolektorSDD by whole items, so an item's views stay on one side.
    """
    if "folds" in sizes:
        return _fold_split(images, sizes, seed)
    if any(s.part for s in images.samples) and "test" not in sizes:
        unknown = set(sizes) - {"val"}
        if unknown:
            raise ConfigError(f"split {dict(sizes)}: on {images.layout} data give only 'val' (or folds)")
        own: dict[str, list[int]] = {"train": [], "test": [], "val": []}
        for index, sample in enumerate(images.samples):
            own[sample.part if sample.part in ("test", "val") else "train"].append(index)
        parts = {"test": own["test"], "train": own["train"]}
        if own["val"]:  # the dataset's own validation part (a YOLO or COCO export's val)
            parts["val"] = own["val"]
        elif sizes.get("val"):
            parts["val"] = _held_out_for_validation(images, own["train"], sizes["val"], seed)
            parts["train"] = sorted(set(own["train"]) - set(parts["val"]))
        return _split_of(images, sizes, seed, parts)
    for name, size in sizes.items():
        _check_size(name, size)
    if images.layout == "kolektorsdd":
        groups = images.groups()
        order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
        counts = _counts(len(groups), sizes, "items")
        chosen, start = {}, 0
        for name, count in counts.items():
            chosen[name] = set(order[start : start + count])
            start += count
        parts = {
            name: [i for i, s in enumerate(images.samples) if s.group in members]
            for name, members in chosen.items()
        }
        return _split_of(images, sizes, seed, parts)
    return _split_of(images, sizes, seed, _stratified_indices(images, range(len(images)), sizes, seed))


def _held_out_for_validation(
    images: MaskedImages, indices: Sequence[int], fraction: float, seed: int
) -> list[int]:
    """``fraction`` of the training images ``indices`` held out to validate, defective and
    defect-free images of every group alike. DeepPCB's tested board and its defect-free template
    (``N_test.jpg``, ``N_temp.jpg``) are one photograph's twins and stay together, drawn by pair
    within each group: a validation image whose twin was trained on is not a new board, and the
    test part holds both of a pair."""
    if images.layout != "deeppcb":
        return sorted(_stratified_indices(images, indices, {"val": fraction}, seed)["val"])
    pairs: dict[str, list[int]] = {}
    for index in indices:
        pairs.setdefault(deeppcb_board(images.samples[index].image).as_posix(), []).append(index)
    by_group: dict[str, list[str]] = {}
    for key, members in sorted(pairs.items()):
        by_group.setdefault(images.samples[members[0]].group, []).append(key)
    held: list[int] = []
    for group, keys in sorted(by_group.items()):
        rng = np.random.default_rng([seed, zlib.crc32(f"pairs {group}".encode())])
        for k in rng.permutation(len(keys))[: round(fraction * len(keys))]:
            held += pairs[keys[k]]
    return sorted(held)


def image_folds(images: MaskedImages, k: int, seed: int) -> tuple[list[list[str]], bool]:
    """K folds for cross-validation of a segmenter: of whole groups where a group is one item seen
    several times (KolektorSDD's kosNN), else of single images; balanced in defective images
    (:func:`grouped_folds`). Returns the folds and whether their members are groups."""
    by_group = images.layout == "kolektorsdd"
    units = [s.group if by_group else s.image.as_posix() for s in images.samples]
    return grouped_folds(units, [s.defective for s in images.samples], k, seed), by_group


def _fold_split(images: MaskedImages, sizes: Mapping[str, Any], seed: int) -> Split:
    k = fold_count(sizes)
    if k is not None:
        folds, by_group = image_folds(images, k, seed)
        path = None
        fold = _test_fold(sizes, k)
    else:
        path = Path(str(sizes["folds"]))
        try:
            folds = json.loads(path.read_text(encoding="utf-8"))["folds"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{path}: not a readable folds file ({error})") from None
        fold = int(sizes.get("test_fold", 0))
        if not 0 <= fold < len(folds):
            raise DataError(f"{path}: test_fold {fold} out of range (the file has {len(folds)} folds)")
        by_group = True
    original = images
    if not by_group:
        images = MaskedImages(  # each image its own group: the same code then splits by image
            images.root, images.layout,
            tuple(dataclasses.replace(s, group=s.image.as_posix()) for s in images.samples),
        )  # fmt: skip
    known = set(images.groups())
    unknown = sorted(set(g for f in folds for g in f) - known)
    if unknown:
        raise DataError(f"{path}: group {unknown[0]!r} of the folds is not in {images.root}")
    test_groups = set(folds[fold])
    rest = sorted(known - test_groups)
    val_fraction = float(sizes.get("val") or 0)
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"split val={val_fraction}: a fraction of the training groups in [0, 1)")
    if by_group:
        order = [rest[i] for i in np.random.default_rng(seed).permutation(len(rest))]
        val_groups = set(order[: round(val_fraction * len(rest))]) if val_fraction else set()
    else:  # single images: the validation part drawn from defective and defect-free images alike
        kept = [i for i, s in enumerate(images.samples) if s.group not in test_groups]
        held = _stratified_indices(original, kept, {"val": val_fraction}, seed)["val"] if val_fraction else []
        val_groups = {images.samples[i].group for i in held}
    parts = {"train": [], "val": [], "test": []}
    for index, sample in enumerate(images.samples):
        name = "test" if sample.group in test_groups else "val" if sample.group in val_groups else "train"
        parts[name].append(index)
    if not parts["val"]:
        del parts["val"]
    return _split_of(images, {**sizes, "folds": path.as_posix() if path else k}, seed, parts)


def _stratified_indices(
    images: MaskedImages, indices: Sequence[int] | range, sizes: Mapping[str, float], seed: int
) -> dict[str, list[int]]:
    """Split ``indices`` into parts, the defective and the defect-free images of every group (DAGM
    class, defect class, subfolder) each by ``sizes``: counts or rounded fractions; when fractions
    add up to 1 the last part takes the remainder, otherwise what is left is in no part."""
    parts: dict[str, list[int]] = {name: [] for name in sizes}
    whole = math.isclose(sum(sizes.values()), 1.0) and all(0 < v < 1 for v in sizes.values())
    strata = sorted({(images.samples[i].defective, images.samples[i].group) for i in indices})
    for defective, group in strata:
        kind = f"{'defective' if defective else 'defect-free'} {group}".strip()
        members = sorted(
            i for i in indices if (images.samples[i].defective, images.samples[i].group) == (defective, group)
        )
        counts = {name: int(v) if v >= 1 else round(v * len(members)) for name, v in sizes.items()}
        if whole:
            last = list(sizes)[-1]
            counts[last] = len(members) - sum(v for k, v in counts.items() if k != last)
        if sum(counts.values()) > len(members) or min(counts.values()) < 0:
            raise DataError(
                f"{images.root}: {len(members)} {kind} images cannot make the split {dict(sizes)}"
            )
        rng = np.random.default_rng([seed, zlib.crc32(kind.encode("utf-8"))])
        order = [members[i] for i in rng.permutation(len(members))]
        start = 0
        for name, count in counts.items():
            parts[name] += order[start : start + count]
            start += count
    return parts


def _split_of(
    images: MaskedImages, sizes: Mapping[str, Any], seed: int, parts: Mapping[str, Sequence[int]]
) -> Split:
    for name in ("train",):
        if not parts.get(name):
            raise DataError(f"{images.root}: the split leaves the {name!r} part empty")
    return Split(
        seed=seed,
        sizes=dict(sizes),
        classes=tuple(images.classes),
        parts={
            name: tuple(sorted(images.samples[i].image.as_posix() for i in members))
            for name, members in parts.items()
        },
    )


def _check_size(name: str, size: Any) -> None:
    if isinstance(size, bool) or not isinstance(size, int | float):
        raise ConfigError(
            f"split size {name}={size!r} is not a number (in YAML write {{train: 0.8, val: 0.2}}, "
            "with a space after each colon)"
        )
    if size <= 0 or (not float(size).is_integer() and size >= 1):
        raise ConfigError(f"split size {name}={size}: use a per-class count >= 1 or a fraction in (0, 1)")
