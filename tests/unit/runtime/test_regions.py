"""Defect regions and bilinear resizing in NumPy, checked against a flood fill and torch."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lwcnn.runtime.regions import Region, find_regions, resize_bilinear


def flood_fill_regions(mask: np.ndarray) -> list[Region]:
    """Reference: 8-connected components by breadth-first search."""
    seen = np.zeros_like(mask, dtype=bool)
    regions = []
    height, width = mask.shape
    for y, x in zip(*np.nonzero(mask), strict=True):
        if seen[y, x]:
            continue
        queue, pixels = deque([(y, x)]), []
        seen[y, x] = True
        while queue:
            cy, cx = queue.popleft()
            pixels.append((cy, cx))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        ys, xs = zip(*pixels, strict=True)
        regions.append(Region(len(pixels), (min(xs), min(ys), max(xs) + 1, max(ys) + 1)))
    return sorted(regions, key=lambda r: (-r.area, r.box))


def test_hand_made_mask():
    mask = np.zeros((8, 10), bool)
    mask[1:3, 1:4] = True  # 6 pixels
    mask[3, 4] = True  # touches the block diagonally: same region
    mask[6:8, 8:10] = True
    mask[5, 0] = True
    assert find_regions(mask) == [
        Region(7, (1, 1, 5, 4)),
        Region(4, (8, 6, 10, 8)),
        Region(1, (0, 5, 1, 6)),
    ]
    assert find_regions(np.zeros((5, 5), bool)) == []
    assert find_regions(np.ones((3, 4), bool)) == [Region(12, (0, 0, 4, 3))]


@pytest.mark.parametrize("density", [0.1, 0.3, 0.5])
def test_random_masks_match_flood_fill(density):
    rng = np.random.default_rng(int(density * 10))
    for _ in range(5):
        mask = rng.random((rng.integers(1, 40), rng.integers(1, 40))) < density
        assert find_regions(mask) == flood_fill_regions(mask)


def test_u_shape_joins_late():
    mask = np.zeros((5, 7), bool)
    mask[0:4, 1] = True
    mask[0:4, 5] = True
    mask[4, 1:6] = True  # the bottom joins two columns that looked separate
    assert find_regions(mask) == [Region(13, (1, 0, 6, 5))]


@pytest.mark.parametrize("size", [(56, 88), (7, 11), (13, 5), (3, 30)])
def test_resize_matches_torch_bilinear(size):
    maps = np.random.default_rng(0).standard_normal((2, 3, 7, 11)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(maps), size=size, mode="bilinear", align_corners=False)
    assert np.allclose(resize_bilinear(maps, size), expected.numpy(), atol=1e-5)
