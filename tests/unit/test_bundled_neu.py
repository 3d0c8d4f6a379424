"""The NEU classifier shipped in the package."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lwcnn.checkpoints import load_model, read_metadata
from lwcnn.cli import main
from lwcnn.data import NEU_CLASSES
from lwcnn.weights import bundled_models
from tests.synthetic import SHARED_DATASETS


def test_neu_is_bundled_with_its_provenance():
    assert "neu" in bundled_models()
    meta = read_metadata("neu")
    assert meta["classes"] == list(NEU_CLASSES)
    assert meta["model"]["name"] == "lw@0.35"
    assert meta["split"]["sizes"] == {"train": 135.0, "val": 15.0, "test": 150.0}
    assert meta["metrics"]["test_accuracy"] >= 0.997 and meta["metrics"]["test_n"] == 900
    assert meta["commit"] and meta["config"]["model"]["name"] == "lw@0.35"
    model, _ = load_model("neu")
    assert sum(p.numel() for p in model.parameters()) < 100_000


def test_predict_uses_the_bundled_model_by_default(tmp_path, capsys):
    path = tmp_path / "steel.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)).save(path)
    assert main(["predict", str(path), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["class"] in NEU_CLASSES and 0 < result["probability"] <= 1


def test_bundled_model_accuracy_on_its_own_test_split(capsys):
    root = SHARED_DATASETS / "neu"
    if not root.is_dir():
        pytest.skip(f"real NEU data not found at {root}")
    assert main(["evaluate", "--weights", "neu", "--data", str(root), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 900
    assert report["accuracy"] == pytest.approx(read_metadata("neu")["metrics"]["test_accuracy"], abs=1e-9)
