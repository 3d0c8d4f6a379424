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
