"""Gradual training (the paper's Sections 3.4.2 and 4.4.2): first defective images only, zoomed
into the defect with the zoom ratio reduced linearly from 3.6 to 1; then whole defective images;
then defect-free images join. NumPy only: the schedule and the zoomed crop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHASES = ("zoom", "whole", "all")


@dataclass(frozen=True)
class GradualSchedule:
    """``zoom_steps``: steps over which the zoom ratio falls from ``start_ratio`` to 1;
    ``clean_from``: the step at which defect-free images join (the paper: 20K and 80K steps)."""

    zoom_steps: int
    clean_from: int
    start_ratio: float = 3.6

    def __post_init__(self) -> None:
        if self.zoom_steps < 0 or self.clean_from < self.zoom_steps or self.start_ratio < 1:
            raise ValueError("gradual training needs 0 <= zoom_steps <= clean_from and start_ratio >= 1")

    @classmethod
    def for_run(
        cls, zoom: float, clean_from: float, total_steps: int, start_ratio: float = 3.6
    ) -> GradualSchedule:
        """Schedule points given as steps (>= 1, e.g. the paper's 20000 and 80000) or as fractions
        of the run (< 1, e.g. 0.2 and 0.5 for short runs)."""

        def steps(value: float) -> int:
            return round(value * total_steps) if 0 <= value < 1 else int(value)

        return cls(steps(zoom), steps(clean_from), start_ratio)

    def ratio(self, step: int) -> float:
        """The zoom ratio at ``step``: linear from ``start_ratio`` at step 0 to 1 at ``zoom_steps``."""
        if step >= self.zoom_steps:
            return 1.0
        return self.start_ratio + (1.0 - self.start_ratio) * step / self.zoom_steps

    def phase(self, step: int) -> str:
        """ "zoom" (defective images, zoomed), "whole" (defective images) or "all" (with defect-free ones)."""
        if step < self.zoom_steps:
            return "zoom"
        return "whole" if step < self.clean_from else "all"


def zoom_crop(
    image: np.ndarray,
    mask: np.ndarray,
    ratio: float,
    rng: np.random.Generator,
    window: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A window of ``1/ratio`` of ``window`` (height, width; default the image's size) that
    contains the defect: the whole defect when it fits, else a random defect pixel. Returns (image
    crop, mask crop), to be resized to the training size by the caller. A defect-free mask gets a
    random window; a window as large as the image returns the inputs."""
    height, width = mask.shape
    base_h, base_w = window or (height, width)
    ratio = max(ratio, 1.0)
    crop_h = min(height, max(1, round(base_h / ratio)))
    crop_w = min(width, max(1, round(base_w / ratio)))
    if (crop_h, crop_w) == (height, width):
        return image, mask
    if not mask.any():
        top = int(rng.integers(height - crop_h + 1))
        left = int(rng.integers(width - crop_w + 1))
    else:
        ys, xs = np.nonzero(mask)
        pick = rng.integers(len(ys))
        top = _origin(int(ys.min()), int(ys.max()), int(ys[pick]), crop_h, height, rng)
        left = _origin(int(xs.min()), int(xs.max()), int(xs[pick]), crop_w, width, rng)
    return image[top : top + crop_h, left : left + crop_w], mask[top : top + crop_h, left : left + crop_w]


def _origin(lo: int, hi: int, pixel: int, crop: int, size: int, rng: np.random.Generator) -> int:
    """A window start in [0, size - crop] covering [lo, hi] if it fits, else covering ``pixel``."""
    if hi - lo + 1 <= crop:
        first, last = hi - crop + 1, lo
    else:
        first, last = pixel - crop + 1, pixel
    first, last = max(first, 0), min(last, size - crop)
    return int(rng.integers(first, last + 1)) if last >= first else max(0, min(lo, size - crop))
