from __future__ import annotations

import pytest

from lwcnn.data import NEU_STANDARD_SPLIT, DataError, Split, scan_classification, stratified_split
from tests.synthetic import write_image


def make_folders(root, counts):
    for name, n in counts.items():
        for i in range(n):
            write_image(root / name / f"{i:03d}.png", size=(4, 4), seed=i)
    return scan_classification(root)


def test_counts_per_class_and_disjoint_parts(tmp_path):
    images = make_folders(tmp_path, {"a": 10, "b": 12})
    split = stratified_split(images, {"train": 5, "val": 2, "test": 3}, seed=1)
    for part, n in (("train", 5), ("val", 2), ("test", 3)):
        assert images.subset(split.indices(images, part)).counts() == {"a": n, "b": n}
    all_paths = [p for paths in split.parts.values() for p in paths]
    assert len(all_paths) == len(set(all_paths)) == 20


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    images = make_folders(tmp_path, {"a": 30, "b": 30})
    first = stratified_split(images, {"train": 15, "test": 15}, seed=7)
    again = stratified_split(
        images.subset(list(reversed(range(len(images))))), {"train": 15, "test": 15}, seed=7
    )
    other = stratified_split(images, {"train": 15, "test": 15}, seed=8)
    assert first.parts == again.parts
    assert first.parts != other.parts


def test_adding_a_class_leaves_the_other_classes_parts_alone(tmp_path):
    before = stratified_split(make_folders(tmp_path, {"a": 20, "c": 20}), {"train": 0.5, "test": 0.5}, seed=3)
    after = stratified_split(make_folders(tmp_path, {"b": 20}), {"train": 0.5, "test": 0.5}, seed=3)
    assert set(before.parts["train"]) <= set(after.parts["train"])


def test_fractions_give_the_remainder_to_the_last_part(tmp_path):
    images = make_folders(tmp_path, {"a": 11, "b": 12})
    split = stratified_split(images, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=0)
    counts = {part: images.subset(split.indices(images, part)).counts() for part in split.parts}
    assert counts["train"] == {"a": 7, "b": 8}  # floor(7.7), floor(8.4)
    assert counts["val"] == {"a": 1, "b": 1}
    assert counts["test"] == {"a": 3, "b": 3}  # the remainder, not floor(2.2) or floor(2.4)


def test_too_few_images_for_the_split_is_an_error(tmp_path):
    images = make_folders(tmp_path, {"a": 300, "b": 120})
    with pytest.raises(
        DataError, match=r"class 'b' has 120 images; the split needs 300 \(train 150 \+ test 150\)"
    ):
        stratified_split(images, NEU_STANDARD_SPLIT, seed=0)


def test_a_part_that_would_be_empty_is_an_error(tmp_path):
    images = make_folders(tmp_path, {"a": 20, "b": 3})
    with pytest.raises(DataError, match="class 'b' has too few images"):
        stratified_split(images, {"train": 0.9, "val": 0.05, "test": 0.05}, seed=0)


def test_save_load_round_trip_and_missing_files(tmp_path):
    images = make_folders(tmp_path / "data", {"a": 6, "b": 6})
    split = stratified_split(images, {"train": 3, "test": 3}, seed=0)
    split.save(tmp_path / "run" / "split.json")
    loaded = Split.load(tmp_path / "run" / "split.json")
    assert loaded == split
    (tmp_path / "data" / loaded.parts["test"][0]).unlink()
    with pytest.raises(DataError, match="in the split's 'test' part but not in the data"):
        loaded.indices(scan_classification(tmp_path / "data"), "test")


def test_real_neu_standard_split(neu_root):
    images = scan_classification(neu_root)
    split = stratified_split(images, NEU_STANDARD_SPLIT, seed=0)
    test = images.subset(split.indices(images, "test"))
    assert set(test.counts().values()) == {150}
    assert not set(split.parts["train"]) & set(split.parts["test"])


def test_a_split_size_that_is_not_a_number_is_a_clear_error(tmp_path):
    images = make_folders(tmp_path, {"a": 4, "b": 4})
    # YAML "{train:2, val:1}" (no space after the colon) is the key "train:2" with no value
    with pytest.raises(ValueError, match=r"split size train:2=None is not a number"):
        stratified_split(images, {"train:2": None, "val": 1}, seed=0)
