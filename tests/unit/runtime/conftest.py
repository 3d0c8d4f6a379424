"""Exported models for runtime tests: small, random-weight, with real metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lwcnn.export import export_onnx
from lwcnn.models import create_model


def exported(
    tmp_path: Path, task: str, channels: int, size: tuple[int, int], **meta
) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = create_model("lw@0.35", task=task, num_classes=3 if task == "cls" else 2, in_channels=channels)
    with torch.no_grad():
        model.train()(torch.rand(4, channels, *size) * 4 - 2)  # non-trivial BN statistics
    model.eval()
    metadata = {
        "task": task,
        "classes": ["good", "scratch", "dent"] if task == "cls" else ["background", "defect"],
        "preprocessing": {"channels": channels, "size": list(size), "mean": [0.5], "std": [0.25]},
        **meta,
    }
    path = tmp_path / f"{task}.onnx"
    export_onnx(model, path, metadata)
    return path, model


@pytest.fixture
def classifier_onnx(tmp_path):
    return exported(tmp_path, "cls", 1, (48, 48))


@pytest.fixture
def segmenter_onnx(tmp_path):
    return exported(tmp_path, "seg", 1, (64, 64), threshold=0.5)
