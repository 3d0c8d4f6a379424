from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.images import ImageReadError, read_image
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
