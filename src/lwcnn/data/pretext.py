"""The images ``lwcnn pretrain`` learns from, made on the fly: formula-driven textures
(:mod:`lwcnn.data.procedural`) and, optionally, crops of a user's own images, with synthetic
defects painted in (:mod:`lwcnn.data.synthetic_defects`).

A sample is named by its *global number* (step x batch + position): everything it holds derives
from ``(seed, number)``, so a resumed run sees exactly the stream an uninterrupted one would, and
any number of loading workers give the same batches. Rendering a texture costs 2-15 ms, more than
a training step spends on it, so each category has a fixed set of ``instances`` base textures,
rendered the first time they are drawn and kept (8-bit, per worker: categories x instances x
(1.25 size)^2 bytes, about 400 MB for 256 x 64 at 128 px); every sample then cuts its own crop,
orientation, lighting, colour and defects from one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from lwcnn.data.images import ImageReadError, find_images, read_image
from lwcnn.data.preprocessing import resize_image
from lwcnn.data.procedural import (
    FAMILIES,
    category_formula,
    colourise,
    photometric,
    render_family,
    texture,
)
from lwcnn.data.synthetic_defects import DEFECT_KINDS, paint_defects
from lwcnn.errors import DataError

#: The defect map's stride: one cell per 8 x 8 pixels, the stride of the LW backbone's block 5 (the
#: decoder's shortcut), marked defective where any of its pixels is.
MASK_STRIDE = 8
#: Base textures are rendered this much larger than the crops cut from them.
MARGIN = 1.25
#: User images are kept reduced to this long side (their crops are taken from that).
USER_IMAGE_SIDE = 512


@dataclass(frozen=True)
class PretextSettings:
    """What the stream holds (the ``data`` and ``pretext`` sections of a pretraining config)."""

    size: int = 128
    channels: int = 3
    categories: int = 256
    instances: int = 64
    seed: int = 0
    defects: bool = True  # paint synthetic defects (the defects objective) or not (classify)
    defect_share: float = 0.6  # share of samples with defects painted in
    images_share: float = 0.0  # share of samples cut from the user's images (when given)
    mean: float = 0.5
    std: float = 0.25


class PretextImages(Dataset):
    """``dataset[number]`` -> (image (C, size, size) float32 normalised, category (int64; -1 for a
    user's image), defect map (size/8, size/8) float32, defect kinds present (float32 multi-hot)).

    ``images``: files of a user's own (defect-free or mostly so) images to cut samples from, a
    ``images_share`` of the stream; ``held_out``: draw instances the training stream never uses
    (what a pretraining run is evaluated on)."""

    def __init__(
        self, settings: PretextSettings, length: int, images: list[Path] | None = None, held_out: bool = False
    ) -> None:
        if settings.size % MASK_STRIDE:
            raise DataError(
                f"pretext images must be a multiple of {MASK_STRIDE} px a side, got {settings.size}"
            )
        self.settings = settings
        self.length = length
        self.images = list(images or [])
        self.held_out = held_out
        self._bases: dict[tuple[int, int], np.ndarray] = {}
        self._user: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, number: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        s = self.settings
        rng = np.random.default_rng([s.seed, 1 if self.held_out else 0, int(number)])
        if self.images and rng.random() < s.images_share:
            gray, category = self._user_crop(rng), -1
        else:
            category = int(rng.integers(s.categories))
            gray = self._crop(self._base(category, int(rng.integers(s.instances))), rng)
        defects = np.zeros(len(DEFECT_KINDS), np.float32)
        mask = np.zeros(gray.shape, np.uint8)
        if s.defects and rng.random() < s.defect_share:
            count = int(rng.choice([1, 1, 2, 3]))
            gray, mask, defects = paint_defects(gray, rng, count, lambda side: self._foreign(side, rng))
        gray = photometric(gray, rng)  # light and camera act on the surface, defects included
        image = colourise(gray, rng) if s.channels == 3 else gray[..., None]
        tensor = torch.from_numpy(((image - s.mean) / s.std).transpose(2, 0, 1).astype(np.float32))
        cells = mask.reshape(s.size // MASK_STRIDE, MASK_STRIDE, s.size // MASK_STRIDE, MASK_STRIDE)
        defect_map = torch.from_numpy((cells.max(axis=(1, 3)) > 0).astype(np.float32))
        return tensor, torch.tensor(category), defect_map, torch.from_numpy(defects)

    def _base(self, category: int, instance: int) -> np.ndarray:
        """The base texture of (category, instance), 8-bit, rendered once per worker."""
        key = (category, instance)
        base = self._bases.get(key)
        if base is None:
            s = self.settings
            # held-out instances are numbered past the training ones: never the same texture
            number = instance + (s.instances if self.held_out else 0)
            rng = np.random.default_rng([s.seed, 104729, category, number])
            side = round(s.size * MARGIN)
            surface = texture(category_formula(category, s.seed), side, rng)  # lighting comes per sample
            base = self._bases[key] = (surface * 255 + 0.5).astype(np.uint8)
        return base

    def _crop(self, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random crop of the crop size, turned by a multiple of 90 degrees, maybe mirrored."""
        size = self.settings.size
        top, left = (int(rng.integers(0, base.shape[i] - size + 1)) for i in (0, 1))
        crop = base[top : top + size, left : left + size]
        crop = np.rot90(crop, int(rng.integers(4)))
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return crop.astype(np.float32) / 255

    def _foreign(self, side: int, rng: np.random.Generator) -> np.ndarray:
        """A texture of another category for a ``patch`` defect (a cached one where there is one)."""
        category = int(rng.integers(self.settings.categories))
        if self.settings.size <= side <= round(self.settings.size * MARGIN):
            base = self._base(category, int(rng.integers(self.settings.instances)))
            return base[:side, :side].astype(np.float32) / 255
        return render_family(FAMILIES[category % len(FAMILIES)], side, rng)

    def _user_crop(self, rng: np.random.Generator) -> np.ndarray:
        """A square crop of a user's image (a quarter of its short side up to all of it), resized."""
        index = int(rng.integers(len(self.images)))
        image = self._user.get(index)
        if image is None:
            path = self.images[index]
            try:
                full = read_image(path, channels=1)
            except ImageReadError as error:
                raise DataError(f"{error}") from None
            h, w = full.shape[:2]
            factor = min(1.0, USER_IMAGE_SIDE / max(h, w))
            if factor < 1.0:
                full = resize_image(full, (max(1, round(h * factor)), max(1, round(w * factor))))
            image = self._user[index] = full[..., 0]
        side = max(8, int(min(image.shape) * rng.uniform(0.25, 1.0)))
        top = int(rng.integers(0, image.shape[0] - side + 1))
        left = int(rng.integers(0, image.shape[1] - side + 1))
        crop = resize_image(image[top : top + side, left : left + side, None], (self.settings.size,) * 2)
        crop = np.rot90(crop[..., 0], int(rng.integers(4)))
        return (crop[:, ::-1] if rng.random() < 0.5 else crop).astype(np.float32) / 255


class StreamSampler(Sampler[int]):
    """The global sample numbers of steps ``start`` .. ``stop - 1`` in order (``batch`` a step)."""

    def __init__(self, start: int, stop: int, batch: int) -> None:
        self.start, self.stop, self.batch = start, stop, batch

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.batch

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(range(self.start * self.batch, self.stop * self.batch))


def user_images(folder: str | Path) -> list[Path]:
    """The image files of a folder of the user's own images (recursively), or a one-line error."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder of images")
    found = find_images(root)
    if not found:
        raise DataError(f"{root}: holds no image files (png, jpg, bmp, tif...)")
    return found
