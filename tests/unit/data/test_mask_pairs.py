"""The ``pairs`` layout: images with their masks beside them in the same folder (the magnetic-tile
set's ``x.jpg`` + ``x.png``, KolektorSDD2's ``x.png`` + ``x_GT.png``, ``x_mask.png``), and class
folders that hold such masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.classification import scan_class_folders
from lwcnn.data.layouts import detect_layout
from lwcnn.data.mask_pairs import mask_partners, scan_mask_pairs
from lwcnn.data.masked_images import read_labels, read_mask, read_sample, scan_segmentation
from lwcnn.data.splits import segmentation_split
from lwcnn.errors import DataError
from tests.synthetic import write_image


def _mask(path: Path, size: tuple[int, int], box: tuple[int, int, int, int] | None) -> Path:
    """A 0/255 mask (width, height) with ``box`` (x0, y0, x1, y1) defective, or none."""
    array = np.zeros((size[1], size[0]), np.uint8)
    if box is not None:
        x0, y0, x1, y1 = box
        array[y0:y1, x0:x1] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _magnetic_tiles(root: Path) -> Path:
    """The magnetic-tile set's layout: MT_<kind>/Imgs/x.jpg with x.png, MT_Free's masks empty,
    and the release's own picture loose at the top."""
    for kind, box in (("MT_Blowhole", (2, 2, 6, 6)), ("MT_Crack", (10, 4, 12, 20)), ("MT_Free", None)):
        for index in range(3):
            stem = f"exp1_num_{kind[3:]}{index}"
            write_image(root / kind / "Imgs" / f"{stem}.jpg", (24 + index, 30), seed=index)
            _mask(root / kind / "Imgs" / f"{stem}.png", (24 + index, 30), box)
    write_image(root / "dataset.jpg", (40, 20))
    return root


def test_magnetic_tiles_fit_both_tasks_and_each_reading_leaves_the_masks_out(tmp_path):
    root = _magnetic_tiles(tmp_path / "mt")
    with pytest.raises(DataError, match=r"fits more than one task.*--task seg \(pairs.*--task cls \(folders"):
        detect_layout(root)
    assert detect_layout(root, task="seg").layout == "pairs"

    classes = scan_class_folders(root)
    assert classes.counts() == {"MT_Blowhole": 3, "MT_Crack": 3, "MT_Free": 3}  # 18 with the masks
    assert all(p.suffix == ".jpg" for p in classes.paths)

    images = scan_segmentation(root)  # auto: the segmentation reading, as --task seg gives it
    assert images.layout == "pairs"
    assert len(images.samples) == 9  # the masks and the loose picture are not samples
    assert sum(s.defective for s in images.samples) == 6  # MT_Free's empty masks: defect-free
    assert images.types == ("MT_Blowhole", "MT_Crack")  # the folders with defects
    crack = next(i for i, s in enumerate(images.samples) if "MT_Crack" in s.image.parts)
    image, labels = read_labels(images, crack)
    assert image.shape[:2] == labels.shape == (30, 24)
    assert set(np.unique(labels)) == {0, 2} and (labels == 2).sum() == 2 * 16
    _, mask = read_sample(images.merged(), crack)
    assert mask.sum() == 2 * 16


def test_kolektorsdd2_layout_keeps_its_own_train_and_test_parts(tmp_path):
    root = tmp_path / "ksdd2"
    for part, count in (("train", 6), ("test", 4)):
        for index in range(count):
            write_image(root / part / f"{index:05d}.png", (20, 40), seed=index)
            _mask(root / part / f"{index:05d}_GT.png", (20, 40), (3, 3, 9, 9) if index % 2 else None)
    detected = detect_layout(root)  # train/ and test/ are parts, not classes: one reading
    assert (detected.task, detected.layout) == ("seg", "pairs")
    images = scan_mask_pairs(root)
    assert images.types == ("defect",)
    assert {s.part for s in images.samples} == {"train", "test"}
    split = segmentation_split(images, {"val": 0.2}, seed=0)
    assert len(split.parts["test"]) == 4 and all(p.startswith("test/") for p in split.parts["test"])


