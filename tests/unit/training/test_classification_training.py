"""Training a classifier end to end on a tiny generated set: checkpoints, resume, evaluation,
fine-tuning and every bad-input case."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lwcnn.checkpoints import load_model
from lwcnn.cli import main
from lwcnn.config import load_config
from lwcnn.data.sampling import BalancedSampler
from lwcnn.training.classification import train_classifier
from tests.synthetic import make_class_folders

from .interrupt import interrupted_at_epoch

TINY = [
    "model.name=lw@0.35",
    "data.input_size=[32,32]",
    "data.layout=folders",
    "data.split={train: 6, val: 2, test: 4}",
    "augment.per_class=8",
    "augment.transforms=[{name: HorizontalFlip, p: 0.5}, {name: GaussNoise, std_range: [0.01, 0.03]}]",
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
    return make_class_folders(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    train_classifier(tiny_config(data, out, "train.epochs=2"), show_progress=False)
    return out


def test_training_writes_a_complete_run_folder(trained):
    for name in ("config.yaml", "split.json", "metrics.csv", "best.safetensors", "best.json", "last.json",
                 "resume.pt", "learning_curves.png", "test_confusion.png"):  # fmt: skip
        assert (trained / name).is_file(), name
    meta = json.loads((trained / "best.json").read_text())
    assert meta["format"] == "lwcnn-model/1"
    assert meta["model"]["name"] == "lw@0.35" and meta["model"]["in_channels"] == 1
    assert meta["classes"] == ["checker", "horizontal", "vertical"]
    assert meta["preprocessing"] == {"channels": 1, "size": [32, 32], "mean": [0.5], "std": [0.25]}
    assert meta["split"] == json.loads((trained / "split.json").read_text())
    assert 0.0 <= meta["metrics"]["test_accuracy"] <= 1.0 and meta["metrics"]["test_n"] == 12
    assert "commit" in meta and meta["data"]["layout"] == "folders"
    rows = (trained / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,lr,train_loss,train_acc,val_loss,val_acc")
    assert [r.split(",")[:2] for r in rows[1:]] == [["1", "3"], ["2", "6"]]  # 24 images / batch 8


def test_evaluate_reproduces_the_logged_test_accuracy(trained, data, capsys):
    logged = json.loads((trained / "best.json").read_text())["metrics"]["test_accuracy"]
    assert (
        main(["evaluate", "--weights", str(trained), "--data", str(data), "--split", "test", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == pytest.approx(logged, abs=1e-9)
    assert report["n"] == 12
    assert set(report["per_class"]) == {"checker", "horizontal", "vertical"}
    assert len(report["misclassified"]) == 12 - report["correct"]


def test_evaluate_writes_confusion_png(trained, data, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(trained / "best.safetensors"),
                "--data",
                str(data),
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "true \\ predicted" in capsys.readouterr().out


def test_predict_prints_class_and_probability(trained, data, capsys):
    image = data / "vertical" / "000.png"
    assert main(["predict", str(image), "--weights", str(trained), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["class"] in ("checker", "horizontal", "vertical") and 0 < result["probability"] <= 1


@pytest.mark.parametrize(
    "recipe",
    [[], ["train.ema=0.8", "train.label_smoothing=0.1", "train.precision=bf16"]],
    ids=["paper", "beyond-paper"],
)
def test_interrupted_training_resumes_to_the_same_weights(data, tmp_path, monkeypatch, recipe):
    straight = tmp_path / "straight"
    train_classifier(tiny_config(data, straight, "train.epochs=3", *recipe), show_progress=False)

    interrupted = tmp_path / "interrupted"
    with interrupted_at_epoch(monkeypatch, BalancedSampler, 2):  # epochs 1 and 2 complete
        train_classifier(tiny_config(data, interrupted, "train.epochs=3", *recipe), show_progress=False)
    assert len((interrupted / "metrics.csv").read_text().splitlines()) == 1 + 2

    train_classifier(load_config(None, [f"out={interrupted}"]), resume=True, show_progress=False)
    rows = (interrupted / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == ["3", "6", "9"]  # the step count continues
    a, b = load_file(straight / "last.safetensors"), load_file(interrupted / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_it_is_warned(data, tmp_path, monkeypatch, capsys, native):
    monkeypatch.setattr("lwcnn.training.loop.cpu_has_native_bf16", lambda: native)
    config = tiny_config(data, tmp_path / "run", "train.epochs=1", "train.precision=bf16")
    train_classifier(config, show_progress=False)
    warned = "no AVX512-BF16 or AMX" in capsys.readouterr().err
    assert warned is not native


def test_killed_training_resumes_from_its_last_epoch(data, tmp_path):
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "lwcnn",
        "train",
        *TINY,
        f"data.root={data}",
        f"out={out}",
        "train.epochs=40",
        "--json",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "resume.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    done_before = len((out / "metrics.csv").read_text().splitlines()) - 1
    assert 1 <= done_before < 40
    resumed = subprocess.run([sys.executable, "-m", "lwcnn", "train", "--resume", str(out), "--json"],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 41))
    assert [int(r.split(",")[1]) for r in rows] == [3 * e for e in range(1, 41)]
    assert json.loads(resumed.stdout)["test_n"] == 12


def test_a_run_folder_is_not_overwritten(trained, data):
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_classifier(tiny_config(data, trained, "train.epochs=1"), show_progress=False)


def test_fine_tuning_with_a_different_class_count_gets_a_new_head(trained, tmp_path):
    two_classes = make_class_folders(tmp_path / "two", per_class=12)
    for path in (two_classes / "checker").iterdir():
        path.unlink()
    (two_classes / "checker").rmdir()
    out = tmp_path / "finetuned"
    config = tiny_config(two_classes, out, "train.epochs=1", f"train.init_from={trained}", "train.lr=0")
    train_classifier(config, show_progress=False)
    source, _ = load_model(trained)
    tuned, meta = load_model(out)
    assert meta["classes"] == ["horizontal", "vertical"] and tuned.fc.out_features == 2
    # lr 0: only BN running statistics move; the convolution weights are the source's.
    first = "backbone.blocks.0.0.weight"
    torch.testing.assert_close(tuned.state_dict()[first], source.state_dict()[first])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lwcnn", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda root: (root / "vertical" / "005.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated"),
            "005.png: corrupt",
        ),
        (lambda root: (root / "vertical" / "006.png").write_bytes(b""), "006.png: empty file"),
        (lambda root: (root / "horizontal" / "007.png").write_text("hello"), "007.png: not an image file"),
    ],
    ids=["truncated", "empty", "text"],
)
def test_bad_image_stops_before_training_or_is_skipped(tmp_path, damage, message):
    root = make_class_folders(tmp_path / "data")
    damage(root)
    out = tmp_path / "run"
    done = run_cli("train", *TINY, f"data.root={root}", f"out={out}", "train.epochs=1")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("lwcnn train: error:")]
    assert len(errors) == 1 and message in errors[0]
    assert not (out / "resume.pt").exists()  # nothing trained
    skipped = run_cli(
        "train",
        *TINY,
        f"data.root={root}",
        f"out={tmp_path / 'run2'}",
        "train.epochs=1",
        "--skip-bad",
        "--json",
    )
    assert skipped.returncode == 0, skipped.stderr
    summary = json.loads(skipped.stdout)
    assert summary["skipped_images"] == 1
    assert message.split(":")[0] in skipped.stderr  # the skipped file is reported


def make_neu_with_bad_prefix(root: Path) -> None:
    for prefix in ("Cr", "In", "Pa", "PS", "RS", "Sc", "Xx"):
        shutil.copy(root / "vertical" / "000.png", root / f"{prefix}_1.png")


@pytest.mark.parametrize(
    ("setup", "extra", "message"),
    [
        (lambda root: (root / "empty_class").mkdir(), [], "empty_class: class folder has no images"),
        (lambda root: None, ["data.split={train: 10, val: 2, test: 4}"], "has 12 images; the split needs 16"),
        (make_neu_with_bad_prefix, ["data.layout=neu"], "Xx_1.png: unknown NEU class prefix 'Xx'"),
        (lambda root: None, ["train.epocs=3"], "unknown config key 'train.epocs'"),
        (
            lambda root: None,
            ["augment.transforms=[{name: NoSuchTransform}]"],
            "has no transform 'NoSuchTransform'",
        ),
        (lambda root: None, ["train.precision=fp16"], "must be one of fp32, bf16, auto, got 'fp16'"),
        (lambda root: None, ["train.ema=1.0"], "train.ema: the decay must lie between 0 and 1"),
    ],
    ids=["empty-class", "too-few", "unknown-prefix", "config-typo", "bad-transform", "precision", "ema"],
)
def test_bad_data_and_config_fail_before_training(tmp_path, setup, extra, message):
    root = make_class_folders(tmp_path / "data")
    setup(root)
    out = tmp_path / "run"
    done = run_cli("train", *TINY, f"data.root={root}", f"out={out}", "train.epochs=1", *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()  # a run that never started leaves no folder behind
