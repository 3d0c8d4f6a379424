from __future__ import annotations

from pathlib import Path

import pytest

from lwcnn.data import NEU_CLASSES, DataError, check_images, scan_classification, scan_neu
from lwcnn.data.classification import scan_class_folders
from lwcnn.data.layouts import detect_layout
from lwcnn.data.splits import stratified_split
from tests.synthetic import write_image

NEU_CLS_PREFIXES = ("Cr", "In", "Pa", "PS", "RS", "Sc")


def test_neu_cls_and_det_names_map_to_the_same_six_classes(tmp_path):
    for i, prefix in enumerate(NEU_CLS_PREFIXES):
        write_image(tmp_path / "cls" / f"{prefix}_{i + 1}.bmp")
    for i, name in enumerate(NEU_CLASSES):
        write_image(tmp_path / "det" / "IMAGES" / f"{name}_{i + 1}.jpg")
    cls = scan_neu(tmp_path / "cls")
    det = scan_neu(tmp_path / "det")
    assert cls.classes == det.classes == NEU_CLASSES
    by_file = {p.stem: cls.classes[y] for p, y in zip(cls.paths, cls.labels, strict=True)}
    assert by_file == {
        f"{prefix}_{i + 1}": name
        for i, (prefix, name) in enumerate(zip(NEU_CLS_PREFIXES, NEU_CLASSES, strict=True))
    }
    assert [det.classes[y] for y in det.labels] == list(NEU_CLASSES)
    assert det.paths[0].as_posix() == "IMAGES/crazing_1.jpg"


def test_unknown_neu_prefix_is_an_error_naming_the_file(tmp_path):
    for prefix in NEU_CLS_PREFIXES:
        write_image(tmp_path / f"{prefix}_1.bmp")
    write_image(tmp_path / "Xx_7.bmp")
    with pytest.raises(DataError, match=r"Xx_7\.bmp: unknown NEU class prefix 'Xx'"):
        scan_neu(tmp_path)


def test_neu_with_a_class_missing_is_an_error(tmp_path):
    for prefix in NEU_CLS_PREFIXES[:-1]:
        write_image(tmp_path / f"{prefix}_1.bmp")
    with pytest.raises(DataError, match="no images of NEU class"):
        scan_neu(tmp_path)


def test_folder_per_class(tmp_path):
    for name, n in (("scratch", 3), ("good", 2)):
        for i in range(n):
            write_image(tmp_path / name / f"img{i}.png", seed=i)
    write_image(tmp_path / "good" / "sub" / "deep.png")
    (tmp_path / "good" / "notes.txt").write_text("ignored")
    images = scan_classification(tmp_path)
    assert images.layout == "folders"
    assert images.classes == ("good", "scratch")
    assert images.counts() == {"good": 3, "scratch": 3}


def test_empty_class_folder_is_an_error(tmp_path):
    write_image(tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"/b: class folder has no images"):
        scan_classification(tmp_path)


def test_single_class_is_an_error(tmp_path):
    write_image(tmp_path / "a" / "1.png")
    with pytest.raises(DataError, match="only one class folder"):
        scan_classification(tmp_path, layout="folders")


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        scan_classification(tmp_path / "nowhere")


def test_check_images_reports_every_unreadable_file(tmp_path):
    for name in ("a", "b"):
        write_image(tmp_path / name / "ok.png")
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    errors = check_images(scan_classification(tmp_path))
    assert [e.path.name for e in errors] == ["broken.png"]


def test_real_neu(neu_root):
    images = scan_classification(neu_root)
    assert images.layout == "neu"
    assert images.counts() == {name: 300 for name in NEU_CLASSES}


def _split_folders(root: Path, parts: dict[str, int], classes=("def_front", "ok_front")) -> Path:
    """ROOT/<part>/<class>/<image>, ``parts`` giving the images per class in each part."""
    for part, count in parts.items():
        for name in classes:
            for index in range(count):
                write_image(root / part / name / f"{name}_{index}.jpeg", (12, 12), seed=index)
    return root