def test_a_flat_folder_with_named_masks_and_images_without_one(tmp_path):
    root = tmp_path / "parts"
    write_image(root / "a.png", (16, 16))
    _mask(root / "a_mask.png", (16, 16), (1, 1, 4, 4))
    write_image(root / "b.bmp", (16, 16), seed=1)
    _mask(root / "b_Label.png", (16, 16), (5, 5, 9, 9))
    write_image(root / "c.jpg", (16, 16), seed=2)  # no mask: defect-free
    assert detect_layout(root).layout == "pairs"
    images = scan_mask_pairs(root)
    assert [(s.image.name, s.defective) for s in images.samples] == [
        ("a.png", True), ("b.bmp", True), ("c.jpg", False)
    ]  # fmt: skip


def test_two_copies_of_a_photo_are_not_an_image_and_its_mask(tmp_path):
    root = tmp_path / "photos"
    for kind in ("good", "bad"):
        for index in range(2):
            write_image(root / kind / f"p{index}.jpg", (32, 32), seed=index)
            write_image(root / kind / f"p{index}.png", (32, 32), seed=index + 5)  # another photo
    assert mask_partners(sorted(root.rglob("*.*"))) == {}
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == ("cls", "folders")
    assert scan_class_folders(root).counts() == {"bad": 4, "good": 4}


def test_a_soft_mask_beside_its_image_is_named_when_read(tmp_path):
    root = tmp_path / "soft"
    write_image(root / "a.jpg", (16, 16))
    array = np.zeros((16, 16), np.uint8)
    array[4:8, 4:8], array[8:10, 4:8] = 255, 128  # an anti-aliased edge: three values
    Image.fromarray(array).save(root / "a.png")
    with pytest.raises(DataError, match=r"a\.png: mask has 3 values"):
        scan_mask_pairs(root)


def test_a_folder_without_pairs_is_not_the_pairs_layout(tmp_path):
    write_image(tmp_path / "x" / "a.jpg", (16, 16))
    with pytest.raises(DataError, match="no image with its mask beside it"):
        scan_mask_pairs(tmp_path / "x")


def _image_and_mask_folders(root: Path, images: str, masks: str, count: int = 3, suffix: str = "") -> Path:
    for index in range(count):
        write_image(root / images / f"{index:03d}.jpg", (20, 16), seed=index)
        _mask(root / masks / f"{index:03d}{suffix}.png", (20, 16), (2, 2, 5 + index, 6))
    return root


def test_image_and_mask_folders_under_other_names_are_the_masks_layout(tmp_path):
    root = _image_and_mask_folders(tmp_path / "cfd", "image", "gt", suffix="_GT")
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == ("seg", "masks")
    assert "image/ with masks in gt/" in detected.evidence
    images = scan_segmentation(root)
    masks = [str(s.mask) for s in images.samples]
    assert masks == [str(Path("gt") / f"{i:03d}_GT.png") for i in range(3)]
    assert read_sample(images, 2)[1].sum() == 5 * 4  # the box: x 2..6, y 2..5


def test_deepcrack_style_folders_make_their_parts(tmp_path):
    root = tmp_path / "deepcrack"
    _image_and_mask_folders(root, "train_img", "train_lab", count=5)
    _image_and_mask_folders(root, "test_img", "test_lab", count=2)
    assert detect_layout(root).layout == "masks"
    images = scan_segmentation(root)
    assert sorted(s.part for s in images.samples) == ["test"] * 2 + ["train"] * 5  # type: ignore[type-var]
    split = segmentation_split(images, {"val": 0.2}, seed=0)
    assert sorted(split.parts["test"]) == ["test_img/000.jpg", "test_img/001.jpg"]


def test_two_class_folders_of_photos_with_the_same_names_stay_class_folders(tmp_path):
    for kind in ("good", "bad"):
        for index in range(3):
            write_image(tmp_path / "d" / kind / f"{index:03d}.jpg", (16, 16), seed=index + len(kind))
    detected = detect_layout(tmp_path / "d")
    assert (detected.task, detected.layout) == ("cls", "folders")


def test_a_bitmap_mask_beside_a_jpeg_is_its_mask(tmp_path):
    root = tmp_path / "rail"
    write_image(root / "a.jpg", (16, 16))
    _mask(root / "a.bmp", (16, 16), (2, 2, 6, 6))
    write_image(root / "b.bmp", (16, 16), seed=3)  # a bitmap photo with a PNG mask
    _mask(root / "b.png", (16, 16), None)
    assert mask_partners(sorted(root.iterdir())) == {
        root / "a.jpg": root / "a.bmp",
        root / "b.bmp": root / "b.png",
    }


