"""The inspection path's shortcuts give the straightforward path's answers: the defect probability
from the logit difference at low resolution, only the rows the answer needs resized to the image's
size, regions found in the box around the defect pixels, images read ahead in a second thread.

The reference below is the path as it was before the shortcuts (both logit maps resized, a softmax
over them, the whole probability map resized, regions of the whole mask). The sigmoid differs from
that softmax by float rounding (< 1e-6): on real images the answers are identical."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.data.preprocessing import Preprocessing, pad_to_stride
from lwcnn.runtime import Inspection, InspectionFailure, Inspector
from lwcnn.runtime.probability import ProbabilityRows, native_mask, sigmoid
from lwcnn.runtime.regions import find_regions, resize_bilinear
from tests.synthetic import SHARED_DATASETS, exported


def straightforward(inspector: Inspector, image: np.ndarray) -> tuple[np.ndarray, float, list, np.ndarray]:
    """Mask, score, regions and probability of an image that fits the working size, the long way."""
    scaled = inspector.preprocessing.rescale(image)
    height, width = scaled.shape[:2]
    batch = pad_to_stride(inspector.preprocessing.normalize(scaled)[None], axes=(-2, -1))
    logits = inspector.backend.run(batch)["logits"]
    full = resize_bilinear(logits, batch.shape[-2:])[..., :height, :width]
    exp = np.exp(full - full.max(axis=1, keepdims=True))
    probability = 1.0 - (exp / exp.sum(axis=1, keepdims=True))[0, 0]
    probability = resize_bilinear(probability, image.shape[:2])
    mask = probability > inspector.threshold
    return mask, float(probability.max()), find_regions(mask), probability


def assert_same_answer(result: Inspection, reference: tuple, threshold: float, exact: bool = True) -> None:
    """The same score (to 1e-5), mask, area and regions. Not ``exact``: pixels may differ where the
    reference's probability is within float rounding (1e-6) of the threshold, as on a random-weight
    model whose threshold is put where thousands of pixels lie."""
    mask, score, regions, probability = reference
    assert abs(result.score - score) < 1e-5
    if exact:
        assert np.array_equal(result.mask, mask) and result.regions == regions
    else:
        assert np.all(np.abs(probability[result.mask != mask] - threshold) < 1e-6)
        assert result.regions == find_regions(result.mask)
    assert result.area == int(result.mask.sum()) and result.defective == (result.area >= 1)


def native_mask_by_hand(probability: np.ndarray, size: tuple[int, int], threshold: float):
    full = resize_bilinear(probability, size)
    return full > threshold, float(full.max())


@pytest.mark.parametrize(
    ("source", "size"),
    [((25, 63), (50, 126)), ((40, 30), (97, 61)), ((64, 64), (33, 50)), ((7, 9), (7, 40)), ((9, 7), (9, 7))],
)
@pytest.mark.parametrize("smooth", [True, False])
def test_only_the_rows_the_answer_needs_are_resized_and_the_answer_is_the_same(source, size, smooth):
    rng = np.random.default_rng(sum(source) + sum(size))
    for trial in range(6):
        probability = rng.random(source, dtype=np.float32)
        if smooth:  # a defect-free part with a few blobs, like an upsampled network output
            probability = resize_bilinear(rng.random((4, 4), dtype=np.float32) ** 4, source)
        threshold = [0.5, 0.9, 0.999, float(np.quantile(probability, 0.97)), 0.01, 0.3][trial]
        mask, score, rows = native_mask(ProbabilityRows.of_array(probability), size, threshold)
        expected_mask, expected_score = native_mask_by_hand(probability, size, threshold)
        assert np.array_equal(mask, expected_mask) and score == expected_score
        assert set(np.flatnonzero(expected_mask.any(axis=1))) <= set(rows)


@pytest.mark.parametrize("scale", [8.0, 0.5])  # logits of a scratch on a clean part; of noise
def test_the_probability_from_the_logit_difference_is_bounded_row_by_row(scale):
    """Rows come from the low-resolution logit difference as asked, equal to resizing it whole;
    each row's bound is at least its values, so skipping rows by bounds skips nothing defective."""
    rng = np.random.default_rng(int(scale))
    difference = (rng.standard_normal((10, 6)) * scale - 4).astype(np.float32)
    difference[4:6, 2] = 9.0
    rows = ProbabilityRows.of_logit_difference(difference, (80, 48), 75, 41)
    expected = sigmoid(resize_bilinear(difference, (80, 48))[:75, :41])
    assert rows.shape == (75, 41) and np.array_equal(rows.full(), expected)
    assert np.array_equal(rows.rows(np.array([70, 3, 40])), expected[[70, 3, 40]])
    assert np.all(rows.bounds >= expected.max(axis=1) - 1e-6)
    for threshold in (0.5, 0.99, float(np.quantile(expected, 0.9))):
        mask, score, _ = native_mask(rows, (150, 82), threshold)
        expected_mask, expected_score = native_mask_by_hand(expected, (150, 82), threshold)
        assert np.array_equal(mask, expected_mask) and score == expected_score


