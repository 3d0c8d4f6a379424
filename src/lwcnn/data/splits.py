"""Seeded, stratified train/validation/test splits, saved with a run so evaluation uses exactly the
training's split."""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.data.classification import DataError, LabelledImages
from lwcnn.fileio import atomic_write_json

#: The NEU protocol: per class 150 training and 150 test images.
NEU_STANDARD_SPLIT: dict[str, int] = {"train": 150, "test": 150}


@dataclass(frozen=True)
class Split:
    """Named parts (``train``, ``val``, ``test``...) of a labelled collection, as relative paths."""

    seed: int
    sizes: dict[str, float]
    classes: tuple[str, ...]
    parts: dict[str, tuple[str, ...]]

    def indices(self, images: LabelledImages, part: str) -> list[int]:
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
        raise ValueError("split sizes are empty")
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int | float):
            raise ValueError(
                f"split size {name}={size!r} is not a number (in YAML write {{train: 0.8, val: 0.2}}, "
                "with a space after each colon)"
            )
        if size <= 0 or (not float(size).is_integer() and size >= 1):
            raise ValueError(f"split size {name}={size}: use a per-class count >= 1 or a fraction in (0, 1)")
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
        raise ValueError(f"cross-validation needs k >= 2 folds, got {k}")
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
