"""The KolektorSDD segmenter shipped in the package."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lwcnn.checkpoints import read_metadata
from lwcnn.cli import main
from lwcnn.runtime import Inspector
from lwcnn.weights import BUNDLED_DIR, bundled_models
from tests.synthetic import SHARED_DATASETS


def test_kolektorsdd_is_bundled_with_its_provenance():
    assert "kolektorsdd" in bundled_models() and (BUNDLED_DIR / "kolektorsdd.onnx").is_file()
    meta = read_metadata("kolektorsdd")
    assert meta["task"] == "seg" and meta["classes"] == ["background", "defect"]
    assert meta["model"]["name"] == "lw@0.35" and meta["preprocessing"]["scale"] == 0.5
    assert meta["split"]["sizes"]["test_fold"] == 0 and meta["split"]["parts"]["test"]
    assert meta["calibration"]["split"] == "val" and 0 < meta["threshold"] < 1
    metrics = meta["metrics"]
    assert metrics["test_threshold"] == meta["threshold"] and metrics["test_n"] == len(
        meta["split"]["parts"]["test"]
    )
    assert {"test_ap", "test_macc", "test_iou"} <= set(metrics) and meta["commit"]


def test_bundled_onnx_is_the_bundled_weights():
    """kolektorsdd.onnx (runtime) and kolektorsdd.safetensors (training) give the same probabilities."""
    image = np.random.default_rng(0).integers(60, 200, (1260, 500, 1), dtype=np.uint8)
    onnx_run = Inspector("kolektorsdd", threads=1)
    torch_run = Inspector("kolektorsdd", backend="torch", threads=1)
    a, b = onnx_run.defect_probability(image), torch_run.defect_probability(image)
    assert a.shape == (1260, 500) and np.allclose(a, b, atol=1e-4)


def test_bundled_segmenter_on_its_own_test_fold(capsys):
    root = SHARED_DATASETS / "kolektorsdd"
    if not root.is_dir():
        pytest.skip(f"real KolektorSDD not found at {root}")
    args = ["evaluate", "--weights", "kolektorsdd", "--data", str(root), "--split", "test", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    metrics = read_metadata("kolektorsdd")["metrics"]
    assert report["n"] == metrics["test_n"]
    for key in ("ap", "macc", "iou"):
        assert report[key] == pytest.approx(metrics[f"test_{key}"], abs=1e-6)
