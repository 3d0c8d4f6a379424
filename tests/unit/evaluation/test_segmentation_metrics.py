from __future__ import annotations

import numpy as np
import pytest

from lwcnn.evaluation.metrics import average_precision, image_decisions, pixel_overlap
from lwcnn.evaluation.segmenter import ImageOutcome, calibrate_threshold, segmentation_report, worst_cases


def test_image_decisions_by_hand():
    # truth:      D D D D N N N N N N ; prediction: D D D N N N N N N D
    truth = [True] * 4 + [False] * 6
    pred = [True, True, True, False] + [False] * 5 + [True]
    groups = ["Class1", "Class1", "Class2", "Class2"] + ["Class1"] * 6
    result = image_decisions(truth, pred, groups)
    assert (result["tp"], result["fn"], result["tn"], result["fp"]) == (3, 1, 5, 1)
    assert result["tpr"] == 0.75 and result["tnr"] == pytest.approx(5 / 6)
    assert result["macc"] == pytest.approx((0.75 + 5 / 6) / 2)
    assert result["accuracy"] == 0.8
    assert result["tpr_per_group"] == {"Class1": 1.0, "Class2": 0.5}


def test_rates_without_images_are_none():
    result = image_decisions([False, False], [False, True])
    assert result["tpr"] is None and result["macc"] is None and result["tnr"] == 0.5


@pytest.mark.parametrize(
    ("truth", "scores", "expected"),
    [
        ([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], (1 / 2) * 1 + (1 / 2) * (2 / 3)),  # P@1 = 1, P@3 = 2/3
        ([1, 1, 0], [0.9, 0.8, 0.1], 1.0),  # perfect ranking
        ([0, 1], [0.5, 0.5], 0.5),  # a tie counts as one threshold: recall 1 at precision 1/2
        ([0, 0, 1], [0.9, 0.8, 0.1], 1 / 3),
    ],
)
def test_average_precision_by_hand(truth, scores, expected):
    assert average_precision(np.array(truth, bool), scores) == pytest.approx(expected)


def test_average_precision_without_positives_is_none():
    assert average_precision([False, False], [0.1, 0.2]) is None


def test_pixel_overlap_by_hand():
    truth = np.zeros((4, 4), bool)
    truth[:2, :2] = True  # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[1:3, 1:3] = True  # 4 pixels, 1 shared
    iou, dice = pixel_overlap(truth, pred)
    assert iou == pytest.approx(1 / 7) and dice == pytest.approx(2 / 8)
    assert pixel_overlap(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == (1.0, 1.0)


# -- the segmenter report, worst cases and calibration ----------------------------------------------


def outcome(path, defective, score, predicted, iou=None):
    return ImageOutcome(path, "g", defective, 10 if defective else 0, score, predicted, 0, iou, iou)


def test_segmentation_report_counts_wood_metrics_by_hand():
    outcomes = [
        outcome("a", True, 0.9, True, 0.5),
        outcome("b", True, 0.2, False, 0.0),  # missed: an escape
        outcome("c", False, 0.7, True),  # false alarm
        outcome("d", False, 0.1, False),
        outcome("e", False, 0.05, False),
    ]
    report = segmentation_report(outcomes)
    assert (report["tp"], report["fn"], report["fp"], report["tn"]) == (1, 1, 1, 2)
    assert report["tpr"] == 0.5 and report["tnr"] == pytest.approx(2 / 3)
    assert report["accuracy"] == pytest.approx(1 - (1 + 1) / 5)  # Eq. 10
    assert report["escape_rate"] == pytest.approx(1 / 5)
    assert report["iou"] == pytest.approx(0.25)  # mean over the two defective images
    # scores 0.9 (defect), 0.7, 0.2 (defect), ...: precision 1 at recall 0.5, 2/3 at recall 1
    assert report["ap"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_worst_cases_put_misses_first_then_false_alarms_then_weak_masks():
    outcomes = [
        outcome("weak", True, 0.9, True, 0.1),
        outcome("alarm", False, 0.8, True),
        outcome("good", True, 0.99, True, 0.9),
        outcome("miss", True, 0.3, False, 0.0),
        outcome("ok", False, 0.1, False),
    ]
    assert [o.path for o in worst_cases(outcomes, 4)] == ["miss", "alarm", "weak", "good"]


def test_calibration_catches_every_defect_and_passes_what_it_can():
    scores = [0.95, 0.6, 0.4, 0.3, 0.8, 0.1]
    truth = [True, True, True, False, False, False]
    result = calibrate_threshold(scores, truth, escape_rate=0.0)
    assert result["threshold"] == pytest.approx((0.4 + 0.3) / 2)  # between the lowest defect and below it
    assert result["tpr"] == 1.0 and result["tnr"] == pytest.approx(2 / 3)
    # one escape in three allowed: the lowest defect (0.4) may pass, 0.6 must be caught
    relaxed = calibrate_threshold(scores, truth, escape_rate=1 / 3)
    assert relaxed["threshold"] == pytest.approx((0.6 + 0.4) / 2)
    assert relaxed["tpr"] == pytest.approx(2 / 3) and relaxed["tnr"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="needs defective images"):
        calibrate_threshold([0.1], [False])
    with pytest.raises(ValueError, match="escape rate"):
        calibrate_threshold(scores, truth, escape_rate=1.0)


@pytest.mark.parametrize("count", [3, 10, 49, 72, 360])
def test_a_perfect_ranking_has_an_average_precision_of_exactly_one(count):
    # every image defective (NEU-DET, a set of cracks): the AP of any ranking is 1, and it must be
    # 1.0 to the last bit, or float noise ranks the epochs that the best-epoch choice compares
    scores = np.random.default_rng(count).random(count)
    assert average_precision(np.ones(count, bool), scores) == 1.0
    truth = np.r_[np.ones(count, bool), np.zeros(count, bool)]
    assert average_precision(truth, np.r_[scores + 1.0, scores]) == 1.0
