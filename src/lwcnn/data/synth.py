"""Synthetic defect images in the DAGM 2007 layout, for tests, demos and first tries.

Each class has its own background texture and defect kind (scratch, spot, blob, crack); defective
images get a coarse elliptical label around the defect, as DAGM's are. Everything derives from
``seed``, so the same call writes the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lwcnn.errors import ConfigError
from lwcnn.fileio import atomic_write_bytes, atomic_write_text

DEFECT_KINDS: tuple[str, ...] = ("scratch", "spot", "blob", "crack")


def texture(size: int, kind: int, rng: np.random.Generator) -> np.ndarray:
    """A gray background (size, size) float in 0..255: smoothed noise with a class-specific grain
    and, for odd classes, oriented stripes."""
    scale = (2, 4, 8, 16)[kind % 4]
    coarse = rng.normal(0, 1, (size // scale + 2, size // scale + 2))
    up = np.asarray(Image.fromarray(coarse.astype(np.float32)).resize((size, size), Image.Resampling.BICUBIC))
    fine = rng.normal(0, 0.35, (size, size))
    image = 128 + 22 * up + 10 * fine
    if kind % 2:
        angle = rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:size, 0:size]
        image += 12 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) / rng.uniform(3, 6))
    return image


def draw_defect(
    image: np.ndarray, kind: str, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Paint a defect of ``kind`` into ``image``; return the defect's pixel mask and bounding box
    (x0, y0, x1, y1)."""
    size = image.shape[0]
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    if kind == "scratch":
        length, angle = rng.uniform(0.15, 0.4) * size, rng.uniform(0, np.pi)
        dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
        draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=255, width=int(rng.integers(1, 3)))
    elif kind == "spot":
        r = rng.uniform(0.01, 0.03) * size
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif kind == "blob":
        points = []
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            r = rng.uniform(0.03, 0.08) * size
            points.append((cx + r * np.cos(a), cy + r * np.sin(a)))
        draw.polygon(points, fill=255)
    else:  # crack: a jagged random walk
        x, y, angle = cx, cy, rng.uniform(0, 2 * np.pi)
        points = [(x, y)]
        for _ in range(int(rng.integers(8, 16))):
            angle += rng.normal(0, 0.6)
            step = rng.uniform(0.01, 0.03) * size
            x, y = x + step * np.cos(angle), y + step * np.sin(angle)
            points.append((x, y))
        draw.line(points, fill=255, width=1)
    mask = np.asarray(canvas) > 0
    if not mask.any():  # drawn off the canvas: fall back to a spot in the middle
        draw.ellipse([size / 2 - 3, size / 2 - 3, size / 2 + 3, size / 2 + 3], fill=255)
        mask = np.asarray(canvas) > 0
    contrast = rng.choice([-1, 1]) * rng.uniform(35, 70)
    image[mask] += contrast
    ys, xs = np.nonzero(mask)
    return mask, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))


def elliptical_label(size: int, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A coarse ellipse around ``box``, a little larger than the defect, as DAGM labels are."""
    x0, y0, x1, y1 = box
    margin = rng.uniform(0.15, 0.4)
    w, h = max(x1 - x0, 4), max(y1 - y0, 4)
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).ellipse(
        [x0 - margin * w - 2, y0 - margin * h - 2, x1 + margin * w + 2, y1 + margin * h + 2], fill=255
    )
    return np.asarray(canvas)


def synthesize_dagm(
    out: str | Path,
    classes: int = 2,
    train: int = 40,
    test: int = 40,
    defective_fraction: float = 0.25,
    size: int = 256,
    seed: int = 0,
) -> Path:
    """Write ``out/ClassN/{Train,Test}/NNNN.PNG`` with ``Label/Labels.txt`` and
    ``Label/NNNN_label.PNG`` for the defective images; return ``out``."""
    if classes < 1 or train < 1 or test < 1 or size < 32 or not 0 < defective_fraction <= 1:
        raise ConfigError("synth needs classes, train and test >= 1, size >= 32, 0 < defective fraction <= 1")
    out = Path(out)
    for c in range(classes):
        rng = np.random.default_rng([seed, c])
        kind = DEFECT_KINDS[c % len(DEFECT_KINDS)]
        number = 0
        for part, count in (("Train", train), ("Test", test)):
            folder = out / f"Class{c + 1}" / part
            lines = []
            n_defective = max(1, round(count * defective_fraction))
            defective = set(rng.choice(count, n_defective, replace=False).tolist())
            for i in range(count):
                number += 1
                name = f"{number:04d}.PNG"
                image = texture(size, c, rng)
                label_name = ""
                if i in defective:
                    _, box = draw_defect(image, kind, rng)
                    label_name = f"{number:04d}_label.PNG"
                    _write_png(folder / "Label" / label_name, elliptical_label(size, box, rng))
                _write_png(folder / name, np.clip(image, 0, 255).astype(np.uint8))
                lines.append(f"{i + 1}\t{int(i in defective)}\t{name}\t0\t{label_name}".rstrip())
            atomic_write_text(folder / "Label" / "Labels.txt", "1\n" + "\n".join(lines) + "\n")
    return out


def _write_png(path: Path, array: np.ndarray) -> None:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
