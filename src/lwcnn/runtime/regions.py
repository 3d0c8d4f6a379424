"""Defect regions of a binary mask: connected components (8-connected) with area and bounding box,
and bilinear resizing of score maps. NumPy only (the runtime has no SciPy, OpenCV or torch)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Region:
    """One connected defect region: its area in pixels and its box ``(x0, y0, x1, y1)``, inclusive
    of ``x0, y0`` and exclusive of ``x1, y1`` (so ``x1 - x0`` is the width); for a model with
    defect types, its type and that type's probability (:mod:`lwcnn.runtime.defect_types`)."""

    area: int
    box: tuple[int, int, int, int]
    type: str | None = None
    type_probability: float | None = None


def find_regions(mask: np.ndarray) -> list[Region]:
    """The 8-connected regions of a 2-D boolean mask, largest first.

    Works on horizontal runs of foreground pixels: runs of neighbouring rows that touch (including
    diagonally) are joined with a union-find, so the cost grows with the number of runs, not pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    changes = np.diff(padded, axis=1)
    starts_r, starts_c = np.nonzero(changes == 1)  # run starts at column c
    _, ends_c = np.nonzero(changes == -1)  # run ends before column c (same rows as the starts)
    count = len(starts_r)
    if count == 0:
        return []
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # runs are ordered by row, then column; join touching runs of consecutive rows (two pointers)
    row_first = np.searchsorted(starts_r, np.arange(height + 1))
    for row in range(1, height):
        a, a_end = row_first[row - 1], row_first[row]
        b, b_end = row_first[row], row_first[row + 1]
        while a < a_end and b < b_end:
            # 8-connectivity: [s, e) touches [s', e') when s <= e' and s' <= e
            if starts_c[a] <= ends_c[b] and starts_c[b] <= ends_c[a]:
                ra, rb = root(a), root(b)
                if ra != rb:
                    parent[rb] = ra
            if ends_c[a] < ends_c[b]:
                a += 1
            else:
                b += 1
    labels = np.fromiter((root(i) for i in range(count)), dtype=np.int64, count=count)
    unique, inverse = np.unique(labels, return_inverse=True)
    lengths = ends_c - starts_c
    areas = np.bincount(inverse, weights=lengths, minlength=len(unique)).astype(np.int64)
    x0 = np.full(len(unique), width, np.int64)
    y0 = np.full(len(unique), height, np.int64)
    x1 = np.zeros(len(unique), np.int64)
    y1 = np.zeros(len(unique), np.int64)
    np.minimum.at(x0, inverse, starts_c)
    np.minimum.at(y0, inverse, starts_r)
    np.maximum.at(x1, inverse, ends_c)
    np.maximum.at(y1, inverse, starts_r + 1)
    regions = [
        Region(int(areas[i]), (int(x0[i]), int(y0[i]), int(x1[i]), int(y1[i]))) for i in range(len(unique))
    ]
    return sorted(regions, key=lambda r: (-r.area, r.box))


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (..., h, w) float maps to (..., H, W) bilinearly with half-pixel centres, the same as
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` (tested against it)."""
    return resize_bilinear_rows(maps, size, 0, size[0])


def resize_bilinear_rows(
    maps: np.ndarray, size: tuple[int, int], start: int, stop: int | None = None
) -> np.ndarray:
    """Rows ``start:stop`` of :func:`resize_bilinear` (``maps``, ``size``), computed alone: the same
    values, for working through a large output in strips. ``start`` may instead be an array of row
    indices (``stop`` None): those rows, in that order, with the same values."""
    height, width = size
    rows, row_w = _axis_weights(maps.shape[-2], height)
    chosen = slice(start, stop) if stop is not None else np.asarray(start, np.int64)
    rows, row_w = (rows[0][chosen], rows[1][chosen]), row_w[chosen]
    cols, col_w = _axis_weights(maps.shape[-1], width)
    top = maps[..., rows[0], :] * (1 - row_w)[:, None] + maps[..., rows[1], :] * row_w[:, None]
    return (top[..., cols[0]] * (1 - col_w) + top[..., cols[1]] * col_w).astype(maps.dtype, copy=False)


def source_rows(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``target`` output rows of :func:`resize_bilinear` from ``source`` rows, the two
    source rows it is interpolated from (the same one twice at the borders)."""
    (low, high), _ = _axis_weights(source, target)
    return low, high


@functools.lru_cache(maxsize=64)
def _axis_weights(source: int, target: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Source indices and weights of one axis, kept for the sizes in use (a line inspects one or
    two image sizes; read-only, as they are shared)."""
    position = (np.arange(target, dtype=np.float64) + 0.5) * (source / target) - 0.5
    position = np.clip(position, 0, None)
    low = np.minimum(np.floor(position).astype(np.int64), source - 1)
    high = np.minimum(low + 1, source - 1)
    weights = (position - low).astype(np.float32)
    for array in (low, high, weights):
        array.flags.writeable = False
    return (low, high), weights
