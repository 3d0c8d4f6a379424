"""PyTorch datasets and samplers over labelled image collections."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from lwcnn.data.augmentation import apply_augmentation
from lwcnn.data.classification import DataError, LabelledImages
from lwcnn.data.images import ImageReadError, read_image
from lwcnn.data.preprocessing import Preprocessing


def derive_seed(*parts: int | str) -> int:
    """A 32-bit seed from several parts (seed, epoch, worker...), stable across runs and machines."""
    return zlib.crc32(":".join(str(p) for p in parts).encode("utf-8"))


class ImageDataset(Dataset):
    """What every training dataset shares: a scanned collection (``images``, with ``subset``), an
    optional in-memory cache of what :meth:`read` returns, reading everything up front
    (:meth:`load_all`), and an augmentation stream seeded per epoch, worker and rank."""

    def __init__(self, images: Any, augmentation: Any | None, cache: bool) -> None:
        self.images = images
        self.augmentation = augmentation
        self.cache = cache
        self._cache: dict[int, Any] = {}
        self.seed = self.epoch = self.rank = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, request: Any) -> Any:
        if isinstance(request, EpochRequest):  # from a persistent loading worker: follow the epoch
            if request.epoch != (self.seed, self.epoch, self.rank):
                self.seed, self.epoch, self.rank = request.epoch
                info = torch.utils.data.get_worker_info()
                self.reseed(worker=0 if info is None else info.id + 1)
            request = request.request
        return self.item(request)

    def item(self, request: Any) -> Any:
        """What the dataset yields for ``request`` (an index, or a task's sample request)."""
        raise NotImplementedError

    def read(self, index: int) -> Any:
        raise NotImplementedError

    def load_all(
        self, skip_bad: bool = False, progress: Callable[[int], None] | None = None
    ) -> list[ImageReadError]:
        """Read every image (caching it when ``cache`` is on). An unreadable image raises its
        :class:`ImageReadError`, or with ``skip_bad`` is dropped from the dataset and returned."""
        bad: list[ImageReadError] = []
        keep: list[int] = []
        for index in range(len(self.images)):
            try:
                self.read(index)
                keep.append(index)
            except ImageReadError as error:
                if not skip_bad:
                    raise
                bad.append(error)
            if progress is not None:
                progress(1)
        if bad:
            self._cache = {new: self._cache[old] for new, old in enumerate(keep) if old in self._cache}
            self.images = self.images.subset(keep)
            self.check_after_skipping(len(bad))
        return bad

    def check_after_skipping(self, skipped: int) -> None:
        """Raise :class:`DataError` when skipping bad images left too little to train on."""
        if not len(self.images):
            raise DataError(f"{self.images.root}: after skipping {skipped} bad image(s) none are left")

    def set_epoch(self, seed: int, epoch: int, rank: int = 0) -> None:
        """Make this epoch's augmentation depend only on (seed, epoch) (and the loading worker and,
        distributed, the rank: ranks must not draw the same augmentations)."""
        self.seed, self.epoch, self.rank = seed, epoch, rank
        self.reseed(worker=0)

    def reseed(self, worker: int) -> None:
        if self.augmentation is not None:
            # rank 0 keeps the single-process stream (its seeds are those of earlier versions)
            extra = (self.rank,) if self.rank else ()
            self.augmentation.set_random_seed(derive_seed(self.seed, self.epoch, worker, *extra))


class ClassificationDataset(ImageDataset):
    """Images resized to the model's input, optionally augmented, normalised; yields (tensor, label).

    With ``cache`` every image is read once by :meth:`load_all` (which also finds unreadable files
    before training starts) and kept, resized, in memory.
    """

    def __init__(
        self,
        images: LabelledImages,
        preprocessing: Preprocessing,
        augmentation: Any | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(images, augmentation, cache)
        self.preprocessing = preprocessing

    def read(self, index: int) -> np.ndarray:
        """The resized uint8 image at ``index``."""
        image = self._cache.get(index)
        if image is None:
            path = self.images.root / self.images.paths[index]
            image = self.preprocessing.resize(read_image(path, self.preprocessing.channels))
            if self.cache:
                self._cache[index] = image
        return image

    def check_after_skipping(self, skipped: int) -> None:
        if not self.images.paths or len(set(self.images.labels)) < len(self.images.classes):
            raise DataError(
                f"{self.images.root}: after skipping {skipped} bad image(s) a class has none left"
            )

    def item(self, index: int) -> tuple[torch.Tensor, int]:
        image = apply_augmentation(self.augmentation, self.read(index))
        return torch.from_numpy(self.preprocessing.normalize(image)), self.images.labels[index]


def read_parts(
    datasets: Sequence[ImageDataset | None], skip_bad: bool, show_progress: bool = True
) -> list[str]:
    """Read every image of every dataset once, with one progress bar, before training starts, so a
    bad image stops the run before any step (or with ``skip_bad`` is skipped). Returns the one-line
    errors of the skipped images."""
    present = [d for d in datasets if d is not None]
    skipped: list[str] = []
    total = sum(len(d) for d in present)
    with tqdm(
        total=total, desc="reading images", unit="img", disable=None if show_progress else True, leave=False
    ) as bar:
        for dataset in present:
            skipped += [str(e) for e in dataset.load_all(skip_bad, bar.update)]
    return skipped


class EpochRequest(NamedTuple):
    """A sampler's request with the epoch it belongs to: (seed, epoch, rank), as
    :meth:`ImageDataset.set_epoch` set them in the training process."""

    epoch: tuple[int, int, int]
    request: Any


class EpochTaggedSampler(Sampler):
    """Wraps a sampler so that each request carries the dataset's current epoch.

    Loading workers are kept for the whole run (``persistent_workers``): a worker forked afresh
    every epoch shares the training process's memory copy-on-write, and the first step after the
    fork paid for copying every page it wrote (3.6-5.2 s, a sixth of a 24-step ELPV epoch, which
    the budget probe never saw: its timed steps come after warm-up ones). A kept worker holds a
    copy of the dataset from when it started, so the epoch that ``set_epoch`` sets in the training
    process travels with each request instead, and the worker reseeds its augmentation stream at
    an epoch's first request exactly as a fresh worker would have (the same draws as before)."""

    def __init__(self, sampler: Sampler, dataset: ImageDataset) -> None:
        self.sampler, self.dataset = sampler, dataset

    def __len__(self) -> int:
        return len(self.sampler)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[EpochRequest]:
        epoch = (self.dataset.seed, self.dataset.epoch, self.dataset.rank)
        return (EpochRequest(epoch, request) for request in self.sampler)


def seed_worker(worker_id: int) -> None:
    """``DataLoader`` worker initialiser: a distinct, reproducible augmentation stream per worker."""
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, ImageDataset):
        info.dataset.reseed(worker=worker_id + 1)
