"""Loaders of images with defect masks, each against a miniature of its layout."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lwcnn.cli import main
from lwcnn.data.classification import DataError
from lwcnn.data.masked_images import (
    boxes_from_voc,
    mask_from_boxes,
    read_mask,
    read_sample,
    scan_dagm,
    scan_image_mask_folders,
    scan_kolektorsdd,
    scan_segmentation,
    scan_voc,
)
from lwcnn.data.splits import grouped_folds
from lwcnn.data.synth import DEFECT_KINDS, synthesize_dagm
from tests.synthetic import SHARED_DATASETS, write_image


def save_mask(path, array, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode=mode).save(path)
    return path


def defect_mask(shape=(10, 12), box=(2, 3, 5, 7), value=255):
    mask = np.zeros(shape, np.uint8)
    mask[box[0] : box[2], box[1] : box[3]] = value
    return mask


def test_kolektorsdd_pairs_labels_and_drops_duplicates(tmp_path):
    root = tmp_path / "ksdd"
    for item, seed in (("kos01", 0), ("kos02", 1)):
        for part in range(3):
            write_image(root / item / f"Part{part}.jpg", size=(12, 10), seed=seed * 10 + part)
            label = defect_mask() if part == 1 else np.zeros((10, 12), np.uint8)
            save_mask(root / item / f"Part{part}_label.png", label)
    shutil.copy(root / "kos01" / "Part0.jpg", root / "kos02" / "Part2.jpg")  # byte-identical duplicate
    save_mask(root / "kos03" / "Part0_label.bmp", defect_mask(value=1), mode="L")  # .bmp label, 0/1 values
    write_image(root / "kos03" / "Part0.bmp", size=(12, 10), seed=99)
    images = scan_kolektorsdd(root)
    assert images.layout == "kolektorsdd" and images.groups() == ["kos01", "kos02", "kos03"]
    assert [p.as_posix() for p in images.dropped_duplicates] == ["kos02/Part2.jpg"]
    assert len(images) == 6 and images.defective_count() == 3
    index = next(i for i, s in enumerate(images.samples) if s.image.as_posix() == "kos03/Part0.bmp")
    image, mask = read_sample(images, index)
    assert image.shape == (10, 12, 1) and mask.sum() == 3 * 4
    clean = next(i for i, s in enumerate(images.samples) if not s.defective)
    assert not read_sample(images, clean)[1].any()


def test_kolektorsdd_image_without_label_is_an_error(tmp_path):
    write_image(tmp_path / "kos01" / "Part0.jpg")
    with pytest.raises(DataError, match=r"Part0.jpg: no Part0_label.png or .bmp beside it"):
        scan_kolektorsdd(tmp_path)


def test_dagm_layout_from_the_synthesiser(tmp_path):
    root = synthesize_dagm(
        tmp_path / "dagm", classes=4, train=6, test=5, defective_fraction=0.5, size=64, seed=3
    )
    images = scan_dagm(root)
    assert images.groups() == ["Class1", "Class2", "Class3", "Class4"]
    assert len(images) == 4 * 11
    assert {s.part for s in images.samples} == {"train", "test"}
    assert images.defective_count() == 4 * (3 + 2)  # round(6 * 0.5) + round(5 * 0.5) per class
    for index, sample in enumerate(images.samples):
        image, mask = read_sample(images, index)
        assert image.shape == (64, 64, 1)
        assert mask.any() == sample.defective
    one_class = scan_dagm(root / "Class2")
    assert len(one_class) == 11 and one_class.groups() == ["Class2"]
    again = synthesize_dagm(
        tmp_path / "again", classes=4, train=6, test=5, defective_fraction=0.5, size=64, seed=3
    )
    first = (root / "Class3" / "Test" / "0009.PNG").read_bytes()
    assert (again / "Class3" / "Test" / "0009.PNG").read_bytes() == first  # seeded
    assert len(DEFECT_KINDS) == 4


def test_dagm_labels_txt_naming_a_missing_mask_is_an_error(tmp_path):
    root = synthesize_dagm(tmp_path / "dagm", classes=1, train=4, test=4, defective_fraction=0.5, size=32)
    label = next((root / "Class1" / "Train" / "Label").glob("*_label.PNG"))
    label.unlink()
    with pytest.raises(DataError, match=f"{label.name}: named in Labels.txt but missing"):
        scan_dagm(root)


def test_image_mask_folders(tmp_path):
    root = tmp_path / "parts"
    write_image(root / "images" / "a.png", size=(12, 10))
    write_image(root / "images" / "b.jpg", size=(12, 10), seed=1)
    write_image(root / "images" / "line2" / "c.png", size=(12, 10), seed=2)
    save_mask(root / "masks" / "a.png", defect_mask(value=255))
    save_mask(root / "masks" / "line2" / "c.png", defect_mask(value=1))
    images = scan_image_mask_folders(root)
    assert [(s.image.as_posix(), s.defective, s.group) for s in images.samples] == [
        ("images/a.png", True, ""),
        ("images/b.jpg", False, ""),
        ("images/line2/c.png", True, "line2"),
    ]
    assert read_sample(images, 2)[1].sum() == 12  # 0/1 masks read like 0/255 ones


def test_orphan_mask_and_size_mismatch_are_errors_naming_the_file(tmp_path):
    root = tmp_path / "parts"
    write_image(root / "images" / "a.png", size=(12, 10))
    save_mask(root / "masks" / "zzz.png", defect_mask())
    with pytest.raises(DataError, match=r"zzz.png: mask without an image"):
        scan_segmentation(root, "masks")
    listed = scan_segmentation(root, "masks", strict=False)  # what lwcnn data check reports
    assert [(p.path.name, "without an image" in p.problem) for p in listed.label_problems] == [
        ("zzz.png", True)
    ]
    (root / "masks" / "zzz.png").unlink()
    save_mask(root / "masks" / "a.png", defect_mask(shape=(11, 12)))
    images = scan_image_mask_folders(root)
    with pytest.raises(DataError, match=r"masks/a.png: mask is 12x11 but its image is 12x10"):
        read_sample(images, 0)


def test_voc_boxes_become_coarse_masks(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text(
        "<annotation><size><width>8</width><height>6</height><depth>1</depth></size>"
        "<object><name>patches</name><bndbox><xmin>2</xmin><ymin>1</ymin><xmax>4</xmax><ymax>3</ymax></bndbox></object>"
        "</annotation>"
    )
    size, boxes = boxes_from_voc(xml)
    assert size == (6, 8) and boxes == [("patches", 2, 1, 4, 3)]
    mask = mask_from_boxes(size, boxes)
    assert mask.sum() == 3 * 3 and mask[0, 1] and mask[2, 3] and not mask[3, 3]
    (tmp_path / "bad.xml").write_text("<annotation>")
    with pytest.raises(DataError, match=r"bad\.xml: not a Pascal VOC annotation"):
        boxes_from_voc(tmp_path / "bad.xml")


def voc_xml(name: str, width: int, height: int, boxes: list[tuple[int, int, int, int]]) -> str:
    objects = "".join(
        f"<object><name>{name}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
        "</bndbox></object>"
        for a, b, c, d in boxes
    )
    return f"<annotation><size><width>{width}</width><height>{height}</height></size>{objects}</annotation>"


def test_voc_layout_reads_boxes_as_masks_neu_det_style(tmp_path):
    root = tmp_path / "det"
    (root / "ANNOTATIONS").mkdir(parents=True)
    write_image(root / "IMAGES" / "patches_1.jpg", size=(20, 10))
    write_image(root / "IMAGES" / "scratches_2.jpg", size=(20, 10))
    write_image(root / "IMAGES" / "clean_3.jpg", size=(20, 10))  # no annotation: defect-free
    (root / "ANNOTATIONS" / "patches_1.xml").write_text(
        voc_xml("patches", 20, 10, [(1, 1, 5, 4), (10, 6, 12, 8)])
    )
    (root / "ANNOTATIONS" / "scratches_2.xml").write_text(voc_xml("scratches", 20, 10, [(3, 2, 3, 9)]))
    images = scan_segmentation(root)
    assert images.layout == "voc" and len(images) == 3 and images.defective_count() == 2
    assert [s.group for s in images.samples] == ["", "patches", "scratches"]
    image, mask = read_sample(images, 1)
    assert image.shape == (10, 20, 1) and mask.sum() == 5 * 4 + 3 * 3
    (root / "ANNOTATIONS" / "scratches_2.xml").write_text(voc_xml("scratches", 30, 10, [(3, 2, 3, 9)]))
    with pytest.raises(DataError, match=r"scratches_2\.xml: annotation is for 30x10 but its image is 20x10"):
        read_sample(scan_voc(root), 2)


def test_read_mask_of_a_corrupt_file(tmp_path):
    path = tmp_path / "m.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(Exception, match=r"m\.png: unreadable mask"):
        read_mask(path)


def test_data_synth_command(tmp_path, capsys):
    args = ["--classes", "2", "--train", "4", "--test", "4", "--size", "32", "--json"]
    assert main(["data", "synth", "--out", str(tmp_path / "s"), *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 16 and summary["defective"] == 4


def test_real_kolektorsdd():
    root = SHARED_DATASETS / "kolektorsdd"
    if not root.is_dir():
        pytest.skip(f"real KolektorSDD not found at {root}")
    images = scan_kolektorsdd(root)
    assert len(images) + len(images.dropped_duplicates) == 400
    digests = {hashlib.sha1((root / s.image).read_bytes()).digest() for s in images.samples}
    assert len(digests) == len(images)  # no two kept images are the same bytes
    # SOURCE.md: kos21/Part7 = kos21/Part6, kos26 repeats kos01, kos34 repeats kos27
    dropped = {p.as_posix() for p in images.dropped_duplicates}
    assert "kos21/Part7.jpg" in dropped and {f"kos34/Part{k}.jpg" for k in range(8)} <= dropped
    assert "kos21" in images.groups() and "kos27" in images.groups()
    assert images.defective_count() >= 45


def test_real_neu_boxes():
    root = SHARED_DATASETS / "neu" / "ANNOTATIONS"
    if not root.is_dir():
        pytest.skip(f"real NEU annotations not found at {root}")
    size, boxes = boxes_from_voc(root / "crazing_1.xml")
    assert size == (200, 200) and boxes and mask_from_boxes(size, boxes).any()


def test_grouped_folds_keep_groups_whole_and_balance_defects():
    groups = [f"item{i // 4}" for i in range(40)]  # 10 groups of 4 images
    defective = [i % 4 == 0 or i < 8 for i in range(40)]  # item0 and item1 have 4 defects each
    folds = grouped_folds(groups, defective, k=3, seed=1)
    assert sorted(g for fold in folds for g in fold) == sorted(set(groups))
    per_fold = [sum(d for g, d in zip(groups, defective, strict=True) if g in fold) for fold in folds]
    assert max(per_fold) - min(per_fold) <= 3  # item0 and item1 end up in different folds
    assert folds == grouped_folds(groups, defective, k=3, seed=1)
    with pytest.raises(DataError, match="cannot make 3 folds"):
        grouped_folds(["a", "b"], [True, False], k=3, seed=0)


def test_committed_kolektorsdd_folds_are_reproducible():
    root = SHARED_DATASETS / "kolektorsdd"
    if not root.is_dir():
        pytest.skip(f"real KolektorSDD not found at {root}")
    from benchmarks.make_kolektorsdd_folds import FOLDS_FILE, kolektorsdd_folds

    committed = json.loads(FOLDS_FILE.read_text())
    assert committed == kolektorsdd_folds(root, committed["k"], committed["seed"])
    items = [item for fold in committed["folds"] for item in fold]
    assert len(items) == len(set(items)) == 48  # kos26 and kos34 repeat other items: dropped


def test_a_mask_with_more_than_two_values_is_an_error_naming_the_file(tmp_path):
    from lwcnn.data.masked_images import read_mask

    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 255
    mask[5:7, 5:7] = 128  # a soft edge, or a second class: not read as "defect" without a word
    Image.fromarray(mask).save(tmp_path / "m.png")
    with pytest.raises(DataError, match=r"m\.png: mask has 3 values \(0, 128, 255\)"):
        read_mask(tmp_path / "m.png")
    mask[mask == 128] = 0
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png").sum() == 4
    Image.fromarray((mask > 0).astype(np.uint8)).save(tmp_path / "ones.png")  # 0/1 masks too
    assert read_mask(tmp_path / "ones.png").sum() == 4


def test_an_empty_mask_marks_a_defect_free_image(tmp_path):
    # a labelling tool's export writes a mask for every image, empty ones for good parts (lwcnn
    # data check still says so: an empty mask can also be a defect left undrawn)
    root = tmp_path / "export"
    for name in ("a", "b", "c"):
        write_image(root / "images" / f"{name}.png", size=(12, 10))
    save_mask(root / "masks" / "a.png", defect_mask())
    save_mask(root / "masks" / "b.png", np.zeros((10, 12), np.uint8))
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "masks" / "c.jpg", quality=75)
    images = scan_image_mask_folders(root)
    assert [(s.image.name, s.defective) for s in images.samples] == [
        ("a.png", True),
        ("b.png", False),
        ("c.png", False),
    ]
    assert images.defective_count() == 1
    assert read_sample(images, 1)[1].sum() == 0  # read as defect-free, mask or not
