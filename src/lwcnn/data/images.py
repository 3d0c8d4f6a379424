"""Reading images from disk, with errors that name the file and the problem.

This module needs only NumPy and Pillow, so the inference runtime can use it without torch.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from lwcnn.errors import InputError
from lwcnn.fileio import printable_path

#: File extensions treated as images when scanning folders (compared lower-case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
)


class ImageReadError(InputError):
    """An image that cannot be read. ``str()`` is one line: ``PATH: problem`` (the path printable,
    :func:`lwcnn.fileio.printable_path`, whatever bytes its name holds)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{printable_path(path)}: {problem}")
        self.path = Path(path)
        self.problem = problem


class TooManyPixels(ImageReadError):
    """An image larger than the caller allows (a likely decompression bomb)."""


#: EXIF orientation (tag 0x0112) -> the transpose that turns the stored pixels upright. Browsers,
#: annotation tools (LabelMe, CVAT, Label Studio) and OpenCV's ``imread`` all show a phone photo
#: upright, and its labels are drawn on that view; Pillow alone returns the pixels as stored, which
#: would put every polygon of a rotated photo in the wrong place.
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image, 1 (as stored) where it has none or a broken one."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
        return int(value) if int(value) in _UPRIGHT else 1
    except Exception:  # a damaged EXIF block: the pixels are still good, read them as stored
        return 1


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (the image itself where it says nothing)."""
    method = _UPRIGHT.get(_orientation(image))
    return image if method is None else image.transpose(method)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(height, width) of an opened image as :func:`read_image` returns it, from the header: a
    quarter turn in the EXIF orientation (5-8) swaps the stored width and height."""
    if _orientation(image) >= 5:
        return image.width, image.height
    return image.height, image.width


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has an image extension (the content is checked only when it is read)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def find_images(folder: str | Path) -> list[Path]:
    """The image files under ``folder`` (recursively, by extension), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and is_image_file(p))


def read_image(path: str | Path, channels: int = 3, max_pixels: int | None = None) -> np.ndarray:
    """Read an image as a ``uint8`` array of shape (H, W, channels), ``channels`` 1 or 3.

    Grayscale files read as 3 channels repeat the gray value; colour files read as 1 channel are
    converted with the ITU-R 601 luma weights (Pillow's 'L'). 16-bit images are scaled to 8 bits.
    A photo with an EXIF orientation is turned upright (:func:`upright`), as annotation tools show it.
    With ``max_pixels``, a larger image is refused (:class:`TooManyPixels`) from its header.
    Raises :class:`ImageReadError` for a missing, empty, truncated or non-image file, or one that
    cannot be opened at all (a symlink loop, a socket).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "empty file")
        with open(path, "rb") as file:
            return _decode(file, channels, path, max_pixels)
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except IsADirectoryError:
        raise ImageReadError(path, "is a directory, not an image") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as error:  # ELOOP, ENXIO...: not a file that can be read
        raise ImageReadError(path, f"cannot be read ({error.strerror or error})") from None


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
            image = _to_8bit(upright(image), name)
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


def _to_8bit(image: Image.Image, name: str | Path) -> Image.Image:
    """16-bit and 32-bit integer images scaled to 8 bits (by 65535 when any value is above 255);
    floating-point images (TIFF mode F) by their range: 0..1 as fractions of white, 0..255 as they
    are, 0..65535 as 16 bits. Pillow's own conversion clips floats, which turns a 0..1 image black."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        if not np.isfinite(array).all():
            raise ImageReadError(name, "floating-point image with NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 65535.0:
            raise ImageReadError(
                name,
                f"floating-point image with values from {low:g} to {high:g}; lwcnn reads 0..1, 0..255 or "
                "0..65535: rescale it or save it as 8 or 16 bits",
            )
        top = 1.0 if high <= 1.0 else 255.0 if high <= 255.0 else 65535.0
        return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return image
