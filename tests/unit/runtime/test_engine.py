"""The Inspector: the same numbers as the trained model, the training's preprocessing, tiles,
decisions, and a batch that survives bad files."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from lwcnn.data.classification import scan_classification
from lwcnn.data.datasets import ClassificationDataset
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.models import upsample_logits
from lwcnn.runtime import Inspection, InspectionFailure, Inspector
from lwcnn.runtime.engine import _tile_starts
from lwcnn.weights import BUNDLED_DIR
from tests.synthetic import SHARED_DATASETS

from ...synthetic import make_class_folders


def steel_like(seed: int = 0, size: tuple[int, int] = (200, 200)) -> np.ndarray:
    return np.random.default_rng(seed).integers(60, 200, (*size, 1), dtype=np.uint8)


def test_bundled_onnx_is_the_bundled_weights():
    """neu.onnx (runtime) and neu.safetensors (training) are the same model: not a stale export."""
    onnx_run = Inspector("neu", threads=1)
    torch_run = Inspector("neu", backend="torch", threads=1)
    assert onnx_run.backend.name == "onnxruntime" and torch_run.backend.name == "torch"
    assert (BUNDLED_DIR / "neu.onnx").is_file()
    for seed in range(3):
        a, b = onnx_run.inspect(steel_like(seed)), torch_run.inspect(steel_like(seed))
        assert a.verdict == b.verdict
        assert np.allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-4)
        assert np.allclose(a.class_map, b.class_map, atol=1e-4)


def test_inspector_uses_the_training_preprocessing(tmp_path):
    """What the engine feeds the model is exactly what the training's dataset gives for that file."""
    root = make_class_folders(tmp_path / "data", per_class=2, size=40, suffix=".jpg")
    images = scan_classification(root, "folders")
    preprocessing = Preprocessing.create(1, (32, 32), [0.5], [0.25])
    dataset = ClassificationDataset(images, preprocessing)
    inspector = Inspector("neu", backend="torch")
    inspector.preprocessing = preprocessing
    seen = []
    original = inspector.backend.run
    inspector.backend.run = lambda batch: seen.append(batch) or original(batch)
    for index in range(len(dataset)):
        inspector.inspect(images.root / images.paths[index])
        expected, _ = dataset[index]
        assert np.array_equal(seen[-1][0], expected.numpy())


def test_classifier_matches_pytorch(classifier_onnx):
    path, model = classifier_onnx
    inspector = Inspector(path, threads=1)
    image = steel_like(1, (61, 75))
    result = inspector.inspect(image)
    x = torch.from_numpy(inspector.preprocessing(image))[None]
    with torch.no_grad():
        probabilities = torch.softmax(model(x), 1)[0].numpy()
    assert np.allclose(list(result.probabilities.values()), probabilities, atol=1e-5)
    assert result.verdict == ["good", "scratch", "dent"][int(probabilities.argmax())]
    assert result.defective == (result.verdict != "good")  # "good" is taken as the OK class
    assert result.heatmap().shape == (61, 75) and 0 <= result.heatmap().min() <= result.heatmap().max() <= 1


def reflected_to_64(x: np.ndarray) -> torch.Tensor:
    """(1, C, h, w) with h, w <= 64 reflected at the bottom and right to 64 x 64."""
    h, w = x.shape[-2:]
    return torch.from_numpy(np.pad(x, ((0, 0), (0, 0), (0, 64 - h), (0, 64 - w)), mode="reflect"))


def test_segmenter_whole_image_matches_pytorch(segmenter_onnx):
    """One pass, no resizing: the image reflected at its bottom and right to a multiple of the
    network's stride (32), as training crops are, and the probability cut back to the image."""
    path, model = segmenter_onnx
    inspector = Inspector(path, threads=1)
    image = steel_like(2, (50, 63))  # smaller than the 64x64 working size
    x = reflected_to_64(inspector.preprocessing.normalize(image)[None])
    with torch.no_grad():
        expected = 1 - torch.softmax(upsample_logits(model(x), (64, 64)), 1)[0, 0].numpy()[:50, :63]
    assert np.allclose(inspector.defect_probability(image), expected, atol=1e-5)


def test_the_bottom_and_right_edges_see_what_training_crops_show(segmenter_onnx):
    """The rows and columns next to the image's bottom and right edges do not depend on how far the
    side is from a multiple of 32: the image padded by hand gives the same probabilities there.
    (Run unpadded, KolektorSDD's 250 x 630 images raised a band of false alarms along the bottom.)"""
    path, _ = segmenter_onnx
    inspector = Inspector(path, threads=1)
    image = steel_like(5, (50, 63))
    whole = inspector.defect_probability(image)
    by_hand = inspector.defect_probability(np.pad(image, ((0, 14), (0, 1), (0, 0)), mode="reflect"))
    assert np.allclose(whole, by_hand[:50, :63], atol=1e-5)


