"""Reading images from disk, with errors that name the file and the problem.

This module needs only NumPy and Pillow, so the inference runtime can use it without torch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

#: File extensions treated as images when scanning folders (compared lower-case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)


class ImageReadError(Exception):
    """An image that cannot be read. ``str()`` is one line: ``PATH: problem``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class TooManyPixels(ImageReadError):
    """An image larger than the caller allows (a likely decompression bomb)."""


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has an image extension (the content is checked only when it is read)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def find_images(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (recursively, by extension), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))


def read_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """Read an image as a ``uint8`` array of shape (H, W, channels), ``channels`` 1 or 3.

    Grayscale files read as 3 channels repeat the gray value; colour files read as 1 channel are
    converted with the ITU-R 601 luma weights (Pillow's 'L'). 16-bit images are scaled to 8 bits.
    Raises :class:`ImageReadError` for a missing, empty, truncated or non-image file.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file")
        with open(path, "rb") as file:
            return _decode(file, channels, path)
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None


def decode_image(
    data: bytes, channels: int = 3, name: str = "image", max_pixels: int | None = None
) -> np.ndarray:
    """:func:`read_image` for an image held in memory (an upload); ``name`` stands for the file in
    errors. With ``max_pixels``, an image with more pixels is refused from its header, before its
    pixels are decoded (a decompression bomb costs nothing)."""
    if not data:
        raise ImageReadError(name, "empty file")
    return _decode(io.BytesIO(data), channels, name, max_pixels)


def _decode(file: BinaryIO, channels: int, name: str | Path, max_pixels: int | None = None) -> np.ndarray:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(file) as image:
            if max_pixels is not None and image.width * image.height > max_pixels:
                raise TooManyPixels(
                    name, f"{image.width}x{image.height} is more than the {max_pixels} pixels allowed"
                )
            image.load()
            image = _to_8bit(image)
            converted = image.convert("L" if channels == 1 else "RGB")
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(name, "not an image file Pillow can read") from None
    except Image.DecompressionBombError as error:
        raise TooManyPixels(name, f"too many pixels ({error})") from None
    except (OSError, SyntaxError, ValueError) as error:  # truncated or corrupt data
        raise ImageReadError(name, f"corrupt or truncated image ({error})") from None
    array = np.asarray(converted, dtype=np.uint8)
    return array[:, :, None] if channels == 1 else array


def _to_8bit(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return image
