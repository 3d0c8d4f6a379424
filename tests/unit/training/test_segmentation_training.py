"""Training a segmenter end to end on generated DAGM-layout data: the run folder, gradual training
in the metrics, evaluation through the engine reproducing the logged figures, calibration, resume,
the CLI and the bad-input cases."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from lwcnn.cli import main
from lwcnn.config import load_config
from lwcnn.data.classification import DataError
from lwcnn.data.sampling import SegmentationSampler
from lwcnn.data.synth import synthesize_dagm
from lwcnn.training.segmentation import train_segmenter

from .interrupt import interrupted_at_epoch

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
TINY = [
    "task=seg",
    "model.name=lw@0.35",
    "data.input_size=[64,64]",
    "data.crop=[48,48]",
    "data.split={val: 0.25}",
    "augment.per_epoch=16",
    "augment.transforms=[{name: HorizontalFlip, p: 0.5}, {name: RandomBrightnessContrast, p: 0.5}]",
    "gradual.zoom_steps=0.34",
    "gradual.clean_from=0.67",
    "train.batch_size=8",
    "train.workers=0",
    "train.threads=1",
    "train.lr=0.003",
    "train.log_every=1",
]


def tiny_config(data: Path, out: Path, *extra: str) -> dict:
    return load_config(None, [*TINY, f"data.root={data}", f"out={out}", *extra])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return synthesize_dagm(
        tmp_path_factory.mktemp("dagm"), classes=1, train=16, test=8, defective_fraction=0.5, size=64, seed=1
    )


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "seg"
    train_segmenter(tiny_config(data, out, "train.epochs=3"), show_progress=False)
    return out


def test_training_writes_a_complete_run_folder(trained):
    for name in ("config.yaml", "split.json", "metrics.csv", "best.safetensors", "best.json", "last.json",
                 "resume.pt", "learning_curves.png", "test_worst.png"):  # fmt: skip
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "best.json").read_text())
    assert meta["task"] == "seg" and meta["classes"] == ["background", "defect"]
    assert meta["threshold"] == 0.5 and meta["min_area"] == 1
    assert meta["preprocessing"]["size"] == [64, 64]
    assert set(meta["split"]["parts"]) == {"train", "val", "test"}
    assert len(meta["split"]["parts"]["test"]) == 8  # DAGM's own test part
    assert {"test_ap", "test_macc", "test_iou", "test_n"} <= set(meta["metrics"])


def test_metrics_follow_the_gradual_schedule(trained):
    rows = (trained / "metrics.csv").read_text().splitlines()
    assert rows[0].split(",")[:6] == ["epoch", "step", "lr", "phase", "zoom", "train_loss"]
    # 3 epochs of 2 steps: zoom until step 2, whole images until step 4, then all images
    assert [r.split(",")[3] for r in rows[1:]] == ["zoom", "whole", "all"]
    assert float(rows[1].split(",")[4]) == pytest.approx(3.6)


def test_evaluate_reproduces_the_logged_test_figures(trained, data, capsys, tmp_path):
    logged = json.loads((trained / "best.json").read_text())["metrics"]
    args = ["evaluate", "--weights", str(trained), "--data", str(data), "--json", "--out", str(tmp_path)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("tpr", "tnr", "macc", "ap", "iou", "n"):
        assert key in report
    assert report["n"] == logged["test_n"] == 8
    assert report["ap"] == pytest.approx(logged["test_ap"], abs=1e-6)
    assert report["macc"] == pytest.approx(logged["test_macc"], abs=1e-6)
    assert report["accuracy"] == pytest.approx(1 - (report["fn"] + report["fp"]) / report["n"])
    assert report["escape_rate"] == pytest.approx(report["fn"] / report["n"])
    assert set(report["tpr_per_group"]) == {"Class1"}
    assert (tmp_path / "worst.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "report.json").is_file()


def test_calibrate_stores_a_threshold_that_evaluate_then_uses(trained, data, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    # --force: this tiny model's threshold for no escapes rejects most good parts, which calibrate
    # refuses to store by itself (tests/unit/training/test_planning.py); here it must be stored
    args = ["calibrate", "--weights", str(run), "--data", str(data), "--split", "val", "--json", "--force"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tpr"] == 1.0 and result["stored"]  # escape rate 0: every defective image is caught
    meta = json.loads((run / "best.json").read_text())
    assert meta["threshold"] == pytest.approx(result["threshold"])
    assert meta["calibration"]["split"] == "val"
    assert main(["evaluate", "--weights", str(run), "--data", str(data), "--split", "val", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threshold"] == pytest.approx(result["threshold"]) and report["tpr"] == 1.0
    # the recorded test figures were measured again at the new threshold
    assert meta["metrics"]["test_threshold"] == pytest.approx(result["threshold"])
    assert main(["evaluate", "--weights", str(run), "--data", str(data), "--json"]) == 0
    test = json.loads(capsys.readouterr().out)
    assert (
        meta["metrics"]["test_macc"] == pytest.approx(test["macc"]) == pytest.approx(result["test"]["macc"])
    )


@pytest.mark.skipif(
    importlib.util.find_spec("openvino") is None,
    reason="OpenVINO is not installed (pip install 'lwcnn[openvino]')",
)
def test_a_precision_check_compares_every_validation_decision_with_fp32(trained, data, tmp_path, capsys):
    from lwcnn.evaluation.precision import check_precision
    from lwcnn.runtime.openvino_engine import PRECISIONS

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert main(["calibrate", "--weights", str(run), "--data", str(data), "--json", "--force"]) == 0
    calibrated = json.loads(capsys.readouterr().out)
    # OpenVINO fp32 (in a child process, away from torch) against ONNX Runtime fp32: the same
    # decisions, at a threshold calibrated again with the same target in the candidate's numbers
    record = check_precision(run, data, "val", precision="fp32", engine="openvino", store=False)
    assert record["n"] == calibrated["n"] and record["agree"] and record["differ_count"] == 0
    assert record["max_score_difference"] < 1e-3 and 0 < record["threshold"] < 1
    # bf16 where this CPU has it (stored, for auto), else a one-line refusal and nothing stored
    offered = subprocess.run(
        [sys.executable, "-m", "lwcnn.runtime.openvino_engine", "precisions"], capture_output=True, text=True
    )
    assert set(json.loads(offered.stdout)) <= set(PRECISIONS)
    status = main(["calibrate", "--weights", str(run), "--data", str(data), "--precision", "bf16", "--json"])
    meta = json.loads((run / "best.json").read_text())
    if "bf16" in json.loads(offered.stdout):
        assert status == 0 and meta["precisions"]["bf16"]["n"] == calibrated["n"]
    else:
        assert status != 0 and "no native bf16" in capsys.readouterr().err and "precisions" not in meta


def test_calibrate_refuses_a_classifier(tmp_path, capsys, data):
    assert main(["calibrate", "--weights", "neu", "--data", str(data)]) == 2
    assert "calibrate sets a segmenter's threshold" in capsys.readouterr().err


def test_interrupted_training_resumes_to_the_same_weights(data, tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train_segmenter(tiny_config(data, straight, "train.epochs=3"), show_progress=False)
    interrupted = tmp_path / "interrupted"
    with interrupted_at_epoch(monkeypatch, SegmentationSampler, 2):  # epochs 1 and 2 complete
        train_segmenter(tiny_config(data, interrupted, "train.epochs=3"), show_progress=False)
    assert main(["train", "--resume", str(interrupted), "--json"]) == 0  # the CLI finds the task in the run
    rows = (interrupted / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["2", "4", "6"]
    a, b = load_file(straight / "last.safetensors"), load_file(interrupted / "last.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_cli_trains_a_segmenter_from_overrides(data, tmp_path, capsys):
    out = tmp_path / "cli"
    args = [
        "train",
        *TINY,
        f"data.root={data}",
        f"out={out}",
        "train.epochs=1",
        "gradual.enabled=false",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "seg" and summary["test_n"] == 8 and "test_ap" in summary
    assert (out / "metrics.csv").read_text().splitlines()[1].split(",")[3] == "all"


def test_a_mask_of_the_wrong_size_stops_training_naming_the_file(data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    label = sorted((broken / "Class1" / "Train" / "Label").glob("*_label.PNG"))[0]
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(label)
    with pytest.raises(DataError, match=f"{label.name}: mask is 12x10 but its image is 64x64"):
        train_segmenter(tiny_config(broken, tmp_path / "run", "train.epochs=1"), show_progress=False)
    assert not (tmp_path / "run").exists()


def test_training_without_defective_images_is_a_clear_error(tmp_path):
    root = tmp_path / "clean"
    (root / "images").mkdir(parents=True)
    for k in range(6):
        Image.fromarray(np.full((40, 40), 100 + k, np.uint8)).save(root / "images" / f"{k}.png")
    config = tiny_config(root, tmp_path / "run", "train.epochs=1", "data.split={train: 0.5, val: 0.5}")
    with pytest.raises(DataError, match=r"clean: no defective image in the training part"):
        train_segmenter(config, show_progress=False)


def test_an_unknown_layout_is_a_clear_error(tmp_path):
    (tmp_path / "data" / "stuff").mkdir(parents=True)
    with pytest.raises(DataError, match="cannot tell the layout"):
        train_segmenter(tiny_config(tmp_path / "data", tmp_path / "run"), show_progress=False)


def test_readme_walkthrough_on_an_image_mask_folder(tmp_path, capsys):
    """The README's segmentation commands, on a folder of images/ and masks/ (configs/masks.yaml)."""
    root = tmp_path / "my_parts"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k in range(20):
        image = rng.integers(60, 120, (64, 80), dtype=np.uint8)
        if k % 2 == 0:
            mask = np.zeros((64, 80), np.uint8)
            mask[10 + k : 14 + k, 20 + k : 40 + k] = 255
            image[mask > 0] = 240
            Image.fromarray(mask).save(root / "masks" / f"{k:03d}.png")
        Image.fromarray(image).save(root / "images" / f"{k:03d}.png")
    run = tmp_path / "runs" / "my_seg"
    small = [
        "data.crop=[48,48]",
        "augment.per_epoch=16",
        # enough steps to separate the toy defects: calibrate rightly refuses a threshold that
        # rejects every good part, which 4 steps from the pretrained start gave
        "train.epochs=6",
        "train.batch_size=8",
        "train.workers=0",
    ]
    assert (
        main(["train", "--config", str(CONFIGS / "masks.yaml"), f"data.root={root}", f"out={run}", *small])
        == 0
    )
    assert main(["calibrate", "--weights", str(run), "--data", str(root), "--escape-rate", "0"]) == 0
    assert "stored in" in capsys.readouterr().out
    assert (
        main(["evaluate", "--weights", str(run), "--data", str(root), "--out", str(tmp_path / "eval")]) == 0
    )
    assert "pixel IoU" in capsys.readouterr().out and (tmp_path / "eval" / "worst.png").is_file()
    out = tmp_path / "inspection"
    assert main(["inspect", str(root / "images"), "--weights", str(run), "--out", str(out)]) == 0
    assert len(list((out / "overlays").iterdir())) == 20 and len(list((out / "masks").iterdir())) == 20


