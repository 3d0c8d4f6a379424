"""Small generated datasets for tests: quick to make, quick to learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PATTERNS = ("horizontal", "vertical", "checker")


def pattern_image(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A gray (size, size) uint8 texture of ``kind`` with a random phase, period and noise."""
    period = int(rng.integers(4, 8))
    phase = int(rng.integers(0, period))
    ys, xs = np.mgrid[0:size, 0:size]
    if kind == "horizontal":
        base = ((ys + phase) // (period // 2)) % 2
    elif kind == "vertical":
        base = ((xs + phase) // (period // 2)) % 2
    else:
        base = (((ys + phase) // (period // 2)) + ((xs + phase) // (period // 2))) % 2
    image = 60 + 120 * base + rng.normal(0, 12, (size, size))
    return np.clip(image, 0, 255).astype(np.uint8)


def make_class_folders(
    root: Path, per_class: int = 12, size: int = 32, seed: int = 0, suffix: str = ".png"
) -> Path:
    """``root/<pattern>/<n>.png`` for the three patterns."""
    rng = np.random.default_rng(seed)
    for kind in PATTERNS:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(pattern_image(kind, size, rng)).save(root / kind / f"{i:03d}{suffix}")
    return root
