from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.images import ImageReadError, read_image, upright_size
from tests.synthetic import write_image


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_reads_gray_as_one_or_three_channels(tmp_path, suffix):
    path = write_image(tmp_path / f"gray{suffix}", size=(12, 10), mode="L")
    gray = read_image(path, channels=1)
    rgb = read_image(path, channels=3)
    assert gray.shape == (10, 12, 1) and gray.dtype == np.uint8
    assert rgb.shape == (10, 12, 3)
    assert np.array_equal(rgb[:, :, 0], gray[:, :, 0]) and np.array_equal(rgb[:, :, 2], gray[:, :, 0])


def test_reads_rgb_as_luma_when_one_channel(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (4, 3), (255, 0, 0)).save(path)
    assert read_image(path, 3)[0, 0].tolist() == [255, 0, 0]
    assert read_image(path, 1)[0, 0, 0] == 76  # ITU-R 601: 0.299 * 255


def test_reads_16_bit_scaled_to_8_bit(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)).save(path)
    assert read_image(path, 1)[0, :, 0].tolist() == [0, 255]


def _empty(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    return path


def _text_named_png(tmp_path):
    path = tmp_path / "text.png"
    path.write_text("not an image")
    return path


def _truncated_png(tmp_path):
    path = write_image(tmp_path / "truncated.png", size=(64, 64))
    path.write_bytes(path.read_bytes()[:100])
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (_empty, "empty file"),
        (_truncated_png, "corrupt or truncated"),
        (_text_named_png, "not an image file"),
        (lambda d: d / "missing.png", "no such file"),
    ],
    ids=["empty", "truncated", "text-named-png", "missing"],
)
def test_bad_files_raise_one_line_error_naming_the_file(tmp_path, make, problem):
    path = make(tmp_path)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_floating_point_tiffs_are_scaled_by_their_range_not_clipped(tmp_path):
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(ramp, mode="F").save(tmp_path / "fractions.tif")
    read = read_image(tmp_path / "fractions.tif", channels=1)[:, :, 0]
    assert read.max() == 255 and read.min() == 0  # 0..1 floats: black to white, not all black
    assert np.abs(read.astype(float) - ramp * 255).max() <= 0.5 + 1e-6
    Image.fromarray(ramp * 200, mode="F").save(tmp_path / "levels.tif")
    assert read_image(tmp_path / "levels.tif", channels=1).max() == 200
    Image.fromarray(ramp * 1e6, mode="F").save(tmp_path / "huge.tif")
    with pytest.raises(ImageReadError, match=r"huge\.tif: floating-point image with values from 0 to 1e\+06"):
        read_image(tmp_path / "huge.tif")


def _with_orientation(path, stored: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(path, exif=exif)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_photos_are_turned_upright_as_annotation_tools_show_them(tmp_path, orientation):
    from PIL import ImageOps

    stored = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10  # no symmetry: every turn differs
    path = tmp_path / "photo.png"
    _with_orientation(path, stored, orientation)
    with Image.open(path) as image:
        shown = np.asarray(ImageOps.exif_transpose(image))  # Pillow's own reference
    array = read_image(path, channels=1)[:, :, 0]
    np.testing.assert_array_equal(array, shown)
    if orientation == 6:  # "turn 90 degrees clockwise to view", by hand
        np.testing.assert_array_equal(array, np.rot90(stored, k=-1))
    with Image.open(path) as image:
        assert upright_size(image) == array.shape


def test_a_sideways_jpeg_reads_upright_in_colour(tmp_path):
    stored = np.zeros((40, 80, 3), np.uint8)
    stored[:, :40] = (255, 0, 0)  # red on the stored left half: the top half once turned clockwise
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    array = read_image(path, channels=3)
    assert array.shape == (80, 40, 3)
    assert array[5, 20, 0] > 200 and array[75, 20, 0] < 50


def test_a_broken_orientation_reads_as_stored(tmp_path):
    stored = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "odd.png"
    _with_orientation(path, stored, 9)  # not an EXIF orientation
    np.testing.assert_array_equal(read_image(path, channels=1)[:, :, 0], stored)
