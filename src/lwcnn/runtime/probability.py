"""A segmenter's answer at the image's own size, computing only what the answer needs.

The network's logits come at a stride (8 for the LW decoder) of an image that was scaled (0.5 for
KolektorSDD). The straightforward path resizes both logit maps to the scaled size, takes a softmax
there, resizes the probability to the image's size and thresholds it: four full-size float maps
per image, several times the forward pass's cost. The same answer comes cheaper:

- for two classes P(defect) = 1 - softmax(l)[0] = sigmoid(l1 - l0), and bilinear resizing is
  linear, so one map (the difference) is resized instead of two;
- a bilinearly resized value is a weighted mean of its source values, so a row (scaled or full
  size) is bounded by the maxima of the rows it is made from: rows that cannot reach the threshold
  hold no defect pixel and are never computed, and rows that cannot beat the highest value found
  cannot hold the score. A defect-free part costs almost nothing after the forward pass;
- regions are found in the box around the rows that may hold defect pixels.

The values that are computed are those of the straightforward path (the same interpolation,
row by row); only the sigmoid differs from the softmax, by float rounding (below 1e-6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lwcnn.runtime.regions import Region, find_regions, resize_bilinear, resize_bilinear_rows, source_rows

#: How far a computed value may exceed its bound by float rounding; bounds are compared with it.
ROUNDING = 1e-5
#: Rows per strip where a full-size float map is worked through piecewise.
STRIP_ROWS = 256


@dataclass
class ProbabilityRows:
    """A (height, width) defect probability map whose rows are computed when asked for:
    ``bounds[r]`` is at least every value of row ``r`` (up to :data:`ROUNDING`), and
    ``rows(indices)`` gives those rows' values."""

    shape: tuple[int, int]
    bounds: np.ndarray
    rows: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def of_array(cls, probability: np.ndarray) -> ProbabilityRows:
        """A map computed already (tiles averaged, more than two classes)."""
        return cls(probability.shape, probability.max(axis=1), lambda rows: probability[rows])

    @classmethod
    def of_logit_difference(
        cls, difference: np.ndarray, padded: tuple[int, int], height: int, width: int
    ) -> ProbabilityRows:
        """sigmoid of ``difference`` (l1 - l0 at the network's output stride) resized to the
        ``padded`` input size, cut to ``height`` x ``width``: a row of the resized difference is a
        weighted mean of two source rows, so sigmoid of their maxima bounds it."""
        low, high = (rows[:height] for rows in source_rows(difference.shape[0], padded[0]))
        row_max = difference.max(axis=1)
        bounds = sigmoid(np.maximum(row_max[low], row_max[high]))

        def rows(indices: np.ndarray) -> np.ndarray:
            return sigmoid(resize_bilinear_rows(difference, padded, indices)[:, :width])

        return cls((height, width), bounds, rows)

    def full(self) -> np.ndarray:
        """Every row: the whole map."""
        return self.rows(np.arange(self.shape[0]))


def defect_probability(logits: np.ndarray, padded: tuple[int, int], height: int, width: int) -> np.ndarray:
    """P(defect) (N, height, width) from a batch's logits at the network's stride, resized to the
    ``padded`` input size and cut to the image (or tile): for two classes sigmoid(l1 - l0), one map
    resized instead of two; else 1 - P(background), class 0 being the background."""
    if logits.shape[1] == 2:
        difference = resize_bilinear_rows(logits[:, 1] - logits[:, 0], padded, 0, height)
        return sigmoid(difference[..., :width])
    full = resize_bilinear(logits, padded)[..., :height, :width]
    return 1.0 - softmax(full, axis=1)[:, 0]


def native_mask(
    probability: ProbabilityRows, size: tuple[int, int], threshold: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """The defect mask at the image's ``size`` (``> threshold``), its highest probability, and the
    rows that may hold defect pixels: the values of one bilinear resize of the whole map, computed
    only for the rows that can change the answer."""
    same = probability.shape == tuple(size)
    low, high = (np.arange(size[0]),) * 2 if same else source_rows(probability.shape[0], size[0])
    bound = np.maximum(probability.bounds[low], probability.bounds[high])  # per output row
    values = np.zeros(probability.shape, np.float32)  # the source rows computed so far
    known = np.zeros(probability.shape[0], dtype=bool)

    def output_rows(chunk: np.ndarray) -> np.ndarray:
        needed = np.union1d(low[chunk], high[chunk])
        needed = needed[~known[needed]]
        if needed.size:
            values[needed] = probability.rows(needed)
            known[needed] = True
        return values[chunk] if same else resize_bilinear_rows(values, size, chunk)

    mask = np.zeros(size, dtype=bool)
    done = np.zeros(size[0], dtype=bool)
    score = -np.inf
    hot = np.flatnonzero(bound > threshold - ROUNDING)
    seed = np.flatnonzero(bound >= bound.max() - ROUNDING)  # where the highest value most likely is
    for rows, with_mask in ((hot, True), (seed, False), (None, False)):
        if rows is None:  # the rows that could still hold a higher value than the best so far
            rows = np.flatnonzero((bound > score - ROUNDING) & ~done)
        rows = rows[~done[rows]]
        for first in range(0, len(rows), STRIP_ROWS):  # in strips: no second full-size float array
            chunk = rows[first : first + STRIP_ROWS]
            strip = output_rows(chunk)
            if with_mask:
                mask[chunk] = strip > threshold
            score = max(score, float(strip.max()))
            done[chunk] = True
    return mask, score, hot


def regions_in_rows(mask: np.ndarray, rows: np.ndarray) -> tuple[list[Region], int]:
    """:func:`~lwcnn.runtime.regions.find_regions` of ``mask`` and its defect area, knowing that
    only ``rows`` can hold defect pixels: the regions are found in the box around them."""
    if rows.size == 0:
        return [], 0
    band = mask[rows[0] : rows[-1] + 1]
    columns = np.flatnonzero(band.any(axis=0))
    if columns.size == 0:
        return [], 0
    top, left = int(rows[0]), int(columns[0])
    crop = band[:, left : columns[-1] + 1]
    regions = [
        Region(r.area, (r.box[0] + left, r.box[1] + top, r.box[2] + left, r.box[3] + top))
        for r in find_regions(crop)
    ]
    return regions, int(crop.sum())


def sigmoid(values: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), clipped so that exp never overflows (sigmoid(-60) is 1e-26)."""
    return 1.0 / (1.0 + np.exp(-np.clip(values, -60.0, 60.0)))


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)
