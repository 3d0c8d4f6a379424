"""int8 export: calibrated on the training part, test accuracy of both precisions reported, int8
kept only where it is faster unless forced, metadata kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lwcnn.cli import main
from lwcnn.runtime import Inspector
from lwcnn.training.classification import train_classifier

from ...synthetic import make_class_folders
from ..training.test_classification_training import tiny_config


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    data = make_class_folders(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train_classifier(tiny_config(data, out, "train.epochs=2"), show_progress=False)
    return out


def test_forced_int8_export_reports_accuracy_and_runs(run_folder, tmp_path, capsys):
    out = tmp_path / "int8.onnx"
    args = ["export", "--weights", str(run_folder), "--out", str(out), "--int8", "--force-int8"]
    assert main([*args, "--calibration-images", "10", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == "int8" and summary["calibration_images"] == 10
    meta = json.loads((run_folder / "best.json").read_text())
    assert summary["test_n"] == len(meta["split"]["parts"]["test"])
    assert 0 <= summary["int8_test_accuracy"] <= 1 and 0 <= summary["fp32_test_accuracy"] <= 1
    assert summary["int8_ms"] > 0 and summary["fp32_ms"] > 0
    int8 = Inspector(out, threads=1)
    fp32 = Inspector(run_folder, threads=1)
    assert int8.classes == fp32.classes and int8.preprocessing == fp32.preprocessing
    image = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    a, b = int8.inspect(image), fp32.inspect(image)
    assert abs(a.score - b.score) < 0.2  # quantised, not broken


def test_int8_is_kept_only_when_faster(run_folder, tmp_path, capsys):
    out = tmp_path / "auto.onnx"
    args = ["export", "--weights", str(run_folder), "--out", str(out), "--int8", "--calibration-images", "5"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["precision"] == ("int8" if summary["int8_ms"] < summary["fp32_ms"] else "fp32")
    graph_has_int8 = b"QuantizeLinear" in out.read_bytes()
    assert graph_has_int8 == (summary["precision"] == "int8")


def test_int8_without_data_is_a_clear_error(run_folder, tmp_path, capsys):
    args = ["export", "--weights", str(run_folder), "--out", str(tmp_path / "x.onnx"), "--int8"]
    assert main([*args, "--data", str(tmp_path / "nowhere")]) == 2
    assert "--calibration" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_segmenter_tries_mixed_precision_with_a_calibration_folder(tmp_path, capsys):
    import torch
    from PIL import Image

    from lwcnn.checkpoints import save_model
    from lwcnn.models import create_model

    torch.manual_seed(0)
    model = create_model("lw@0.35", task="seg", in_channels=1).eval()
    preprocessing = {"channels": 1, "size": [64, 64], "mean": [0.5], "std": [0.25]}
    save_model(
        tmp_path / "seg",
        model,
        {"task": "seg", "classes": ["background", "defect"], "preprocessing": preprocessing},
    )
    folder = tmp_path / "calibration"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (64, 64), dtype=np.uint8)).save(
            folder / f"{i}.png"
        )
    out = tmp_path / "seg.onnx"
    args = ["export", "--weights", str(tmp_path / "seg.json"), "--out", str(out), "--int8", "--force-int8"]
    assert main([*args, "--calibration", str(folder), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"fp32_ms", "int8_ms", "int8-decoder_ms"} <= set(summary) and summary["calibration_images"] == 4
    assert summary["precision"] == min(("int8", "int8-decoder"), key=lambda n: summary[f"{n}_ms"])
    assert Inspector(out, threads=1).inspect(np.zeros((64, 64), np.uint8)).verdict in ("OK", "defective")
