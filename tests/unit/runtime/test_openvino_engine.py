"""OpenVINO as an engine: the same numbers as ONNX Runtime for every factory model, the same
decisions through the Inspector, its precision refused where the CPU lacks it, and the engine
reported by inspect.

OpenVINO never runs in this (torch-laden) test process: with OpenVINO's thread pool (TBB) and
torch's (OpenMP) in one process, a later torch training test died of a segmentation fault, twice
in two full runs and never without OpenVINO loaded. The checks run in a child process without
torch (``openvino_checks.py``), as the runtime does on the line; the models are exported here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lwcnn.export import export_onnx
from lwcnn.models import create_model, list_models

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="OpenVINO is not installed (pip install 'lwcnn[openvino]')",
)
ROOT = Path(__file__).resolve().parents[3]


def isolated(*command: str) -> str:
    """Run a check of openvino_checks.py (or any command) in a child process; its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def check(name: str, *args: str) -> str:
    code = f"import sys; from tests.unit.runtime import openvino_checks as c; c.{name}(*sys.argv[1:])"
    return isolated(sys.executable, "-c", code, *args)


def card(task: str) -> dict:
    return {
        "task": task,
        "classes": ["a", "b", "c", "d"] if task == "cls" else ["background", "defect"],
        "preprocessing": {"channels": 3, "size": [64, 64], "mean": [0.5], "std": [0.25]},
    }


def test_openvino_gives_onnx_runtimes_numbers_for_every_factory_model(tmp_path):
    paths = []
    for name in list_models():
        for task in ("cls", "seg"):
            torch.manual_seed(0)
            model = create_model(name, task=task, num_classes=4 if task == "cls" else 2, in_channels=3)
            with torch.no_grad():
                model.train()(torch.randn(4, 3, 64, 64) * 2 + 0.5)  # non-trivial BN statistics
            path = tmp_path / f"{name}-{task}.onnx"
            export_onnx(model.eval(), path, card(task))
            paths.append(str(path))
    assert json.loads(check("parity", *paths)) == {"checked": 2 * len(list_models())}


@pytest.mark.parametrize("name", ["lw@0.35", "mobilenetv2@0.35"])
def test_openvino_sums_the_lw_blocks_projections_and_keeps_the_decoders_concatenation(tmp_path, name):
    torch.manual_seed(0)
    model = create_model(name, task="seg", num_classes=2, in_channels=3)
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 64, 64) * 2 + 0.5)
    path = tmp_path / "model.onnx"
    export_onnx(model.eval(), path, card("seg"))
    # lw@0.35: one concatenation of 16- and 48-channel pieces per LW block; MobileNetV2 has none, and
    # both decoders' concatenation of four 128-channel branches stays
    blocks = sum(type(m).__name__ == "LWBottleneck" for m in model.modules())
    assert (blocks > 0) == name.startswith("lw")
    measured = json.loads(check("split_projections", str(path), str(blocks)))
    assert measured == {"rewritten": blocks, "concatenations_left": 1}


def test_the_bundled_models_decide_the_same_in_openvino():
    check("bundled_decisions")


def test_auto_measures_the_engines_once_and_runs_the_fastest(tmp_path, monkeypatch):
    monkeypatch.setenv("LWCNN_CACHE_DIR", str(tmp_path / "cache"))  # a fresh cache: measured, then read
    chosen = json.loads(check("auto_choice"))
    assert chosen["engine"] in ("onnxruntime", "openvino") and chosen["reason"].startswith("fastest measured")
    assert (tmp_path / "cache" / "engine-choices.json").is_file()


def test_workers_through_one_openvino_backend_all_return_its_answers(tmp_path):
    assert json.loads(check("concurrent_callers", str(tmp_path))) == {"images": 40}


def test_a_precision_the_cpu_lacks_is_refused_and_only_openvino_takes_one(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    check("refusals", str(broken))


def test_inspect_reports_its_engine_and_precision(tmp_path):
    image = tmp_path / "part.png"
    Image.fromarray(np.full((200, 200), 128, np.uint8)).save(image)
    out = isolated(
        sys.executable, "-m", "lwcnn", "inspect", str(image), "--backend", "openvino",
        "--out", str(tmp_path / "out"), "--json",
    )  # fmt: skip
    report = json.loads(out)
    assert report["summary"]["engine"] == "openvino" and report["summary"]["precision"] == "fp32"
    assert report["results"][0]["verdict"]
