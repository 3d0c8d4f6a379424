"""Exported models for runtime tests: small, random-weight, with real metadata."""

from __future__ import annotations

import pytest

from tests.synthetic import exported


@pytest.fixture
def classifier_onnx(tmp_path):
    return exported(tmp_path, "cls", 1, (48, 48))


@pytest.fixture
def segmenter_onnx(tmp_path):
    return exported(tmp_path, "seg", 1, (64, 64), threshold=0.5)
