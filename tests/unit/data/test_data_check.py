"""``lwcnn data check`` finds each planted problem; ``lwcnn data convert`` writes what lwcnn reads
back as the same masks; training runs the checks first."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lwcnn.cli import main
from lwcnn.data.checks import check_dataset
from lwcnn.data.masked_images import read_labels, scan_segmentation
from lwcnn.errors import DataError
from tests.synthetic import make_class_folders, write_image
from tests.unit.data.test_annotation_formats import HEIGHT, TYPES, WIDTH, expected, write_coco, write_yolo


def kinds(report) -> dict[str, str]:
    return {f.kind: f.level for f in report.findings}


def planted_masks_folder(root):
    """images/ + masks/ with one of each problem a masks folder can have."""
    write_image(root / "images" / "good.png", (WIDTH, HEIGHT))
    write_image(root / "images" / "defect.png", (WIDTH, HEIGHT), seed=1)
    (root / "masks").mkdir(parents=True)
    Image.fromarray((expected() > 0).astype(np.uint8) * 255).save(root / "masks" / "defect.png")
    shutil.copy(root / "images" / "good.png", root / "images" / "copy_of_good.png")  # byte-identical
    (root / "images" / "broken.png").write_bytes(b"not a png at all")  # unreadable
    write_image(root / "images" / "small.png", (WIDTH - 4, HEIGHT), seed=2)
    Image.fromarray(np.full((HEIGHT, WIDTH), 255, np.uint8)).save(root / "masks" / "small.png")  # size
    write_image(root / "images" / "empty.png", (WIDTH, HEIGHT), seed=3)
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(root / "masks" / "empty.png")  # no defect
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(root / "masks" / "orphan.png")  # no image
    return root


def test_data_check_finds_every_planted_problem(tmp_path):
    report = check_dataset(planted_masks_folder(tmp_path / "d"))
    assert kinds(report) == {
        "unusable_label": "error",  # orphan.png: a mask without its image
        "unreadable": "error",
        "size_mismatch": "error",
        "duplicate": "warning",
        "empty_mask": "warning",
        "type_with_too_few_images": "warning",  # one defective image of the one type
        "too_few_defective_images": "warning",
    }
    where = {f.kind: f.path or f.message for f in report.findings}
    assert where["unusable_label"] == "masks/orphan.png" and where["unreadable"] == "images/broken.png"
    assert "small.png: mask is 40x30 but its image is 36x30" in where["size_mismatch"]
    assert where["empty_mask"] == "masks/empty.png"
    assert report.images == 6 and report.defective == 1 and report.counts == {"defect": 1}
    assert report.sizes["max"] == [HEIGHT, WIDTH]


def test_duplicates_across_the_split_and_a_missing_coco_image(tmp_path):
    root = write_yolo(tmp_path / "yolo")
    shutil.copy(root / "images" / "train" / "a.png", root / "images" / "test" / "a_again.png")
    report = check_dataset(root)
    assert kinds(report) == {
        "duplicate_across_the_split": "warning",
        "type_with_too_few_images": "warning",
        "too_few_defective_images": "warning",
    }
    assert report.parts == {"train": 1, "val": 1, "test": 2}
    assert report.counts == {"scratch": 1, "stain": 1} and report.pixels["scratch"] == 72 / (WIDTH * HEIGHT)
    coco = check_dataset(write_coco(tmp_path / "coco"))
    assert [(f.kind, f.path, f.message) for f in coco.errors] == [
        ("unusable_label", "annotations/instances_default.json", "names image gone.png, which is not there")
    ]


def test_the_same_image_under_two_classes_is_an_error(tmp_path):
    root = make_class_folders(tmp_path / "cls", per_class=4)
    first, second = sorted(p.name for p in root.iterdir())[:2]
    shutil.copy(sorted((root / first).iterdir())[0], root / second / "from_the_first_class.png")
    report = check_dataset(root)
    assert kinds(report) == {"same_image_in_two_classes": "error"}
    assert report.counts[first] == 4 and report.counts[second] == 5


def test_cli_check_exit_status_and_json(tmp_path, capsys):
    root = planted_masks_folder(tmp_path / "d")
    assert main(["data", "check", str(root)]) == 1
    screen = capsys.readouterr().out
    assert "error: unreadable (1)" in screen and "images/broken.png" in screen
    assert "3 error(s), 4 warning(s): fix the errors before training" in screen
    assert main(["data", "check", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 3 and report["layout"] == "masks"
    for path in ("images/broken.png", "images/small.png", "masks/small.png", "masks/orphan.png"):
        (root / path).unlink()
    assert main(["data", "check", str(root), "--json"]) == 0


def test_convert_writes_what_reads_back_as_the_same_masks(tmp_path, capsys):
    source = write_coco(tmp_path / "coco")
    out = tmp_path / "converted"
    assert main(["data", "convert", str(source), "--out", str(out), "--preview", "8", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 3 and summary["masks"] == 2 and summary["types"] == list(TYPES)
    assert summary["unusable_labels"] and "gone.png" in summary["unusable_labels"][0]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "b.png", "c.png"]
    assert (out / "masks" / "types.txt").read_text() == "scratch\nstain\n"
    with Image.open(out / "masks" / "a.png") as mask:
        assert mask.mode == "P"  # coloured in any viewer, the indices are the types
    again = scan_segmentation(out)
    assert again.layout == "masks" and again.types == TYPES and again.index_masks
    for index, sample in enumerate(again.samples):
        labels = read_labels(again, index)[1]
        np.testing.assert_array_equal(labels, expected() if sample.image.name != "b.png" else 0 * expected())
    sheet = summary["sheets"][0]
    with Image.open(sheet) as picture:
        assert picture.format == "JPEG" and picture.width == 4 * 256
    with pytest.raises(SystemExit):  # --out is required
        main(["data", "convert", str(source)])
    assert main(["data", "convert", str(source), "--out", str(out)]) == 2  # not a new folder: refused


def test_training_runs_the_checks_first(tmp_path):
    from lwcnn.config import load_config
    from lwcnn.training.segmentation import prepare_segmentation_data

    root = write_coco(tmp_path / "coco")
    config = load_config(None, [f"data.root={root}", "task=seg", f"out={tmp_path / 'run'}"])
    with pytest.raises(DataError, match=r"names image gone.png, which is not there"):
        prepare_segmentation_data(config, tmp_path / "run", show_progress=False)


def test_training_stops_on_a_check_error_and_logs_warnings(tmp_path, caplog):
    from lwcnn.config import load_config
    from lwcnn.training.classification import prepare_data

    root = make_class_folders(tmp_path / "cls", per_class=6)
    first, second = sorted(p.name for p in root.iterdir())[:2]
    shutil.copy(sorted((root / first).iterdir())[0], root / first / "again.png")
    config = load_config(None, [f"data.root={root}", "data.split={train: 0.5, val: 0.25, test: 0.25}"])
    with caplog.at_level("WARNING", logger="lwcnn.data"):
        prepare_data(config, tmp_path / "run", show_progress=False)
    assert "data warning: duplicate" in caplog.text and "(1), e.g." in caplog.text
    shutil.copy(sorted((root / first).iterdir())[1], root / second / "contradiction.png")
    with pytest.raises(DataError, match=r"under .*; lwcnn data check .* lists them"):
        prepare_data(config, tmp_path / "run2", show_progress=False)


def test_convert_to_coco_reads_back_as_the_same_masks(tmp_path, capsys):
    source = write_yolo(tmp_path / "yolo")
    out = tmp_path / "as-coco"
    assert main(["data", "convert", str(source), "--out", str(out), "--to", "coco", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 3 and summary["masks"] == 2  # a.png holds both types: one RLE each
    notes = json.loads((out / "annotations" / "instances.json").read_text())
    assert [c["name"] for c in notes["categories"]] == list(TYPES)
    assert {a["bbox"][0] for a in notes["annotations"]} == {4.0, 20.0}  # the scratch and the stain
    again = scan_segmentation(out)
    assert again.layout == "coco" and again.types == TYPES
    index = next(i for i, s in enumerate(again.samples) if s.image.name == "a.png")
    np.testing.assert_array_equal(read_labels(again, index)[1], expected())


def test_check_counts_images_without_a_label(tmp_path, capsys):
    root = planted_masks_folder(tmp_path / "d")
    (root / "images" / "broken.png").unlink()
    report = check_dataset(root)
    # good.png and copy_of_good.png have no mask file: read as defect-free
    assert report.unlabelled == 2 and "2 without a label" in report.lines()[0]


def test_training_a_segmenter_without_a_defective_image_is_refused_in_one_line(tmp_path):
    from lwcnn.data.checks import check_before_training
    from lwcnn.data.splits import segmentation_split

    root = tmp_path / "elpv-raw"  # images/ and a labels.csv: no masks, so nothing to learn from
    for index in range(6):
        write_image(root / "images" / f"cell{index:04d}.png", (16, 16), seed=index)
    (root / "labels.csv").write_text("images/cell0000.png 1.0 mono\n")
    images = scan_segmentation(root)
    split = segmentation_split(images, {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    with pytest.raises(DataError, match=r"no defective image in the training part.*labels\.csv"):
        check_before_training(images, split, skip_bad=False)
