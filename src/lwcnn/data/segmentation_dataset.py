"""The PyTorch side of segmentation data: crops of images with masks, and a sampler that carries
gradual training (which images, and how far zoomed, at every step)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Sampler

from lwcnn.data.augmentation import apply_joint_augmentation
from lwcnn.data.classification import DataError
from lwcnn.data.datasets import ImageDataset
from lwcnn.data.preprocessing import Preprocessing, pad_to_stride
from lwcnn.data.segmentation import MaskedImages, read_sample
from lwcnn.training.gradual import GradualSchedule, zoom_crop

#: What the sampler yields and the dataset takes: (image index, zoom ratio, crop seed). A ratio of 0
#: asks for a random crop; a ratio >= 1 for a crop around the defect, zoomed by that ratio.
SampleRequest = tuple[int, float, int]


class SegmentationDataset(ImageDataset):
    """Images and masks at the model's scale, cut to training crops of ``crop`` (height, width),
    jointly augmented, normalised; yields (image tensor (C, h, w), mask tensor (h, w) int64).

    An image smaller than the crop is padded by reflection (its mask with background). With
    ``cache`` every scaled image and mask is read once by :meth:`load_all` and kept in memory. A
    mask that does not fit its image is always an error (a labelling mistake, not a broken file).
    """

    def __init__(
        self,
        images: MaskedImages,
        preprocessing: Preprocessing,
        crop: Sequence[int],
        augmentation: Any | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(images, augmentation, cache)
        self.preprocessing = preprocessing
        self.crop = (int(crop[0]), int(crop[1]))

    @property
    def defective(self) -> list[bool]:
        return [s.defective for s in self.images.samples]

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The scaled uint8 image (H, W, C) and bool mask (H, W) at ``index``."""
        cached = self._cache.get(index)
        if cached is None:
            image, mask = read_sample(self.images, index, self.preprocessing.channels)
            cached = self.preprocessing.rescale(image), self.preprocessing.rescale_mask(mask)
            if self.cache:
                self._cache[index] = cached
        return cached

    def sample(self, request: SampleRequest | int) -> tuple[np.ndarray, np.ndarray]:
        """The crop (uint8 image, bool mask) a request asks for, before augmentation."""
        index, ratio, seed = (request, 0.0, request) if isinstance(request, int) else request
        rng = np.random.default_rng(seed)
        image, mask = self.read(index)
        image, mask = _pad_to(image, mask, self.crop)
        if ratio >= 1.0:
            window_image, window_mask = zoom_crop(image, mask, ratio, rng, window=self.crop)
            return _resize_pair(window_image, window_mask, self.crop)
        return _random_crop(image, mask, self.crop, rng)

    def __getitem__(self, request: SampleRequest | int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = apply_joint_augmentation(self.augmentation, *self.sample(request))
        # a crop that is not a multiple of the network's stride is padded as inspection pads images
        image, mask = pad_to_stride(image, axes=(0, 1)), pad_to_stride(mask, axes=(0, 1))
        return (
            torch.from_numpy(self.preprocessing.normalize(image)),
            torch.from_numpy(mask.astype(np.int64)),
        )


def _pad_to(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    pad_h, pad_w = max(0, size[0] - image.shape[0]), max(0, size[1] - image.shape[1])
    if not pad_h and not pad_w:
        return image, mask
    spec = ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
    return np.pad(image, (*spec, (0, 0)), mode="reflect"), np.pad(mask, spec, constant_values=False)


def _random_crop(
    image: np.ndarray, mask: np.ndarray, size: tuple[int, int], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random crop whose borders are trained on about as often as its middle: the origin is drawn
    as if the image were padded by half a crop on each side, then moved inside it. (Uniform origins
    would show the outermost rows in one crop of a few hundred; inspection sees them in every image,
    and an untrained border is where false alarms appear.)"""
    top = _clamped_origin(image.shape[0], size[0], rng)
    left = _clamped_origin(image.shape[1], size[1], rng)
    window = (slice(top, top + size[0]), slice(left, left + size[1]))
    return image[window], mask[window]


def _clamped_origin(length: int, crop: int, rng: np.random.Generator) -> int:
    origin = int(rng.integers(-(crop // 2), length - crop + crop // 2 + 1))
    return min(max(origin, 0), length - crop)


def _resize_pair(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Image bilinear, mask nearest, to (height, width) ``size``."""
    if image.shape[:2] == size:
        return image, mask
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    resized = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR))
    resized_mask = Image.fromarray(mask.astype(np.uint8)).resize((size[1], size[0]), Image.Resampling.NEAREST)
    return (resized[:, :, None] if resized.ndim == 2 else resized), np.asarray(resized_mask) > 0


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
        if global_batch % world_size:
            raise ValueError(
                f"train.batch_size ({global_batch}) must be a multiple of the number of processes "
                f"({world_size}): it is the global batch, split evenly over them"
            )
        if not 0.0 <= defective_fraction <= 1.0:
            raise ValueError(f"augment.defective_fraction must be in [0, 1], got {defective_fraction}")
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
        share = self.global_batch // self.world_size
        mine = [
            requests[k * self.global_batch + self.rank * share + j]
            for k in range(self.steps_per_epoch)
            for j in range(share)
        ]
        return iter(mine)


def _cycle(members: np.ndarray, rng: np.random.Generator) -> Iterator[int]:
    while True:
        yield from rng.permutation(members).tolist()
