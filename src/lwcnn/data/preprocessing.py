"""The one preprocessing path shared by training, evaluation and inference: resize, scale to 0..1,
normalise, channels first. NumPy and Pillow only, so the inference runtime uses it without torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lwcnn.errors import ConfigError

#: Every backbone of the factory halves the resolution five times (``Backbone``: total stride 32).
#: A segmenter sees its input padded to a multiple of this, in training and inference alike.
NETWORK_STRIDE = 32


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input. ``size`` is (height, width); ``mean``/``std`` apply to 0..1 values,
    one value per channel. ``scale`` (segmenters) resizes every image by that factor before the
    network sees it, in training and inference alike; ``size`` is then the working size in scaled
    pixels (classifiers resize to ``size`` instead)."""

    channels: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    scale: float = 1.0

    @classmethod
    def create(
        cls,
        channels: int,
        size: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        scale: float = 1.0,
    ) -> Preprocessing:
        """Validate and broadcast a single mean/std value to every channel."""
        if channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, got {channels}")
        if len(size) != 2 or min(size) < 8:
            raise ConfigError(f"input size must be [height, width] of at least 8, got {list(size)}")
        mean_t, std_t = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean_t) == 1:
            mean_t = mean_t * channels
        if len(std_t) == 1:
            std_t = std_t * channels
        if len(mean_t) != channels or len(std_t) != channels or min(std_t) <= 0:
            raise ConfigError(f"normalize needs 1 or {channels} means and positive stds")
        if not 0.0 < float(scale) <= 4.0:
            raise ConfigError(f"scale must be in (0, 4], got {scale}")
        return cls(channels, (int(size[0]), int(size[1])), mean_t, std_t, float(scale))

    def resize(self, image: np.ndarray) -> np.ndarray:
        """Resize an (H, W, C) uint8 image to ``size`` (bilinear); a no-op when it already fits."""
        if image.shape[:2] == self.size:
            return image
        return resize_image(image, self.size)

    def scaled_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) an image of this size has after :meth:`rescale`."""
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))

    def rescale(self, image: np.ndarray) -> np.ndarray:
        """Resize an (H, W, C) uint8 image by ``scale`` (bilinear); a no-op at scale 1."""
        size = self.scaled_size(*image.shape[:2])
        if size == image.shape[:2]:
            return image
        return resize_image(image, size)

    def rescale_mask(self, mask: np.ndarray) -> np.ndarray:
        """Resize a mask (H, W), bool or class-index, by ``scale`` (:func:`resize_labels`: a crack
        one pixel wide survives halving)."""
        size = self.scaled_size(*mask.shape)
        return mask if size == mask.shape else resize_labels(mask, size)

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """(H, W, C) uint8 -> (C, H, W) float32, scaled to 0..1 and normalised."""
        x = image.astype(np.float32) / 255.0
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Resize and normalise one (H, W, C) uint8 image."""
        return self.normalize(self.resize(image))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "channels": self.channels,
            "size": list(self.size),
            "mean": list(self.mean),
            "std": list(self.std),
        }
        if self.scale != 1.0:  # classifiers (and unscaled segmenters) keep the original form
            data["scale"] = self.scale
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        return cls.create(data["channels"], data["size"], data["mean"], data["std"], data.get("scale", 1.0))


def resize_image(image: np.ndarray, size: tuple[int, int], reducing_gap: float | None = None) -> np.ndarray:
    """An (H, W, C) uint8 image resized bilinearly to (height, width) ``size`` with Pillow, the one
    resize of the package (training, inspection and pictures alike). ``reducing_gap``: Pillow's
    two-step reduction for large downscales (faster, for pictures)."""
    pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
    resized = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR, reducing_gap=reducing_gap))
    return resized[:, :, None] if resized.ndim == 2 else resized


def pad_to_stride(array: np.ndarray, axes: tuple[int, int], stride: int = NETWORK_STRIDE) -> np.ndarray:
    """``array`` with its two spatial ``axes`` (height, width) padded at the bottom and right to
    multiples of ``stride``, by reflection (by repetition along an axis of length 1).

    Why: with a side that is not a multiple of the network's stride, each stride-2 layer rounds up
    and the last rows and columns of every feature map are computed from zero padding in a way that
    no multiple-of-32 training crop ever shows; on KolektorSDD's 250 x 630 scaled images that made
    a band of false alarms along the bottom edge. Reflected texture is what the network has learned.
    Cut the output back with ``[..., :height, :width]``.
    """
    spec = [(0, 0)] * array.ndim
    for axis in axes:
        spec[axis] = (0, (-array.shape[axis]) % stride)
    if not any(after for _, after in spec):
        return array
    if min(array.shape[axis] for axis in axes) < 2:
        return np.pad(array, spec, mode="edge")
    # reflection of more than the side's length - 1 rows would need repeated folding: np.pad does it
    return np.pad(array, spec, mode="reflect")


def resize_labels(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask resized to ``size`` (height, width), a pixel defect if any part of it was (area
    filter, then > 0): bool stays bool; a class-index mask (uint8, 0 good, k a defect type) is
    resized type by type, a higher type winning a pixel that two touch."""
    if mask.dtype == bool:
        return _any_pixel(mask, size)
    resized = np.zeros(size, np.uint8)
    for kind in np.unique(mask[mask > 0]):
        resized[_any_pixel(mask == kind, size)] = kind
    return resized


def _any_pixel(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A bool mask resized to ``size`` (height, width): True where any pixel it covers was."""
    pil = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BOX)) > 0