def _jpeg_mask(path: Path, size: tuple[int, int], index: int) -> np.ndarray:
    """A 0/255 mask (a blob and a 3-pixel crack) saved as JPEG, as RSDDs and many crack sets ship
    theirs; returns the mask as drawn."""
    array = np.zeros((size[1], size[0]), np.uint8)
    array[10 : 22 + index, 8:30] = 255
    array[40:43, 5:60] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=75)
    return array > 0


def test_jpeg_masks_are_read_through_their_compression_noise(tmp_path):
    # RSDDs' layout: photos and masks as JPEG in folders named neither images/ nor masks/
    root = tmp_path / "rsdds"
    drawn = {}
    for index in range(3):
        write_image(root / "Rail surface images" / f"rail_{index}.jpg", (64, 56), seed=index)
        drawn[index] = _jpeg_mask(root / "GroundTruth" / f"rail_{index}.jpg", (64, 56), index)
    with Image.open(root / "GroundTruth" / "rail_0.jpg") as stored:
        assert len(np.unique(np.asarray(stored))) > 16  # the noise the old reading refused
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == ("seg", "masks")
    images = scan_segmentation(root)
    for index, sample in enumerate(images.samples):
        mask = read_sample(images, index)[1].astype(bool)
        expected = drawn[int(sample.image.stem[-1])]
        assert (mask != expected).sum() <= 0.01 * mask.size, sample


def test_a_jpeg_photo_in_place_of_a_mask_is_still_refused(tmp_path):
    root = tmp_path / "wrong"
    write_image(root / "a.jpg", (32, 32))
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8), (32, 1))  # a gradient: mid-tones
    Image.fromarray(smooth).save(root / "a_mask.jpg", quality=90)
    with pytest.raises(DataError, match=r"a_mask\.jpg: mask has \d+ values"):
        read_mask(root / "a_mask.jpg")


def test_label_files_finds_each_layout_s_masks_and_nothing_in_photo_folders(tmp_path):
    from lwcnn.data.images import find_images
    from lwcnn.data.mask_pairs import label_files

    def found(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in label_files(find_images(root))}

    # images/ + masks/, the masks one folder per type
    root = tmp_path / "typed"
    for index, kind in enumerate(("crack", "crack", "spot")):
        write_image(root / "images" / f"{index}.jpg", (16, 16), seed=index)
        _mask(root / "masks" / kind / f"{index}.png", (16, 16), (2, 2, 6, 6))
    assert found(root) == {"masks/crack/0.png", "masks/crack/1.png", "masks/spot/2.png"}
    # DAGM: Train/ with its masks in Train/Label/, named x_label
    root = tmp_path / "dagm"
    for index in range(4):
        write_image(root / "Class1" / "Train" / f"{index:04d}.PNG", (16, 16), seed=index)
    for index in (1, 3):
        _mask(root / "Class1" / "Train" / "Label" / f"{index:04d}_label.PNG", (16, 16), (1, 1, 4, 4))
    assert found(root) == {"Class1/Train/Label/0001_label.PNG", "Class1/Train/Label/0003_label.PNG"}
    # KolektorSDD: each item's parts with their _label.bmp beside them
    root = tmp_path / "ksdd"
    for item in ("kos01", "kos02"):
        write_image(root / item / "Part0.jpg", (16, 24), seed=len(item))
        _mask(root / item / "Part0_label.bmp", (16, 24), None)
    assert found(root) == {"kos01/Part0_label.bmp", "kos02/Part0_label.bmp"}
    # class folders of photos (and of two-tone photos with the same names): no masks
    for kind in ("good", "bad"):
        for index in range(3):
            write_image(tmp_path / "cls" / kind / f"{index}.png", (16, 16), seed=index + len(kind))
            _mask(tmp_path / "twotone" / kind / f"{index}.png", (16, 16), (0, 0, 8 + index, 8))
    assert found(tmp_path / "cls") == set() and found(tmp_path / "twotone") == set()
    # a flat image of another grey beside a photo of its name is an image, not its mask (a mask's
    # good pixels are 0)
    write_image(tmp_path / "flat" / "x.jpg", (16, 16))
    Image.fromarray(np.full((16, 16), 120, np.uint8)).save(tmp_path / "flat" / "x.png")
    _mask(tmp_path / "flat" / "y.png", (16, 16), (2, 2, 4, 4))
    write_image(tmp_path / "flat" / "y.jpg", (16, 16))
    assert found(tmp_path / "flat") == {"y.png"}
