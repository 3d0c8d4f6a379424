"""Training refuses what would hurt: a crafted resume.pt, bad numbers, an unwritable run folder; a
failed run leaves nothing that looks like a run, and killed writes leave no temporary files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from lwcnn.checkpoints import load_training_state, save_training_state
from lwcnn.cli import main
from lwcnn.config import ConfigError, load_config
from lwcnn.training.classification import train_classifier
from tests.synthetic import make_class_folders

from .test_classification_training import TINY, tiny_config


class _RunsAShellCommand:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_resume_file_runs_no_code(tmp_path):
    marker = tmp_path / "owned"
    crafted = tmp_path / "resume.pt"
    torch.save({"model": {}, "epoch": 1, "payload": _RunsAShellCommand(marker)}, crafted)
    with pytest.raises(ValueError, match=r"resume\.pt: refused"):
        load_training_state(crafted)
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"  # a bare pickle (not torch's zip format) is refused too
    plain.write_bytes(pickle.dumps(_RunsAShellCommand(marker)))
    with pytest.raises(ValueError, match=r"plain\.pkl"):
        load_training_state(plain)
    assert not marker.exists()
    torch.load(crafted, weights_only=False)  # the probe is real: a full unpickling runs the command
    assert marker.exists()


def test_the_real_training_state_round_trips(tmp_path):
    state = {
        "model": {"w": torch.ones(2, 3)},
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0)}},
            "param_groups": [{"lr": 0.001, "params": [0]}],
        },
        "epoch": 2,
        "step": 14,
        "best": {"epoch": 2, "rank": [0.5, -1.0], "val_acc": 0.5},
        "history": [{"epoch": 1, "lr": 0.001, "phase": None, "seconds": 1.5}],
    }
    save_training_state(tmp_path / "resume.pt", state)
    loaded = load_training_state(tmp_path / "resume.pt")
    assert loaded["best"] == state["best"] and loaded["history"] == state["history"]
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])


def test_resume_of_an_interrupted_run_refuses_a_crafted_state(tmp_path, capsys):
    data = make_class_folders(tmp_path / "data")
    out = tmp_path / "run"
    train_classifier(tiny_config(data, out, "train.epochs=1"), show_progress=False)
    marker = tmp_path / "owned"
    torch.save({"payload": _RunsAShellCommand(marker)}, out / "resume.pt")
    assert main(["train", "--resume", str(out)]) == 2
    assert "resume.pt: refused" in capsys.readouterr().err and not marker.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.batch_size=0", "train.batch_size must be >= 1, got 0"),
        ("train.batch_size=-2", "train.batch_size must be >= 1, got -2"),
        ("train.epochs=-1", "train.epochs must be >= 1, got -1"),
        ("train.epochs=abc", "train.epochs must be an integer, got 'abc'"),
        ("train.epochs=2.5", "train.epochs must be an integer, got 2.5"),
        ("train.lr=-0.001", "train.lr must be >= 0, got -0.001"),
        ("train.channels_last=maybe", "train.channels_last must be true or false"),
        ("data.input_size=[32]", "data.input_size must be [height, width]"),
    ],
)
def test_bad_training_numbers_are_one_line_errors_before_anything_runs(tmp_path, capsys, override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(None, [*TINY, "data.root=x", override])
    out = tmp_path / "run"
    assert main(["train", *TINY, f"data.root={tmp_path}", f"out={out}", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_an_unwritable_run_folder_is_a_one_line_error(tmp_path, capsys):
    data = make_class_folders(tmp_path / "data")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["train", *TINY, f"data.root={data}", f"out={blocker / 'run'}", "train.epochs=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write the run folder" in err[0] and str(blocker) in err[0]


def test_a_run_that_fails_before_its_first_epoch_leaves_nothing(tmp_path, capsys):
    data = make_class_folders(tmp_path / "data")
    out = tmp_path / "run"
    # the batch does not divide into micro-batches: found after the split and config were written
    assert main(["train", *TINY, f"data.root={data}", f"out={out}", "train.accumulate=3"]) == 2
    assert "not a multiple of train.accumulate" in capsys.readouterr().err
    assert not out.exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "config.yaml").write_text("my own notes\n")  # a user's file is never removed
    assert main(["train", *TINY, f"data.root={data}", f"out={existing}", "train.accumulate=3"]) == 2
    assert sorted(p.name for p in existing.iterdir()) == ["config.yaml"]


def test_temporary_files_of_killed_writes_are_cleaned_when_the_run_resumes(tmp_path):
    data = make_class_folders(tmp_path / "data")
    out = tmp_path / "run"
    train_classifier(tiny_config(data, out, "train.epochs=1"), show_progress=False)
    stale = out / ".resume.pt.abcd1234.tmp"  # what a kill during atomic_write_bytes leaves
    stale.write_bytes(b"half")
    keep = out / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    assert main(["train", "--resume", str(out)]) == 0
    assert not stale.exists() and keep.exists()
