from __future__ import annotations

import pytest

from lwcnn.evaluation.metrics import classification_metrics, format_confusion


def test_metrics_against_a_hand_computed_case():
    # true:      a a a b b c
    # predicted: a a b b c c
    metrics = classification_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["n"] == 6 and metrics["correct"] == 4
    assert metrics["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "n": 3}
    assert metrics["per_class"]["b"] == {"precision": 0.5, "recall": 0.5, "n": 2}
    assert metrics["per_class"]["c"] == {"precision": 0.5, "recall": 1.0, "n": 1}


def test_undefined_precision_and_recall_are_none():
    metrics = classification_metrics([0, 0], [0, 0], ["a", "b"])
    assert metrics["per_class"]["b"] == {"precision": None, "recall": None, "n": 0}


def test_confusion_text():
    text = format_confusion([[2, 1], [0, 3]], ["ok", "defect"])
    lines = text.splitlines()
    assert lines[0] == "true \\ predicted"
    assert lines[2].split() == ["ok", "2", "1"] and lines[3].split() == ["defect", "0", "3"]