@pytest.fixture
def scaled_segmenter(tmp_path):
    """A random-weight segmenter at half scale (as KolektorSDD's), its threshold set so that about
    a fifth of a test image is defect: many regions of every shape."""
    path, _ = exported(tmp_path, "seg", 1, (128, 128), threshold=0.5)
    inspector = Inspector(path, threads=1)
    inspector.preprocessing = Preprocessing.create(1, (128, 128), [0.5], [0.25], scale=0.5)
    probe = np.random.default_rng(9).integers(0, 256, (200, 230, 1), dtype=np.uint8)
    inspector.threshold = float(np.quantile(inspector.defect_probability(probe), 0.8))
    return inspector


def test_a_scaled_segmenter_gives_the_straightforward_answer(scaled_segmenter):
    rng = np.random.default_rng(1)
    for size in [(200, 230), (255, 101), (64, 250), (31, 17)]:
        image = rng.integers(0, 256, (*size, 1), dtype=np.uint8)
        image[size[0] // 3 : size[0] // 3 + 4] = 255  # a bright scratch
        reference = straightforward(scaled_segmenter, image)
        assert_same_answer(
            scaled_segmenter.inspect(image), reference, scaled_segmenter.threshold, exact=False
        )


def test_a_tiled_image_gives_the_mask_of_its_probability(scaled_segmenter):
    scaled_segmenter.tile_overlap = 24
    image = np.random.default_rng(2).integers(0, 256, (333, 420, 1), dtype=np.uint8)
    result = scaled_segmenter.inspect(image)
    probability = scaled_segmenter.defect_probability(image)  # resized whole
    mask = probability > scaled_segmenter.threshold
    assert result.score == float(probability.max())
    assert np.array_equal(result.mask, mask) and result.regions == find_regions(mask)


KOLEKTORSDD = SHARED_DATASETS / "kolektorsdd"


@pytest.mark.skipif(not KOLEKTORSDD.is_dir(), reason="KolektorSDD is not in ../shared/datasets")
def test_the_bundled_segmenter_gives_the_straightforward_answer_on_real_images():
    """KolektorSDD parts with and without defects, read by inspect_paths (read ahead) as lwcnn
    inspect reads them."""
    inspector = Inspector("kolektorsdd", threads=1)
    paths = [KOLEKTORSDD / f"kos{n:02d}" / f"Part{k}.jpg" for n in (3, 4, 6, 9, 20, 33) for k in range(8)]
    paths = [p for p in paths if p.is_file()]
    defective = 0
    for path, result in zip(paths, inspector.inspect_paths(paths, keep_pixels=True), strict=True):
        assert isinstance(result, Inspection) and result.image == str(path)
        assert_same_answer(result, straightforward(inspector, result.pixels), inspector.threshold)
        defective += result.defective
    assert len(paths) == 48 and defective >= 3  # defects were found, not only empty masks compared


def test_reading_ahead_keeps_the_order_and_reports_broken_files(tmp_path, scaled_segmenter, monkeypatch):
    rng = np.random.default_rng(3)
    paths = []
    for index in range(7):
        path = tmp_path / f"part{index}.png"
        if index in (2, 5):
            path.write_bytes(b"not an image")  # 2: Pillow refuses it; 5: a decoder's own failure below
        else:
            Image.fromarray(rng.integers(0, 256, (90 + index, 120), dtype=np.uint8)).save(path)
        paths.append(path)
    import lwcnn.runtime.engine as engine

    real_read = engine.read_image

    def read_image(path, *args):
        if Path(path).name == "part5.png":
            raise struct.error("unpack requires a buffer of 4 bytes")  # as a corrupt TIFF tag can
        return real_read(path, *args)

    monkeypatch.setattr(engine, "read_image", read_image)
    results = list(scaled_segmenter.inspect_paths(paths))
    assert "part5.png: cannot be decoded (error: unpack requires" in results[5].error
    assert [r.image for r in results] == [str(p) for p in paths]
    assert [isinstance(r, InspectionFailure) for r in results] == [i in (2, 5) for i in range(7)]
    assert [r.size for r in results if isinstance(r, Inspection)] == [(90 + i, 120) for i in (0, 1, 3, 4, 6)]


@pytest.mark.parametrize("task", ["seg", "cls"])
def test_workers_give_one_workers_answers_in_order_with_the_broken_files(tmp_path, task):
    """Several workers (whole images in parallel through one session) answer as one does: the same
    verdicts, scores, masks and failures, in the order of the paths; a classifier in batches."""
    rng = np.random.default_rng(4)
    paths = []
    for index in range(11):
        path = tmp_path / f"part{index:02d}.png"
        if index in (3, 8):
            path.write_bytes(b"not an image")
        else:
            Image.fromarray(rng.integers(0, 256, (60 + 3 * index, 70), dtype=np.uint8)).save(path)
        paths.append(path)
    model, _ = exported(tmp_path, task, 1, (64, 64), threshold=0.5)
    one = list(Inspector(model, threads=1, batch_size=3).inspect_paths(paths))
    pooled = Inspector(model, threads=1, workers=3, batch_size=3)
    for results in (list(pooled.inspect_paths(paths)), list(pooled.inspect_paths(paths[:2]))):
        assert [r.image for r in results] == [r.image for r in one[: len(results)]]
        for a, b in zip(one, results, strict=False):
            assert type(a) is type(b)
            if isinstance(a, InspectionFailure):
                assert a.error == b.error
            else:
                assert (a.verdict, a.score, a.size) == (b.verdict, b.score, b.size)
                assert a.mask is None or np.array_equal(a.mask, b.mask)
    with pytest.raises(Exception, match="workers must be at least 1"):
        Inspector(model, workers=0)
