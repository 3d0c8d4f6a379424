"""Synthetic defects painted into any surface image, with their pixel masks.

The pretext of ``lwcnn pretrain --objective defects``: on a texture (a procedural one, or one of a
user's own defect-free images), find what does not belong to it. The kinds are what inspection
meets on most surfaces: thin lines (scratches), branching cracks, small spots and pits, faint stains,
a patch of foreign texture, holes, and smudges where the texture is lost. Contrast is drawn
relative to the texture's own spread, so some defects are plain and some barely visible, as on a
line. Everything derives from the generator passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

#: The defect kinds, in the order of the multi-hot vectors :func:`paint_defects` returns.
DEFECT_KINDS: tuple[str, ...] = ("scratch", "crack", "spot", "stain", "patch", "hole", "smudge")


def paint_defects(
    image: np.ndarray, rng: np.random.Generator, count: int,
    texture: Callable[[int], np.ndarray] | None = None, kinds: Sequence[str] = DEFECT_KINDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Paint ``count`` defects of random ``kinds`` into a gray float image in [0, 1] (H, W).

    Returns the new image, the defect mask (H, W, uint8: 0 good, k the kind ``DEFECT_KINDS[k - 1]``,
    later defects over earlier ones) and the multi-hot vector of the kinds painted. ``texture(size)``
    gives a foreign texture for a ``patch``; without it a patch is a smudge."""
    image = image.astype(np.float32, copy=True)
    mask = np.zeros(image.shape, np.uint8)
    present = np.zeros(len(DEFECT_KINDS), np.float32)
    for _ in range(count):
        name = kinds[int(rng.integers(len(kinds)))]
        kind = DEFECT_KINDS.index(name)
        if name == "patch" and texture is None:
            kind, name = DEFECT_KINDS.index("smudge"), "smudge"
        drawn = _PAINTERS[name](image, rng, texture)
        if drawn.any():
            mask[drawn] = kind + 1
            present[kind] = 1.0
    return np.clip(image, 0, 1), mask, present


def _contrast(image: np.ndarray, rng: np.random.Generator, low: float = 0.8, high: float = 4.0) -> float:
    """A signed intensity change: a few times the texture's spread (faint to plain), capped."""
    spread = float(image.std()) + 0.02
    return float(rng.choice([-1.0, 1.0]) * min(0.6, rng.uniform(low, high) * spread))


def _canvas(shape: tuple[int, ...]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    return canvas, ImageDraw.Draw(canvas)


def _centre(image: np.ndarray, rng: np.random.Generator, margin: float = 0.1) -> tuple[float, float]:
    h, w = image.shape
    return float(rng.uniform(margin, 1 - margin) * w), float(rng.uniform(margin, 1 - margin) * h)


def _scratch(image: np.ndarray, rng: np.random.Generator, texture: object) -> np.ndarray:
    size = min(image.shape)
    canvas, draw = _canvas(image.shape)
    x, y = _centre(image, rng)
    angle, length = rng.uniform(0, math.pi), rng.uniform(0.1, 0.7) * size
    bend = rng.normal(0, 0.15)
    points = []
    for t in np.linspace(-0.5, 0.5, 8):  # a straight or gently bent line
        a = angle + bend * t
        points.append((x + t * length * math.cos(a), y + t * length * math.sin(a)))
    draw.line(points, fill=255, width=int(rng.integers(1, 4)))
    drawn = np.asarray(canvas) > 0
    image[drawn] += _contrast(image, rng)
    return drawn


def _crack(image: np.ndarray, rng: np.random.Generator, texture: object) -> np.ndarray:
    size = min(image.shape)
    canvas, draw = _canvas(image.shape)
    starts = [(*_centre(image, rng), rng.uniform(0, 2 * math.pi))]
    for branch in range(int(rng.integers(1, 4))):
        x, y, angle = starts[branch % len(starts)]
        points = [(x, y)]
        for _ in range(int(rng.integers(6, 20))):
            angle += rng.normal(0, 0.5)
            step = rng.uniform(0.01, 0.04) * size
            x, y = x + step * math.cos(angle), y + step * math.sin(angle)
            points.append((x, y))
            if rng.random() < 0.1:
                starts.append((x, y, angle + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)))
        draw.line(points, fill=255, width=int(rng.integers(1, 3)))
    drawn = np.asarray(canvas) > 0
    image[drawn] -= abs(_contrast(image, rng, 1.0, 4.0))  # cracks are shadows
    return drawn