def test_a_corrupt_image_stops_training_or_is_skipped_and_counted(data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    bad = sorted((broken / "Class1" / "Train").glob("*.PNG"))[1]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(Exception, match=f"{bad.name}: corrupt"):
        train_segmenter(tiny_config(broken, tmp_path / "stopped", "train.epochs=1"), show_progress=False)
    assert not (tmp_path / "stopped").exists()
    config = tiny_config(broken, tmp_path / "skipped", "train.epochs=1", "data.skip_bad=true")
    result = train_segmenter(config, show_progress=False)
    assert len(result.skipped) == 1 and bad.name in result.skipped[0]


def test_image_loss_is_the_cross_entropy_of_each_crops_highest_defect_probability():
    from lwcnn.training.segmentation import defect_logit, image_loss

    logits = torch.randn(2, 3, 5, 4)
    target = torch.zeros(2, 5, 4, dtype=torch.long)
    target[0, 2, 1] = 2  # crop 0 holds a defect pixel (of the second defect class), crop 1 none
    p_defect = 1 - torch.softmax(logits, dim=1)[:, 0]
    assert torch.allclose(torch.sigmoid(defect_logit(logits)), p_defect, atol=1e-6)
    highest = p_defect.flatten(1).amax(dim=1)
    expected = -(torch.log(highest[0]) + torch.log(1 - highest[1])) / 2
    assert torch.allclose(image_loss(logits, target), expected, atol=1e-5)


def test_image_loss_enters_the_training_loss_and_a_negative_weight_is_refused(data, tmp_path):
    def first_epoch_loss(weight: str) -> float:
        out = tmp_path / f"run{weight}"
        train_segmenter(
            tiny_config(data, out, "train.epochs=1", f"train.image_loss={weight}"), show_progress=False
        )
        header, row = (out / "metrics.csv").read_text().splitlines()[:2]
        return float(dict(zip(header.split(","), row.split(","), strict=True))["train_loss"])

    # same seed and data: the image term (about 0.7 per crop untrained, times 2) comes on top
    assert first_epoch_loss("2.0") > first_epoch_loss("0") + 0.5
    with pytest.raises(ValueError, match="image_loss"):
        train_segmenter(tiny_config(data, tmp_path / "bad", "train.image_loss=-1"), show_progress=False)


def test_the_best_epoch_comes_from_the_last_phase_of_gradual_training():
    from lwcnn.training.segmentation import SegmentationTask

    task = SegmentationTask()
    perfect_early = {"epoch": 2, "phase": "whole", "val_ap": 1.0, "val_macc": 1.0, "val_iou": 0.5}
    weaker_late = {"epoch": 5, "phase": "all", "val_ap": 0.8, "val_macc": 0.7, "val_iou": 0.3}
    better_late = {"epoch": 6, "phase": "all", "val_ap": 0.9, "val_macc": 0.7, "val_iou": 0.3}
    assert task.selection_key(weaker_late) > task.selection_key(perfect_early)
    assert task.selection_key(better_late) > task.selection_key(weaker_late)


def test_float_noise_in_a_figure_does_not_choose_the_epoch():
    from lwcnn.training.segmentation import SegmentationTask

    task = SegmentationTask()  # NEU-DET's validation: every image defective, AP 1 either way
    early = {"epoch": 54, "phase": "all", "val_ap": 1.0, "val_macc": None, "val_iou": 0.597}
    late = {"epoch": 117, "phase": "all", "val_ap": 0.9999999999999999, "val_macc": None, "val_iou": 0.658}
    assert task.selection_key(late) > task.selection_key(early)
