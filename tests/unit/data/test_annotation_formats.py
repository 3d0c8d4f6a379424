"""The annotation formats users have (COCO, LabelMe, YOLO, Pascal VOC, class-index masks): a
miniature of each, written here, must read to the same class-index mask, computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.layouts import detect_layout
from lwcnn.data.masked_images import read_labels, read_sample, scan_segmentation
from lwcnn.data.shapes import Shape, labels_from_shapes, shape_mask
from lwcnn.errors import DataError
from tests.synthetic import write_image

WIDTH, HEIGHT = 40, 30
TYPES = ("scratch", "stain")
# scratch: the polygon (4,3)-(16,3)-(16,9)-(4,9) holds the centres of columns 4..15, rows 3..8
SCRATCH = [(4, 3), (16, 3), (16, 9), (4, 9)]
# stain: the box x 20..30, y 10..22 holds the centres of columns 20..29, rows 10..21
STAIN = (20.0, 10.0, 30.0, 22.0)


def expected() -> np.ndarray:
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    labels[3:9, 4:16] = 1
    labels[10:22, 20:30] = 2
    return labels


def stain_mask() -> np.ndarray:
    return expected() == 2


def coco_rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as coco_mask

    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def write_coco(root: Path, missing_image: bool = True) -> Path:
    write_image(root / "images" / "a.png", (WIDTH, HEIGHT))
    write_image(root / "images" / "b.png", (WIDTH, HEIGHT), seed=1)
    write_image(root / "images" / "c.png", (WIDTH, HEIGHT), seed=2)
    images = [
        {"id": 1, "file_name": "a.png", "height": HEIGHT, "width": WIDTH},
        {"id": 2, "file_name": "b.png", "height": HEIGHT, "width": WIDTH},  # defect-free
        {"id": 3, "file_name": "images/c.png", "height": HEIGHT, "width": WIDTH},
    ]
    if missing_image:
        images.append({"id": 4, "file_name": "gone.png", "height": HEIGHT, "width": WIDTH})
    x0, y0, x1, y1 = STAIN
    annotations = [  # categories out of id order: types follow the ids (scratch 3, stain 7)
        {"id": 10, "image_id": 1, "category_id": 3, "segmentation": [[v for p in SCRATCH for v in p]]},
        {"id": 11, "image_id": 1, "category_id": 7, "segmentation": coco_rle(stain_mask())},
        {"id": 12, "image_id": 3, "category_id": 3, "segmentation": [[v for p in SCRATCH for v in p]]},
        {"id": 13, "image_id": 3, "category_id": 7, "segmentation": [], "bbox": [x0, y0, x1 - x0, y1 - y0]},
    ]
    if missing_image:
        annotations.append({"id": 14, "image_id": 4, "category_id": 7, "bbox": [1, 1, 3, 3]})
    categories = [{"id": 7, "name": "stain"}, {"id": 3, "name": "scratch"}]
    path = root / "annotations" / "instances_default.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root


def write_labelme(root: Path) -> Path:
    write_image(root / "a.png", (WIDTH, HEIGHT))
    write_image(root / "b.png", (WIDTH, HEIGHT), seed=1)  # no JSON: defect-free
    shapes = [
        {"label": "scratch", "points": [list(p) for p in SCRATCH], "shape_type": "polygon"},
        {"label": "stain", "points": [list(STAIN[:2]), list(STAIN[2:])], "shape_type": "rectangle"},
    ]
    note = {
        "shapes": shapes,
        "imagePath": "a.png",
        "imageHeight": HEIGHT,
        "imageWidth": WIDTH,
        "imageData": None,
    }
    (root / "a.json").write_text(json.dumps(note))
    (root / "labels.txt").write_text("__ignore__\n_background_\nscratch\nstain\n")
    return root


def write_yolo(root: Path) -> Path:
    for part, name in (("train", "a"), ("val", "v"), ("test", "t")):
        write_image(root / "images" / part / f"{name}.png", (WIDTH, HEIGHT), seed=ord(name))
    polygon = " ".join(f"{x / WIDTH} {y / HEIGHT}" for x, y in SCRATCH)
    x0, y0, x1, y1 = STAIN
    box = f"{(x0 + x1) / 2 / WIDTH} {(y0 + y1) / 2 / HEIGHT} {(x1 - x0) / WIDTH} {(y1 - y0) / HEIGHT}"
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text(f"0 {polygon}\n1 {box}\n")
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "val" / "v.txt").write_text("")  # empty: defect-free
    (root / "data.yaml").write_text(
        "path: /nowhere/on/this/machine\ntrain: images/train\nval: images/val\ntest: images/test\n"
        "names:\n  0: scratch\n  1: stain\n"
    )
    return root


def write_voc(root: Path) -> Path:
    write_image(root / "IMAGES" / "a.jpg", (WIDTH, HEIGHT), mode="RGB")
    boxes = [("scratch", 5, 4, 16, 9), ("stain", 21, 11, 30, 22)]  # VOC: 1-based, inclusive
    objects = "".join(
        f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax>"
        "</bndbox></object>"
        for n, a, b, c, d in boxes
    )
    (root / "ANNOTATIONS").mkdir(parents=True)
    (root / "ANNOTATIONS" / "a.xml").write_text(
        f"<annotation><size><width>{WIDTH}</width><height>{HEIGHT}</height></size>{objects}</annotation>"
    )
    return root


def write_index_masks(root: Path) -> Path:
    write_image(root / "images" / "a.png", (WIDTH, HEIGHT))
    write_image(root / "images" / "b.png", (WIDTH, HEIGHT), seed=1)
    (root / "masks").mkdir(parents=True)
    Image.fromarray(expected(), mode="L").save(root / "masks" / "a.png")
    (root / "masks" / "types.txt").write_text("scratch\nstain\n")
    return root


@pytest.mark.parametrize(
    ("writer", "layout", "defective", "name"),
    [
        (write_coco, "coco", "a.png", "a.png"),
        (write_labelme, "labelme", "a.png", "a.png"),
        (write_yolo, "yolo", "a.png", "a.png"),
        (write_voc, "voc", "a.jpg", "a.jpg"),
        (write_index_masks, "masks", "a.png", "a.png"),
    ],
)
def test_each_format_reads_to_the_same_class_index_mask(tmp_path, writer, layout, defective, name):
    root = writer(tmp_path / layout)
    assert detect_layout(root).layout == layout
    images = scan_segmentation(root, strict=False)
    assert images.layout == layout and images.types == TYPES
    index = next(i for i, s in enumerate(images.samples) if s.image.name == name)
    image, labels = read_labels(images, index)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(labels, expected())
    np.testing.assert_array_equal(read_sample(images, index)[1], expected() > 0)  # the one-type view
    for i, sample in enumerate(images.samples):  # every other image here is defect-free
        if i != index and sample.image.name not in ("c.png",):
            assert not sample.defective and not read_labels(images, i)[1].any()


def test_coco_box_only_annotation_and_a_missing_image(tmp_path):
    root = write_coco(tmp_path / "coco")
    with pytest.raises(DataError, match=r"instances_default.json: names image gone.png, which is not there"):
        scan_segmentation(root)  # strict (training): one line naming the file
    images = scan_segmentation(root, strict=False)
    assert [s.image.as_posix() for s in images.samples] == ["images/a.png", "images/b.png", "images/c.png"]
    assert [p.problem for p in images.label_problems] == ["names image gone.png, which is not there"]
    _, labels = read_labels(images, 2)  # polygon + a bbox without segmentation: the box as a coarse mask
    np.testing.assert_array_equal(labels, expected())


def test_coco_size_that_differs_from_the_image_is_an_error_naming_the_file(tmp_path):
    root = write_coco(tmp_path / "coco", missing_image=False)
    path = root / "annotations" / "instances_default.json"
    data = json.loads(path.read_text())
    data["images"][0]["width"] = WIDTH + 2
    path.write_text(json.dumps(data))
    images = scan_segmentation(root)
    with pytest.raises(DataError, match=r"instances_default.json: annotation for a.png says 42x30"):
        read_labels(images, 0)


def test_roboflow_coco_folders_are_the_datasets_own_parts(tmp_path):
    root = tmp_path / "roboflow"
    for part in ("train", "valid", "test"):
        write_image(root / part / f"{part}.jpg", (WIDTH, HEIGHT), mode="RGB")
        images = [{"id": 0, "file_name": f"{part}.jpg", "height": HEIGHT, "width": WIDTH}]
        notes = [{"id": 1, "image_id": 0, "category_id": 1, "bbox": [2, 2, 5, 5]}]
        categories = [{"id": 0, "name": "defects"}, {"id": 1, "name": "dent"}]
        (root / part / "_annotations.coco.json").write_text(
            json.dumps({"images": images, "annotations": notes, "categories": categories})
        )
    assert detect_layout(root).layout == "coco"  # not three class folders
    images = scan_segmentation(root)
    assert {s.image.name: s.part for s in images.samples} == {
        "train.jpg": "train",
        "valid.jpg": "val",
        "test.jpg": "test",
    }
    assert images.types == ("defects", "dent")


def test_yolo_parts_classes_and_bad_lines(tmp_path):
    root = write_yolo(tmp_path / "yolo")
    images = scan_segmentation(root)
    assert {s.image.name: s.part for s in images.samples} == {
        "a.png": "train",
        "v.png": "val",
        "t.png": "test",
    }
    (root / "labels" / "train" / "a.txt").write_text("5 0.5 0.5 0.1 0.1\n0 0.5 0.5 3.0 0.1\n1 0.5\n")
    (root / "labels" / "test").mkdir()
    (root / "labels" / "test" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    images = scan_segmentation(root, strict=False)
    problems = [p.problem for p in images.label_problems]
    assert any("class 5, not 0 to 1" in p for p in problems)
    assert any("outside 0..1" in p for p in problems)
    assert any("has 1 coordinates" in p for p in problems)
    assert any(p == "label file without an image" for p in problems)
    with pytest.raises(DataError, match=r"a.txt: a.png: line 1 has class 5"):
        scan_segmentation(root)


def test_yolo_without_a_yaml_reads_classes_txt(tmp_path):
    root = tmp_path / "plain"
    write_image(root / "images" / "a.png", (WIDTH, HEIGHT))
    (root / "labels").mkdir()
    (root / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "labels" / "classes.txt").write_text("scratch\nstain\n")
    images = scan_segmentation(root)
    assert images.layout == "yolo" and images.types == TYPES
    labels = read_labels(images, 0)[1]
    assert set(np.unique(labels)) == {0, 2} and (labels == 2).sum() == 20 * 15


def test_labelme_circle_line_and_an_unknown_label(tmp_path):
    root = tmp_path / "labelme"
    write_image(root / "a.png", (WIDTH, HEIGHT))
    shapes = [
        {"label": "stain", "points": [[10, 10], [13, 14]], "shape_type": "circle"},  # radius 5
        {"label": "scratch", "points": [[20, 5.5], [35, 5.5]], "shape_type": "line"},
        {"label": "dust", "points": [[1, 1], [2, 2], [1, 2]], "shape_type": "polygon"},
    ]
    (root / "a.json").write_text(json.dumps({"shapes": shapes, "imagePath": "a.png"}))
    (root / "labels.txt").write_text("scratch\nstain\n")
    images = scan_segmentation(root, strict=False)
    assert [p.problem for p in images.label_problems] == [
        "a.png: shape 3 has label 'dust', not one of the types ['scratch', 'stain']"
    ]
    labels = read_labels(images, 0)[1]
    rows, cols = np.nonzero(labels == 2)
    centre_distance = (cols + 0.5 - 10) ** 2 + (rows + 0.5 - 10) ** 2
    assert centre_distance.max() <= 25 and len(rows) == int((centre_distance <= 25).sum()) > 70
    assert set(np.nonzero(labels == 1)[0]) == {5} and (labels == 1).sum() >= 15


def test_polygon_fill_at_pixel_centres_and_slivers_kept():
    triangle = Shape(1, "polygon", (0, 0, 8, 0, 0, 8))
    mask = shape_mask((10, 10), triangle)
    rows, cols = np.nonzero(mask)
    assert ((cols + 0.5) + (rows + 0.5) < 8).all() and mask.sum() == 28  # centres under x + y = 8
    sliver = Shape(2, "polygon", (3.1, 2.2, 3.2, 2.2, 3.2, 7.9, 3.1, 7.9))  # thinner than a pixel
    assert shape_mask((10, 10), sliver).sum() >= 2
    later_wins = labels_from_shapes(
        (10, 10), [Shape(1, "box", (0, 0, 10, 10)), Shape(2, "box", (2, 2, 4, 4))]
    )
    assert (later_wins == 2).sum() == 4 and (later_wins == 1).sum() == 96


def test_index_masks_refuse_a_value_that_is_no_type(tmp_path):
    root = write_index_masks(tmp_path / "masks")
    bad = expected()
    bad[0, 0] = 3
    Image.fromarray(bad, mode="L").save(root / "masks" / "a.png")
    images = scan_segmentation(root)
    with pytest.raises(DataError, match=r"a.png: mask value 3 is not a type \(the types file names 2"):
        read_labels(images, 0)


def test_deeppcb_and_voc_name_their_types(tmp_path):
    root = write_voc(tmp_path / "voc")
    assert scan_segmentation(root).types == TYPES
    from lwcnn.data.masked_images import DEEPPCB_TYPES, boxes_from_deeppcb

    note = tmp_path / "b.txt"
    note.write_text("1 2 5 6 6\n")
    assert boxes_from_deeppcb(note) == [(DEEPPCB_TYPES[5], 2, 3, 5, 6)]
    note.write_text("1 2 5 6 9\n")
    with pytest.raises(DataError, match=r"b.txt: not a DeepPCB box file \(line 1 has type 9"):
        boxes_from_deeppcb(note)


def test_roboflow_yolo_yaml_with_parent_paths(tmp_path):
    root = tmp_path / "roboflow"
    for part in ("train", "valid", "test"):
        write_image(root / part / "images" / f"{part}.jpg", (WIDTH, HEIGHT), mode="RGB")
        (root / part / "labels").mkdir(parents=True)
        (root / part / "labels" / f"{part}.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 1\nnames: ['dent']\n"
    )
    images = scan_segmentation(root)
    assert images.layout == "yolo" and images.types == ("dent",)
    assert sorted((s.image.as_posix(), s.part) for s in images.samples) == [
        ("test/images/test.jpg", "test"),
        ("train/images/train.jpg", "train"),
        ("valid/images/valid.jpg", "val"),
    ]
    assert all(read_labels(images, i)[1].sum() == 20 * 15 for i in range(3))


def test_one_folder_of_masks_per_type(tmp_path):
    root = tmp_path / "per-type"
    write_image(root / "images" / "a.png", (WIDTH, HEIGHT))
    write_image(root / "images" / "b.png", (WIDTH, HEIGHT), seed=1)
    for k, name in enumerate(TYPES, 1):
        (root / "masks" / name).mkdir(parents=True)
        Image.fromarray(((expected() == k) * 255).astype(np.uint8)).save(root / "masks" / name / "a.png")
    images = scan_segmentation(root)
    assert images.layout == "masks" and images.types == TYPES
    assert [s.defective for s in images.samples] == [True, False]
    np.testing.assert_array_equal(read_labels(images, 0)[1], expected())
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(
        root / "masks" / "a.png"
    )  # outside a type folder
    with pytest.raises(DataError, match=r"masks/a.png: mask outside the type folders"):
        scan_segmentation(root)


def test_labelme_polygons_on_a_sideways_photo_land_where_they_were_drawn(tmp_path):
    # A phone photo stored sideways with EXIF orientation 6: LabelMe (and CVAT, a browser, OpenCV)
    # show it upright, WIDTH x HEIGHT, and its polygons are drawn on that view.
    root = write_labelme(tmp_path / "labelme")
    upright_pixels = np.asarray(Image.open(root / "a.png"))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(upright_pixels, k=1)).save(root / "a.png", exif=exif)  # stored sideways
    images = scan_segmentation(root, strict=False)
    index = next(i for i, s in enumerate(images.samples) if s.image.name == "a.png")
    image, labels = read_labels(images, index)
    np.testing.assert_array_equal(image[:, :, 0], upright_pixels)
    np.testing.assert_array_equal(labels, expected())


def test_severstal_run_length_masks_with_their_types(tmp_path):
    root = tmp_path / "severstal"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(root / "train_images" / name, (8, 4))  # width 8, height 4
    write_image(root / "test_images" / "t.jpg", (8, 4))  # never labelled: not a sample
    # pixels count down each column (1-4 is column 0), then across: 6 2 is column 1, rows 1-2
    (root / "train.csv").write_text("ImageId,ClassId,EncodedPixels\na.jpg,1,6 2\na.jpg,3,29 4\nb.jpg,3,1 1\n")
    detected = detect_layout(root)
    assert (detected.task, detected.layout) == (
        "seg",
        "rle",
    ) and "types in column ClassId" in detected.evidence
    images = scan_segmentation(root)
    assert images.types == ("1", "3")
    assert [(s.image.as_posix(), s.defective) for s in images.samples] == [
        ("train_images/a.jpg", True), ("train_images/b.jpg", True), ("train_images/c.jpg", False)
    ]  # fmt: skip
    _, labels = read_labels(images, 0)
    wanted = np.zeros((4, 8), np.uint8)
    wanted[1:3, 1] = 1
    wanted[:, 7] = 2  # pixels 29-32: the last column
    np.testing.assert_array_equal(labels, wanted)
    assert read_labels(images.merged(), 1)[1].sum() == 1


def test_a_run_past_the_image_is_named(tmp_path):
    root = tmp_path / "bad"
    write_image(root / "images" / "a.png", (4, 4))
    write_image(root / "images" / "b.png", (4, 4))
    (root / "labels.csv").write_text("image,mask\na.png,15 3\nb.png,1 1\n")
    images = scan_segmentation(root, "rle")
    with pytest.raises(DataError, match=r"run 15 3 lies outside the image's 16 pixels \(4x4\)"):
        read_labels(images, 0)