def test_a_scaled_segmenter_sees_the_image_at_its_scale_and_answers_at_full_size(tmp_path):
    from tests.synthetic import exported

    path, model = exported(tmp_path, "seg", 1, (64, 64), threshold=0.5)
    inspector = Inspector(path, threads=1)
    half = Preprocessing.create(1, (64, 64), [0.5], [0.25], scale=0.5)
    # the same model, told to work at half scale (as KolektorSDD's is trained)
    inspector.preprocessing = half
    image = steel_like(4, (100, 120))
    small = half.rescale(image)
    assert small.shape == (50, 60, 1)
    x = reflected_to_64(half.normalize(small)[None])
    with torch.no_grad():
        expected = 1 - torch.softmax(upsample_logits(model(x), (64, 64)), 1)[0, 0, :50, :60]
        expected = upsample_logits(expected[None, None], (100, 120))[0, 0].numpy()
    probability = inspector.defect_probability(image)
    assert probability.shape == (100, 120)
    assert np.allclose(probability, expected, atol=1e-5)
    assert inspector.inspect(image).mask.shape == (100, 120)


def test_large_images_are_tiled_with_overlap(segmenter_onnx):
    path, model = segmenter_onnx
    inspector = Inspector(path, threads=1, tile_overlap=16, batch_size=3)
    image = steel_like(3, (100, 150))
    tops, lefts = _tile_starts(100, 64, 16), _tile_starts(150, 64, 16)
    assert tops == [0, 36] and lefts[0] == 0 and lefts[-1] == 150 - 64
    assert all(b - a <= 64 - 16 for a, b in itertools.pairwise(lefts))  # overlap >= 16
    x = torch.from_numpy(inspector.preprocessing.normalize(image))[None]
    total, count = torch.zeros(100, 150), torch.zeros(100, 150)
    with torch.no_grad():
        for top in tops:
            for left in lefts:
                crop = x[..., top : top + 64, left : left + 64]
                p = 1 - torch.softmax(upsample_logits(model(crop), (64, 64)), 1)[0, 0]
                total[top : top + 64, left : left + 64] += p
                count[top : top + 64, left : left + 64] += 1
    assert count.min() >= 1
    assert np.allclose(inspector.defect_probability(image), (total / count).numpy(), atol=1e-5)


def test_segmenter_decision_area_and_boxes(segmenter_onnx):
    path, _ = segmenter_onnx
    inspector = Inspector(path, threads=1, min_area=5)

    def fake_logits(batch):  # defect where the input is bright, at the model's output stride 8
        bright = batch[:, 0, ::8, ::8] > 1.5
        return {"logits": np.stack([np.zeros_like(bright, np.float32), np.where(bright, 4.0, -4.0)], 1)}

    inspector.backend.run = fake_logits
    image = np.full((64, 64, 1), 100, np.uint8)
    assert inspector.inspect(image).verdict == "OK"
    image[16:32, 40:56] = 255  # a bright 16x16 square
    result = inspector.inspect(image)
    assert result.verdict == "defective" and result.defective and result.score > 0.9
    assert len(result.regions) == 1
    x0, y0, x1, y1 = result.regions[0].box
    assert abs(x0 - 40) <= 8 and abs(y0 - 16) <= 8 and abs(x1 - 56) <= 8 and abs(y1 - 32) <= 8
    assert result.area == result.regions[0].area == int(result.mask.sum())
    strict = Inspector(path, threads=1, min_area=10_000)
    strict.backend.run = fake_logits
    assert strict.inspect(image).verdict == "OK"  # the area is below the configured minimum


def test_a_bad_file_is_reported_and_the_batch_goes_on(tmp_path, classifier_onnx):
    good = []
    for i in range(3):
        good.append(tmp_path / f"{i}.png")
        Image.fromarray(steel_like(i, (48, 48))[:, :, 0]).save(good[-1])
    (tmp_path / "text.png").write_text("not an image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[0].read_bytes()[:60])
    order = [good[0], tmp_path / "text.png", good[1], truncated, tmp_path / "missing.png", good[2]]
    for batch in (1, 2, 8):
        results = list(Inspector(classifier_onnx[0], batch_size=batch).inspect_paths(order))
        assert [type(r) for r in results] == [Inspection, InspectionFailure, Inspection,
                                              InspectionFailure, InspectionFailure, Inspection]  # fmt: skip
        assert [r.image for r in results] == [str(p) for p in order]
        assert "text.png" in results[1].error and "missing.png" in results[4].error


def test_bad_model_files_give_one_line_errors(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match=r"x\.onnx: not an ONNX model"):
        Inspector(tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        Inspector(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="ok classes"):
        Inspector("neu", ok_classes=["nonexistent"])


@pytest.mark.skipif(not (SHARED_DATASETS / "neu").is_dir(), reason="needs ../shared/datasets/neu")
def test_bundled_model_on_real_images_of_its_test_split():
    import json

    meta = json.loads((BUNDLED_DIR / "neu.json").read_text())
    test_files = meta["split"]["parts"]["test"][::50]
    results = list(Inspector().inspect_paths([SHARED_DATASETS / "neu" / f for f in test_files]))
    correct = [
        r.verdict == f.split("/")[-1].rsplit("_", 1)[0] for r, f in zip(results, test_files, strict=True)
    ]
    assert len(results) == len(test_files) >= 15 and sum(correct) >= len(correct) - 1
