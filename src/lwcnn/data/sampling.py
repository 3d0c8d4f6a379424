"""Which training samples each step sees: class balancing for classifiers, gradual training for
segmenters (the paper's Sections 3.4.2 and 4.4.2: first defective images only, zoomed into the
defect with the zoom ratio reduced linearly from 3.6 to 1; then whole defective images; then
defect-free images join), and the share of each global batch a rank of a distributed run takes.

The samplers' orders depend only on (seed, epoch): every rank computes the same order and takes
its own contiguous share of each global batch (:func:`rank_share`), so the ranks together train
exactly what one process would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from torch.utils.data import Sampler

from lwcnn.errors import ConfigError, DataError

T = TypeVar("T")
#: What the segmentation sampler yields and the crop dataset takes: (image index, zoom ratio, crop
#: seed). A ratio of 0 asks for a random crop; a ratio >= 1 for a crop around the defect, zoomed.
SampleRequest = tuple[int, float, int]


def check_global_batch(global_batch: int, world_size: int) -> None:
    """The global batch splits evenly over the processes (else a one-line error)."""
    if global_batch < 1 or global_batch % world_size:
        raise ConfigError(
            f"train.batch_size ({global_batch}) must be a multiple of the number of processes "
            f"({world_size}): it is the global batch, split evenly over them"
        )


def rank_share(order: Sequence[T], rank: int, world_size: int, global_batch: int) -> list[T]:
    """``rank``'s contiguous ``global_batch / world_size`` of each whole global batch of ``order``
    (a last partial batch is dropped)."""
    share = global_batch // world_size
    batches = len(order) // global_batch
    return [order[k * global_batch + rank * share + j] for k in range(batches) for j in range(share)]


# -- gradual training ------------------------------------------------------------------------------
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
            raise ConfigError("gradual training needs 0 <= zoom_steps <= clean_from and start_ratio >= 1")

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


# -- samplers --------------------------------------------------------------------------------------
class BalancedSampler(Sampler[int]):
    """Class balancing on the fly: each epoch draws ``per_class`` images of every class (all of a
    class's images before any repeats, then again), shuffled together. ``per_class=0`` yields every
    image once. The order depends only on (seed, epoch); call :meth:`set_epoch` before each epoch.

    Distributed (``world_size`` > 1): every rank computes the same epoch order, cuts it into global
    batches of ``global_batch`` images (a last partial one is dropped) and takes its own contiguous
    ``global_batch / world_size`` of each, so that the ranks together see exactly the batches one
    process would.
    """

    def __init__(
        self,
        labels: tuple[int, ...] | list[int],
        per_class: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        global_batch: int | None = None,
    ) -> None:
        self.labels = np.asarray(labels)
        self.per_class = per_class
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = rank, world_size
        self.global_batch = global_batch
        if world_size > 1:
            check_global_batch(global_batch or 0, world_size)
            assert global_batch is not None
            if self._epoch_length() < global_batch:
                raise ConfigError(
                    f"an epoch has {self._epoch_length()} images, fewer than one global batch "
                    f"of {global_batch}"
                )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _epoch_length(self) -> int:
        if self.per_class <= 0:
            return len(self.labels)
        return self.per_class * len(np.unique(self.labels))

    def __len__(self) -> int:
        if self.world_size <= 1:
            return self._epoch_length()
        assert self.global_batch is not None
        return self._epoch_length() // self.global_batch * (self.global_batch // self.world_size)

    def indices(self) -> list[int]:
        """This rank's indices of the current epoch, in order."""
        order = self._epoch_order()
        if self.world_size <= 1:
            return order
        assert self.global_batch is not None
        return rank_share(order, self.rank, self.world_size, self.global_batch)

    def _epoch_order(self) -> list[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.per_class <= 0:
            return rng.permutation(len(self.labels)).tolist()
        chosen: list[np.ndarray] = []
        for label in np.unique(self.labels):
            members = np.flatnonzero(self.labels == label)
            rounds = -(-self.per_class // len(members))
            drawn = np.concatenate([rng.permutation(members) for _ in range(rounds)])[: self.per_class]
            chosen.append(drawn)
        return rng.permutation(np.concatenate(chosen)).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())


class SegmentationSampler(Sampler[SampleRequest]):
    """Gradual training as a sampler: every epoch is ``per_epoch`` requests (whole global batches),
    each naming an image, a zoom ratio and a crop seed, chosen by the step it will be trained at.

    While ``schedule`` is in its zoom phase only defective images are drawn, zoomed by the ratio of
    that step; in its whole phase defective images with random crops; afterwards every image, a
    ``defective_fraction`` of them defective (positive oversampling; 0: as they come). Without a
    schedule every step is of the last kind. Images of a pool are all drawn before any repeats.

    The order depends only on (seed, epoch): distributed, every rank computes it and takes its own
    contiguous share of each global batch, so the ranks together train exactly what one process would.
    """

    def __init__(
        self,
        defective: Sequence[bool],
        per_epoch: int,
        global_batch: int,
        seed: int,
        schedule: GradualSchedule | None = None,
        defective_fraction: float = 0.0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.flags = np.asarray(defective, bool)
        if not self.flags.any():
            raise DataError("the training part has no defective images: a segmenter has nothing to learn")
        check_global_batch(global_batch, world_size)
        if not 0.0 <= defective_fraction <= 1.0:
            raise ConfigError(f"augment.defective_fraction must be in [0, 1], got {defective_fraction}")
        self.steps_per_epoch = max(1, per_epoch // global_batch)
        self.global_batch = global_batch
        self.seed, self.epoch = seed, 0
        self.schedule = schedule
        self.defective_fraction = defective_fraction
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps_per_epoch * (self.global_batch // self.world_size)

    def phase(self, step: int) -> str:
        return self.schedule.phase(step) if self.schedule is not None else "all"

    def epoch_requests(self) -> list[SampleRequest]:
        """Every request of the current epoch, all ranks together, in order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        pools = {
            "defective": np.flatnonzero(self.flags),
            "clean": np.flatnonzero(~self.flags),
            "all": np.arange(len(self.flags)),
        }
        streams = {name: _cycle(members, rng) for name, members in pools.items() if len(members)}
        requests: list[SampleRequest] = []
        first_step = self.epoch * self.steps_per_epoch
        for position in range(self.steps_per_epoch * self.global_batch):
            step = first_step + position // self.global_batch
            phase = self.phase(step)
            if phase != "all":
                pool = "defective"
            elif self.defective_fraction > 0 and "clean" in streams:
                pool = "defective" if rng.random() < self.defective_fraction else "clean"
            else:
                pool = "all"
            ratio = self.schedule.ratio(step) if phase == "zoom" and self.schedule is not None else 0.0
            requests.append((int(next(streams[pool])), float(ratio), int(rng.integers(2**31))))
        return requests

    def __iter__(self) -> Iterator[SampleRequest]:
        requests = self.epoch_requests()
        if self.world_size <= 1:
            return iter(requests)
        return iter(rank_share(requests, self.rank, self.world_size, self.global_batch))


def _cycle(members: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rng.permutation(members).tolist()
