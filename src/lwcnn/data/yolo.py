"""YOLO text labels in the ultralytics layout: boxes, segmentation polygons and oriented boxes.

``data.yaml`` (or ``dataset.yaml``) names the parts (``train``, ``val``, ``test``: image folders or
text files listing images, relative to ``path`` or to the YAML file) and the types (``names``, a
list or an index -> name mapping). Each image ``.../images/.../NAME.jpg`` has its labels in
``.../labels/.../NAME.txt``, one object a line in fractions of the image's width and height:
``class cx cy w h`` is a box, ``class x1 y1 x2 y2 ... xn yn`` a polygon (segmentation, and
oriented boxes as four corners). A missing or empty label file is a defect-free image. Without a
YAML file: ``images/`` and ``labels/`` folders, the names from a ``classes.txt`` (labelImg's).
The YAML's parts are the dataset's own split when it has a test part.
"""

from __future__ import annotations

from pathlib import Path

from lwcnn.data.images import find_images
from lwcnn.data.masked_images import (
    LabelProblem,
    MaskedImages,
    MaskedSample,
    existing_folder,
    read_types_file,
)
from lwcnn.data.shapes import Shape
from lwcnn.errors import DataError

YAML_FILES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
_SLACK = 0.01  # normalised coordinates may overshoot [0, 1] this much (rounding in exporters)


def find_yolo_yaml(root: Path) -> Path | None:
    """The dataset's YAML file at ``root``, if any."""
    return next((root / n for n in YAML_FILES if (root / n).is_file()), None)


def scan_yolo(root: str | Path) -> MaskedImages:
    """A YOLO dataset (see the module docstring) as one collection."""
    root = existing_folder(root)
    config = find_yolo_yaml(root)
    if config is not None:
        names, parts = _read_yaml(config)
    else:
        if not (root / "images").is_dir():
            raise DataError(f"{root}: no data.yaml and no images/ folder (YOLO layout)")
        names = list(read_types_file(root / "labels", root))
        parts = {"": [root / "images"]}
    own_parts = "test" in parts
    samples: list[MaskedSample] = []
    problems: list[LabelProblem] = []
    seen_labels: set[Path] = set()
    top = -1
    for part, sources in parts.items():
        for image in _images_of(sources, config or root):
            labels = _label_file(image)
            shapes, lost, highest = _read_labels(labels, names)
            top = max(top, highest)
            if labels.is_file():
                seen_labels.add(labels.resolve())
            problems += [LabelProblem(_relative(labels, root), f"{image.name}: {p}") for p in lost]
            mask = _relative(labels, root) if shapes else None
            own = part if own_parts else None
            samples.append(
                MaskedSample(_relative(image, root), mask, "", own, tuple(shapes), normalized=True)
            )
    if not samples:
        raise DataError(f"{config or root}: no images in the YOLO dataset's parts")
    problems += _labels_without_images(root, parts, seen_labels)
    types = tuple(names) if names else tuple(str(k) for k in range(top + 1)) or ("defect",)
    return MaskedImages(root, "yolo", tuple(samples), types=types, label_problems=tuple(problems))