def _spot(image: np.ndarray, rng: np.random.Generator, texture: object) -> np.ndarray:
    size = min(image.shape)
    canvas, draw = _canvas(image.shape)
    x, y = _centre(image, rng)
    for _ in range(int(rng.integers(1, 7))):
        r = rng.uniform(0.012, 0.05) * size
        cx, cy = x + rng.normal(0, 0.05 * size), y + rng.normal(0, 0.05 * size)
        ratio = rng.uniform(0.5, 1.0)
        draw.ellipse([cx - r, cy - r * ratio, cx + r, cy + r * ratio], fill=255)
    alpha = gaussian_filter(np.asarray(canvas, np.float32) / 255, 0.7)
    image += _contrast(image, rng, 1.0, 4.0) * alpha
    return alpha > 0.5


def _blob_alpha(
    image: np.ndarray, rng: np.random.Generator, low: float, high: float, soft: float
) -> np.ndarray:
    """A soft irregular blob (values 0..1) of radius ``low``-``high`` of the image's side."""
    size = min(image.shape)
    canvas, draw = _canvas(image.shape)
    x, y = _centre(image, rng, 0.15)
    radius = rng.uniform(low, high) * size
    corners = int(rng.integers(5, 12))
    points = []
    for i in range(corners):
        a = 2 * math.pi * i / corners + rng.normal(0, 0.2)
        r = radius * rng.uniform(0.5, 1.2)
        points.append((x + r * math.cos(a), y + r * math.sin(a)))
    draw.polygon(points, fill=255)
    return gaussian_filter(np.asarray(canvas, np.float32) / 255, soft * radius)


def _stain(image: np.ndarray, rng: np.random.Generator, texture: object) -> np.ndarray:
    alpha = _blob_alpha(image, rng, 0.08, 0.25, 0.25)
    image += _contrast(image, rng, 0.6, 2.5) * alpha  # faint and soft-edged
    return alpha > 0.5


def _patch(image: np.ndarray, rng: np.random.Generator, texture: Callable[[int], np.ndarray]) -> np.ndarray:
    alpha = _blob_alpha(image, rng, 0.06, 0.22, 0.05)
    foreign = texture(max(image.shape))[: image.shape[0], : image.shape[1]]
    # the foreign texture at the surface's own level and spread: only its structure differs
    foreign = (foreign - foreign.mean()) / (foreign.std() + 1e-6) * (image.std() + 0.02) + image.mean()
    image[...] = image * (1 - alpha) + foreign * alpha
    return alpha > 0.5


def _hole(image: np.ndarray, rng: np.random.Generator, texture: object) -> np.ndarray:
    alpha = _blob_alpha(image, rng, 0.02, 0.08, 0.02)
    tone = 0.0 if rng.random() < 0.6 else 1.0
    image[...] = image * (1 - alpha) + tone * alpha
    return alpha > 0.5


def _smudge(image: np.ndarray, rng: np.random.Generator, texture: object) -> np.ndarray:
    alpha = _blob_alpha(image, rng, 0.06, 0.2, 0.1)
    blurred = gaussian_filter(image, float(rng.uniform(2.0, 5.0)))
    image[...] = image * (1 - alpha) + blurred * alpha  # the texture lost, the level kept
    return alpha > 0.5


_PAINTERS: dict[str, Callable[..., np.ndarray]] = {
    "scratch": _scratch,
    "crack": _crack,
    "spot": _spot,
    "stain": _stain,
    "patch": _patch,
    "hole": _hole,
    "smudge": _smudge,
}