def test_train_and_test_folders_of_class_folders_are_the_split_not_two_classes(tmp_path):
    root = _split_folders(tmp_path / "casting", {"train": 10, "test": 3})
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == ("cls", "folders") and "test/ and train/" in detected.evidence
    images = scan_class_folders(root)
    assert images.classes == ("def_front", "ok_front")  # not ("test", "train")
    assert images.counts() == {"def_front": 13, "ok_front": 13}
    split = stratified_split(images, {"val": 0.2}, seed=0)
    assert sorted(split.parts["test"]) == sorted(p.as_posix() for p in images.paths if p.parts[0] == "test")
    assert len(split.parts["val"]) == 4 and all(p.startswith("train/") for p in split.parts["val"])
    assert not set(split.parts["val"]) & set(split.parts["train"]) and len(split.parts["train"]) == 16
    # the one command plans that split: the data's own parts
    from lwcnn.cli.train import plan_for

    assert plan_for(str(root), None, str(tmp_path / "run")).plan.config["data"]["split"] == {"val": 0.2}


def test_train_and_val_folders_hold_out_val_as_the_test_part(tmp_path):
    root = _split_folders(tmp_path / "kerasstyle", {"train": 5, "validation": 2})
    split = stratified_split(scan_class_folders(root), {"val": 0.2}, seed=0)
    assert all(p.startswith("validation/") for p in split.parts["test"]) and len(split.parts["test"]) == 4
    assert len(split.parts["val"]) == 2 and all(p.startswith("train/") for p in split.parts["val"])


def test_a_class_that_training_never_sees_is_named(tmp_path):
    root = _split_folders(tmp_path / "d", {"train": 2, "test": 2})
    write_image(root / "test" / "scratch" / "s.png", (12, 12))
    with pytest.raises(DataError, match=r"class 'scratch' has no folder in train/"):
        scan_class_folders(root)


def _elpv_release(root: Path) -> Path:
    """ELPV as released: images/cellNNNN.png and labels.csv, 'path probability type' by spaces."""
    rows = []
    for index in range(12):
        write_image(root / "images" / f"cell{index:04d}.png", (12, 12), seed=index)
        probability, kind = (0.0, 0.3333333333333333, 1.0)[index % 3], "mono" if index < 6 else "poly"
        rows.append(f"images/cell{index:04d}.png  {probability}  {kind}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_a_label_table_names_the_classes_of_the_images(tmp_path):
    root = _elpv_release(tmp_path / "elpv")
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == (
        "cls",
        "csv",
    ) and "labels.csv names 12 images" in detected.evidence
    images = scan_classification(root, "csv")
    assert images.classes == ("0.0", "0.3333333333333333", "1.0")  # numeric order
    assert images.counts() == {"0.0": 4, "0.3333333333333333": 4, "1.0": 4}
    assert (
        images.paths[1].as_posix() == "images/cell0001.png"
        and images.classes[images.labels[1]] == "0.3333333333333333"
    )
    by_type = scan_classification(root, "csv:2")  # another column, by number (no header)
    assert by_type.classes == ("mono", "poly") and by_type.layout == "csv:2"
    from lwcnn.cli.train import plan_for

    planned = plan_for(str(root), None, str(tmp_path / "run"), "csv:2")
    assert planned.stats.class_counts == {"mono": 6, "poly": 6}
    assert planned.plan.config["data"]["layout"] == "csv:2"


def test_a_label_table_with_a_header_and_bare_image_ids(tmp_path):
    root = tmp_path / "kaggle"
    lines = ["image_id,label,inspector"]
    for index in range(8):
        write_image(root / "train" / f"part{index}.jpg", (12, 12), seed=index)
        lines.append(f"part{index},{'ng' if index % 2 else 'ok'},{index}")
    write_image(root / "test" / "unlabelled.jpg", (12, 12))  # train/ and test/ of images: not classes
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    assert detect_layout(root).layout == "csv"
    images = scan_classification(root)
    assert images.layout == "csv" and images.classes == ("ng", "ok") and len(images) == 8
    assert images.paths[0].as_posix() == "train/part0.jpg"
    assert scan_classification(root, "csv:label").classes == ("ng", "ok")
    with pytest.raises(
        DataError, match=r"no class column 'defect' \(the columns: image_id, label, inspector\)"
    ):
        scan_classification(root, "csv:defect")


def test_an_image_with_two_classes_in_the_table_is_named(tmp_path):
    root = tmp_path / "multi"
    for index in range(4):
        write_image(root / f"{index}.png", (12, 12), seed=index)
    (root / "labels.csv").write_text("file,kind\n0.png,a\n1.png,b\n2.png,a\n3.png,b\n0.png,b\n")
    with pytest.raises(DataError, match=r"labels\.csv:6: 0\.png is labelled both 'a' and 'b'"):
        scan_classification(root, "csv")
