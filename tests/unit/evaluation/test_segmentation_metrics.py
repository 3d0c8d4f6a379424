from __future__ import annotations

import numpy as np
import pytest

from lwcnn.evaluation.segmentation import average_precision, image_decisions, pixel_overlap


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
