"""Layout recognition (what ``lwcnn train DATA`` starts from), dataset statistics, DeepPCB's layout
and cross-validation folds computed from the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.classification import scan_class_folders
from lwcnn.data.layouts import detect_layout
from lwcnn.data.masked_images import (
    read_labels,
    read_sample,
    scan_deeppcb,
    scan_image_mask_folders,
    scan_segmentation,
)
from lwcnn.data.splits import class_folds, image_folds, segmentation_split, stratified_split
from lwcnn.data.statistics import measure_dataset, region_shapes
from lwcnn.errors import DataError
from tests.synthetic import SHARED_DATASETS, make_class_folders, make_masked_folder, write_image


def _kolektorsdd(root: Path) -> Path:
    for item in ("kos01", "kos02"):
        write_image(root / item / "Part0.jpg", (16, 40))
        write_image(root / item / "Part0_label.png", (16, 40))
    return root


def _dagm(root: Path) -> Path:
    write_image(root / "Class1" / "Train" / "0001.PNG", (32, 32))
    return root


def _voc(root: Path, names: tuple[str, ...] = ("a_1", "b_2")) -> Path:
    for name in names:
        write_image(root / "IMAGES" / f"{name}.jpg", (20, 20))
        (root / "ANNOTATIONS").mkdir(parents=True, exist_ok=True)
        (root / "ANNOTATIONS" / f"{name}.xml").write_text(
            "<annotation><size><width>20</width><height>20</height></size>"
            "<object><name>x</name><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>8</xmax><ymax>9</ymax>"
            "</bndbox></object></annotation>"
        )
    return root


def _deeppcb(root: Path) -> Path:
    group = root / "PCBData" / "group00001"
    for stem in ("00001000", "00001001"):
        write_image(group / "00001" / f"{stem}_test.jpg", (64, 48))
        write_image(group / "00001" / f"{stem}_temp.jpg", (64, 48))
        (group / "00001_not").mkdir(parents=True, exist_ok=True)
        (group / "00001_not" / f"{stem}.txt").write_text("10 5 20 12 1\n30 30 40 44 3\n")
    (root / "PCBData" / "test.txt").write_text(
        "group00001/00001/00001001.jpg group00001/00001_not/00001001.txt\n"
    )
    return root


def _mvtec(root: Path) -> Path:
    """One MVTec AD category: good training images, good and two kinds of defective test images."""
    for index in range(3):
        write_image(root / "train" / "good" / f"{index:03d}.png", (20, 20), seed=index)
        write_image(root / "test" / "good" / f"{index:03d}.png", (20, 20), seed=index + 3)
    for kind, box in (("crack", (2, 2, 6, 6)), ("scratch", (8, 8, 12, 18))):
        for index in range(2):
            write_image(root / "test" / kind / f"{index:03d}.png", (20, 20), seed=index + 9)
            mask = np.zeros((20, 20), np.uint8)
            mask[box[1] : box[3], box[0] : box[2]] = 255
            (root / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / "ground_truth" / kind / f"{index:03d}_mask.png")
    return root


@pytest.mark.parametrize(
    ("make", "task", "layout"),
    [
        (lambda root: make_class_folders(root, per_class=2, size=16), "cls", "folders"),
        (lambda root: make_masked_folder(root, count=4), "seg", "masks"),
        (_kolektorsdd, "seg", "kolektorsdd"),
        (_dagm, "seg", "dagm"),
        (_voc, "seg", "voc"),
        (_deeppcb, "seg", "deeppcb"),
        (_mvtec, "seg", "mvtec"),
    ],
)
def test_each_layout_is_recognised(tmp_path, make, task, layout):
    detected = detect_layout(make(tmp_path / "data"))
    assert (detected.task, detected.layout) == (task, layout)


def test_a_folder_that_fits_two_tasks_says_which_task_to_give(tmp_path):
    root = _voc(tmp_path / "neu-det", names=("crazing_1", "scratches_2"))  # NEU names and VOC boxes
    with pytest.raises(DataError, match=r"fits more than one task.*--task seg.*--task cls"):
        detect_layout(root)
    assert detect_layout(root, task="cls").layout == "neu"
    assert detect_layout(root, task="seg").layout == "voc"


def test_a_folder_of_loose_images_names_the_layouts_it_knows(tmp_path):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png")
    with pytest.raises(DataError, match=r"not a known layout.*class folders.*images/ \+ masks/"):
        detect_layout(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        detect_layout(tmp_path / "missing")


def test_deeppcb_boxes_become_masks_and_the_release_test_list_the_test_part(tmp_path):
    images = scan_deeppcb(_deeppcb(tmp_path))
    assert len(images) == 4 and images.defective_count() == 2
    parts = {s.image.name: s.part for s in images.samples}
    assert parts["00001001_test.jpg"] == parts["00001001_temp.jpg"] == "test"
    assert parts["00001000_test.jpg"] == "train"
    tested = next(i for i, s in enumerate(images.samples) if s.image.name == "00001000_test.jpg")
    _, mask = read_sample(images, tested)
    assert mask.sum() == (20 - 10) * (12 - 5) + (40 - 30) * (44 - 30)
    assert mask[5, 10] and not mask[4, 10] and not mask[5, 20]
    template = next(i for i, s in enumerate(images.samples) if s.image.name == "00001000_temp.jpg")
    assert not read_sample(images, template)[1].any()
    split = segmentation_split(images, {"val": 0.5}, seed=0)
    assert set(split.parts["test"]) == {s.image.as_posix() for s in images.samples if s.part == "test"}


def test_deeppcb_validation_holds_out_a_board_with_its_template(tmp_path):
    root = _deeppcb(tmp_path)
    group = root / "PCBData" / "group00001" / "00001"
    for stem in range(1002, 1012):  # ten more training pairs
        write_image(group / f"{stem:08d}_test.jpg", (64, 48))
    for tested in sorted(group.glob("*_test.jpg")):
        write_image(tested.with_name(tested.name.replace("_test", "_temp")), (64, 48))
        (group.parent / "00001_not" / tested.name.replace("_test.jpg", ".txt")).write_text("10 5 20 12 1\n")
    images = scan_deeppcb(root)
    split = segmentation_split(images, {"val": 0.5}, seed=0)
    val = split.parts["val"]
    assert len(val) == 12 and sum(p.endswith("_test.jpg") for p in val) == 6  # 6 of 11 pairs, whole
    trained = {Path(p).name.rpartition("_")[0] for p in split.parts["train"]}
    assert not trained & {Path(p).name.rpartition("_")[0] for p in val}  # no twin on the other side
    assert split.parts == segmentation_split(images, {"val": 0.5}, seed=0).parts  # the seed decides
    assert split.parts["val"] != segmentation_split(images, {"val": 0.5}, seed=1).parts["val"]


def test_real_deeppcb_scans_with_its_release_split():
    root = SHARED_DATASETS / "deeppcb"
    if not root.is_dir():
        pytest.skip(f"DeepPCB not found at {root}")
    images = scan_segmentation(root, "deeppcb")
    assert images.defective_count() == len(images) // 2 == 959
    assert sum(s.part == "test" for s in images.samples) == 2 * 448


def test_region_shapes_measure_thickness_and_extent():
    mask = np.zeros((40, 60), bool)
    mask[10:13, 5:55] = True  # a line 3 px thick, 50 long
    mask[20:30, 20:30] = True  # a 10 x 10 blob
    shapes = sorted(region_shapes(mask))
    assert shapes[0] == (10.0, 9.0)  # a 10 x 10 blob: 2 * 5 - 1
    assert shapes[1] == (50.0, 3.0)


def test_statistics_of_a_masked_folder(tmp_path):
    images = scan_image_mask_folders(make_masked_folder(tmp_path, count=6, size=(30, 50)))
    stats = measure_dataset(images, "seg")
    assert stats.median_size == (30, 50) and stats.channels == 1
    assert stats.class_counts == {"defective": 3, "defect-free": 3}
    assert stats.defect_width is not None and stats.defect_width[1] == 3.0  # 4 x 6 boxes: 2 * 2 - 1


def test_statistics_see_colour(tmp_path):
    root = make_class_folders(tmp_path, per_class=2, size=16)
    write_image(root / "checker" / "colour.png", (16, 16), mode="RGB", seed=3)
    assert measure_dataset(scan_class_folders(root), "cls").channels == 3


def test_class_folds_partition_every_class(tmp_path):
    images = scan_class_folders(make_class_folders(tmp_path, per_class=7, size=16))
    folds = class_folds(images, 3, seed=0)
    every = [p for fold in folds for p in fold]
    assert sorted(every) == sorted(p.as_posix() for p in images.paths)  # disjoint and complete
    for fold in folds:
        assert {p.split("/")[0] for p in fold} == set(images.classes)  # every class in every fold
    split = stratified_split(images, {"folds": 3, "test_fold": 1, "val": 0.2}, seed=0)
    assert set(split.parts["test"]) == set(folds[1])
    assert not set(split.parts["train"]) & set(split.parts["val"]) | set(split.parts["test"]) & set(
        split.parts["train"]
    )


def test_image_folds_of_a_masked_folder_balance_defective_images(tmp_path):
    images = scan_image_mask_folders(make_masked_folder(tmp_path, count=12))
    folds, by_group = image_folds(images, 3, seed=0)
    assert not by_group and sorted(p for f in folds for p in f) == sorted(p.as_posix() for p in images.paths)
    defective = {s.image.as_posix() for s in images.samples if s.defective}
    assert [sum(p in defective for p in fold) for fold in folds] == [2, 2, 2]
    split = segmentation_split(images, {"folds": 3, "test_fold": 2, "val": 0.25}, seed=0)
    assert set(split.parts["test"]) == set(folds[2]) and split.parts["val"]


def test_kolektorsdd_folds_keep_items_whole(tmp_path):
    root = tmp_path / "k"
    for item in range(6):
        for part in range(2):
            path = write_image(root / f"kos{item:02d}" / f"Part{part}.jpg", (16, 40), seed=10 * item + part)
            label = np.zeros((40, 16), np.uint8)
            if item % 2 == 0 and part == 0:
                label[5:9, 4:8] = 255
            Image.fromarray(label).save(path.with_name(f"Part{part}_label.png"))
    images = scan_segmentation(root)
    folds, by_group = image_folds(images, 3, seed=0)
    assert by_group and sorted(g for f in folds for g in f) == [f"kos{i:02d}" for i in range(6)]


def test_an_mvtec_category_is_pooled_with_its_defect_types(tmp_path):
    images = scan_segmentation(_mvtec(tmp_path / "bottle"))
    assert images.layout == "mvtec" and images.types == ("crack", "scratch")
    assert len(images.samples) == 10 and sum(s.defective for s in images.samples) == 4
    assert not any(s.part for s in images.samples)  # train/ holds no defect: the split is drawn
    scratch = next(i for i, s in enumerate(images.samples) if "scratch" in s.image.parts)
    _, labels = read_labels(images, scratch)
    assert set(np.unique(labels)) == {0, 2} and (labels == 2).sum() == 40


def test_the_mvtec_root_asks_for_one_category(tmp_path):
    _mvtec(tmp_path / "mvtec" / "bottle")
    _mvtec(tmp_path / "mvtec" / "cable")
    with pytest.raises(DataError, match=r"MVTec AD categories \(bottle, cable\).*give one category folder"):
        detect_layout(tmp_path / "mvtec")


def test_folders_named_as_a_split_are_not_taken_for_classes(tmp_path):
    root = tmp_path / "severstal"
    write_image(root / "train_images" / "0002cc93b.jpg", (32, 8))
    write_image(root / "test_images" / "0000f269f.jpg", (32, 8))
    (root / "notes.csv").write_text("batch,comment\n17,rolled on line 2\n")  # names no image
    with pytest.raises(DataError, match=r"test_images/ and train_images/ are named as the parts.*notes\.csv"):
        detect_layout(root)


def _gc10_det(root: Path) -> Path:
    """GC10-DET as downloaded: images in one folder per defect kind (1/ ... 10/), their VOC boxes
    in a folder named lable/ (sic), one .xml per defective image."""
    for kind, stems in (("1", ("img_01_001", "img_01_002")), ("2", ("img_02_001", "img_02_002"))):
        for stem in stems:
            write_image(root / kind / f"{stem}.jpg", (20, 20), seed=len(stem))
    for stem, name in (("img_01_001", "punching_hole"), ("img_02_002", "welding_line")):
        (root / "lable").mkdir(parents=True, exist_ok=True)
        (root / "lable" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>20</width><height>20</height></size>"
            f"<object><name>{name}</name><bndbox><xmin>2</xmin><ymin>3</ymin><xmax>8</xmax><ymax>9</ymax>"
            "</bndbox></object></annotation>"
        )
    (root / "lable" / "img_09_999.xml").write_text((root / "lable" / "img_01_001.xml").read_text())
    return root


def test_voc_boxes_in_a_folder_of_another_name_are_found_by_their_content(tmp_path):
    root = _gc10_det(tmp_path / "gc10")
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == ("seg", "voc") and "lable/" in detected.evidence
    with pytest.raises(DataError, match=r"lable/img_09_999\.xml: annotation without an image"):
        scan_segmentation(root)
    images = scan_segmentation(root, strict=False)  # as lwcnn data check lists them
    assert [p.path.as_posix() for p in images.label_problems] == ["lable/img_09_999.xml"]
    defective = {s.image.as_posix(): s.group for s in images.samples if s.mask is not None}
    assert defective == {"1/img_01_001.jpg": "punching_hole", "2/img_02_002.jpg": "welding_line"}
    assert len(images) == 4 and images.types == ("punching_hole", "welding_line")
    assert read_sample(images, 0)[1].sum() == 7 * 7  # the box x 2..8, y 3..9 as a coarse mask
    (root / "lable" / "img_09_999.xml").unlink()
    # annotations matched by file name need each name once
    write_image(root / "2" / "img_01_001.jpg", (20, 20))
    with pytest.raises(DataError, match=r"1/img_01_001\.jpg and 2/img_01_001\.jpg have one name"):
        scan_segmentation(root)