def _read_yaml(path: Path) -> tuple[list[str], dict[str, list[Path]]]:
    """The type names and each part's image sources (folders or list files) of a data.yaml."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DataError(f"{path}: not a readable YAML file ({error})") from None
    if not isinstance(data, dict) or "names" not in data:
        raise DataError(f"{path}: a YOLO data.yaml names its classes (names: [...])")
    raw = data["names"]
    if isinstance(raw, dict):
        try:
            names = [str(raw[k]) for k in sorted(raw, key=int)]
        except (TypeError, ValueError):
            raise DataError(f"{path}: names maps class numbers to names (0: scratch)") from None
    elif isinstance(raw, list):
        names = [str(n) for n in raw]
    else:
        raise DataError(f"{path}: names is a list or a mapping, not {type(raw).__name__}")
    base = Path(str(data.get("path", ""))).expanduser()
    base = base if base.is_absolute() else path.parent / base
    if not base.is_dir():
        base = path.parent  # a path written on another machine: the YAML's folder
    parts: dict[str, list[Path]] = {}
    for part in ("train", "val", "test"):
        entries = data.get(part)
        if not entries:
            continue
        entries = entries if isinstance(entries, list) else [entries]
        parts[part] = [_source(base, str(entry)) for entry in entries]
    if not parts:
        raise DataError(f"{path}: names no part (train: images/train, val: ..., test: ...)")
    return names, parts


def _source(base: Path, entry: str) -> Path:
    """A part's folder or list file; ``../train/images`` (Roboflow's YAML beside ``train/``) is
    also looked for without its ``../``, as ultralytics does."""
    path = Path(entry).expanduser()
    if path.is_absolute():
        return path
    if not (base / path).exists() and entry.startswith("../"):
        return base / entry[3:]
    return base / path


def _images_of(sources: list[Path], where: Path) -> list[Path]:
    """The images of a part: every image under its folders, and the files its list files name."""
    images: list[Path] = []
    for source in sources:
        if source.is_dir():
            images += find_images(source)
        elif source.is_file() and source.suffix == ".txt":
            for line in source.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    listed = Path(line.strip())
                    images.append(listed if listed.is_absolute() else source.parent / listed)
        else:
            raise DataError(f"{where}: part {source} is neither a folder nor a list file")
    return images


def _label_file(image: Path) -> Path:
    """``.../images/.../NAME.ext`` -> ``.../labels/.../NAME.txt`` (the last ``images`` folder)."""
    parts = list(image.parts)
    for index in range(len(parts) - 2, -1, -1):
        if parts[index] == "images":
            parts[index] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def _read_labels(path: Path, names: list[str]) -> tuple[list[Shape], list[str], int]:
    """A label file's shapes (normalised coordinates), a line per unusable object, the highest class."""
    if not path.is_file():
        return [], [], -1
    shapes, lost, top = [], [], -1
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            kind, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            lost.append(f"line {number} is not 'class x y ...' numbers: {line.strip()[:60]!r}")
            continue
        if kind < 0 or (names and kind >= len(names)):
            lost.append(f"line {number} has class {kind}, not 0 to {len(names) - 1} ({', '.join(names)})")
            continue
        if any(v < -_SLACK or v > 1 + _SLACK for v in values):
            lost.append(f"line {number} has coordinates outside 0..1 (YOLO labels are fractions)")
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            shapes.append(Shape(kind + 1, "box", (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
        elif len(values) >= 6 and len(values) % 2 == 0:
            shapes.append(Shape(kind + 1, "polygon", tuple(values)))
        else:
            lost.append(f"line {number} has {len(values)} coordinates: 4 (a box) or 6+ pairs (a polygon)")
            continue
        top = max(top, kind)
    return shapes, lost, top


def _labels_without_images(root: Path, parts: dict[str, list[Path]], seen: set[Path]) -> list[LabelProblem]:
    """Label files under the parts' labels folders that no image of the parts has."""
    found = []
    for sources in parts.values():
        for source in sources:
            folder = _label_file(source / "x.png").parent if source.is_dir() else None
            if folder is None or not folder.is_dir():
                continue
            for label in sorted(folder.rglob("*.txt")):
                if label.resolve() not in seen and label.name != "classes.txt":
                    found.append(LabelProblem(_relative(label, root), "label file without an image"))
    return found


def _relative(path: Path, root: Path) -> Path:
    """``path`` relative to ``root`` where it lies under it, else as it is (a list file may name
    images elsewhere: ``root / path`` is then that path again)."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.resolve()


def is_yolo_folder(root: Path) -> bool:
    """Whether ``root`` looks like a YOLO dataset: a data.yaml, or images/ beside labels/ of .txt files."""
    if find_yolo_yaml(root) is not None:
        return True
    labels = root / "labels"
    return (root / "images").is_dir() and labels.is_dir() and any(labels.rglob("*.txt"))
