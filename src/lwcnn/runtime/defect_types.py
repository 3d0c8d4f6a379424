"""Which kind of defect: a segmenter with K defect types has K + 1 outputs (class 0 the background).

The image's decision does not change with types: P(defect) = 1 - P(background) at every pixel,
thresholded as for one type. The type is a second question, asked only where a defect was found:
each defect pixel takes the type with the highest share of its defect probability, P(type k) /
(1 - P(background)), at the network's output cell that holds it (the types are read at the
output's stride: a type is a property of a defect, not of its edge pixels); a region takes the
type most of its pixels have, with their mean share as its probability. NumPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from lwcnn.runtime.regions import Region


@dataclass(frozen=True)
class TypeGrid:
    """Each output cell's share of its defect probability per type, (K, h, w), and the factors
    that map an image pixel (row y, column x) to its cell (floor(y * row_factor), ...)."""

    shares: np.ndarray
    row_factor: float
    col_factor: float

    @classmethod
    def of_logits(
        cls, logits: np.ndarray, padded: tuple[int, int], scaled: tuple[int, int], image: tuple[int, int]
    ) -> TypeGrid:
        """From one image's logits (K + 1, h, w) for a ``padded`` network input of an image
        ``scaled`` (height, width) from its ``image`` size."""
        return cls(
            type_shares(logits),
            scaled[0] / image[0] * logits.shape[1] / padded[0],
            scaled[1] / image[1] * logits.shape[2] / padded[1],
        )

    def pixel_types(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The type (1-based) and its share at image pixels ``rows``, ``cols``."""
        _, height, width = self.shares.shape
        cell_rows = np.minimum(((rows + 0.5) * self.row_factor).astype(np.int64), height - 1)
        cell_cols = np.minimum(((cols + 0.5) * self.col_factor).astype(np.int64), width - 1)
        cells = self.shares[:, cell_rows, cell_cols]  # (K, n)
        best = cells.argmax(axis=0)
        return best + 1, cells[best, np.arange(cells.shape[1])]


def type_shares(logits: np.ndarray) -> np.ndarray:
    """P(type k) / (1 - P(background)) for k = 1..K from logits (K + 1, ...): a softmax over the
    defect classes alone (the background's logit cancels)."""
    defect = logits[1:]
    shifted = np.exp(defect - defect.max(axis=0, keepdims=True))
    return (shifted / shifted.sum(axis=0, keepdims=True)).astype(np.float32)


class TileTypes:
    """The type shares of an image inspected in tiles, put together on one grid at the network's
    output stride (a tile's cells placed at its start over the stride, overlaps averaged)."""

    def __init__(self, types: int, scaled: tuple[int, int], image: tuple[int, int], stride: int) -> None:
        self.stride = stride
        cells = (-(-scaled[0] // stride), -(-scaled[1] // stride))
        self.total = np.zeros((types, *cells), np.float32)
        self.count = np.zeros(cells, np.float32)
        self.factors = (scaled[0] / image[0] / stride, scaled[1] / image[1] / stride)

    def add(self, logits: np.ndarray, top: int, left: int, size: tuple[int, int]) -> None:
        """A tile's logits (K + 1, h, w) of its padded input, the tile at ``top``, ``left`` of
        ``size`` (height, width) in the scaled image."""
        row, col = top // self.stride, left // self.stride
        rows = min(-(-size[0] // self.stride), self.count.shape[0] - row, logits.shape[1])
        cols = min(-(-size[1] // self.stride), self.count.shape[1] - col, logits.shape[2])
        self.total[:, row : row + rows, col : col + cols] += type_shares(logits[:, :rows, :cols])
        self.count[row : row + rows, col : col + cols] += 1.0

    def grid(self) -> TypeGrid:
        return TypeGrid(self.total / np.maximum(self.count, 1.0), *self.factors)


def typed_regions(
    mask: np.ndarray, regions: Sequence[Region], grid: TypeGrid, types: Sequence[str]
) -> tuple[list[Region], np.ndarray]:
    """Each region with its type and probability, and the type mask (H, W) uint8: 0 good, k the
    type of each defect pixel."""
    type_mask = np.zeros(mask.shape, np.uint8)
    typed = []
    for region in regions:
        x0, y0, x1, y1 = region.box
        rows, cols = np.nonzero(mask[y0:y1, x0:x1])
        rows, cols = rows + y0, cols + x0
        kinds, shares = grid.pixel_types(rows, cols)
        type_mask[rows, cols] = kinds
        counts = np.bincount(kinds, minlength=len(types) + 1)
        kind = int(counts.argmax())
        probability = float(shares[kinds == kind].mean()) if counts[kind] else 0.0
        typed.append(replace(region, type=types[kind - 1], type_probability=round(probability, 6)))
    return typed, type_mask
