"""The PyTorch side of segmentation data: training crops of images with masks (the requests of
:class:`lwcnn.data.sampling.SegmentationSampler` say which image, how far zoomed, which seed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from lwcnn.data.augmentation import apply_joint_augmentation
from lwcnn.data.datasets import ImageDataset
from lwcnn.data.masked_images import MaskedImages, read_labels
from lwcnn.data.preprocessing import Preprocessing, pad_to_stride, resize_image
from lwcnn.data.sampling import SampleRequest, zoom_crop


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
        """The scaled uint8 image (H, W, C) and class-index mask (H, W) uint8 at ``index``."""
        cached = self._cache.get(index)
        if cached is None:
            image, mask = read_labels(self.images, index, self.preprocessing.channels)
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

    def item(self, request: SampleRequest | int) -> tuple[torch.Tensor, torch.Tensor]:
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
    resized_mask = Image.fromarray(mask.astype(np.uint8)).resize((size[1], size[0]), Image.Resampling.NEAREST)
    resized = np.asarray(resized_mask)
    return resize_image(image, size), resized > 0 if mask.dtype == bool else resized
